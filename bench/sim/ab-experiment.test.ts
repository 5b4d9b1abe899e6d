import { describe, expect, it } from 'vitest'
import { createRandom } from '../../shared/random'
import { placeDevice, type Experiment } from '../../shared/experiments'
import { ratioSums } from '../../shared/experiment-looks'
import { OUTCOME_CLIPS } from '../../shared/outcome-report'
import { runExperiment, type DeviceOutcomes, type ExperimentRunOptions } from './ab-experiment'

const experiment: Experiment = {
  id: 'test',
  key: 'test-key',
  arms: [
    { name: 'control', share: 1 },
    { name: 'treatment', share: 1 },
  ],
}

/** Devices with 1–8 lists; under arm a each list is clicked with probability `rates[a]`. */
function devices(n: number, rates: [number, number], seed = 1): DeviceOutcomes[] {
  const random = createRandom(seed)
  return Array.from({ length: n }, (_, i) => {
    const lists = 1 + Math.floor(random() * 8)
    const clicks = rates.map((rate) => {
      let c = 0
      for (let l = 0; l < lists; l++) if (random() < rate) c++
      return c
    })
    return {
      id: `d${i}`,
      byArm: [
        [lists, clicks[0]!],
        [lists, clicks[1]!],
      ],
    }
  })
}

const options: ExperimentRunOptions = {
  batch: 100,
  sigma: 0,
  alpha: 0.05,
  minimumLift: 0.1,
  seed: 1,
  split: true,
}

const total = (values: Float64Array) => values.reduce((a, b) => a + b, 0)
/** Lists and clicks of an arm, summed over its groups. */
const listsAndClicks = (totals: Int32Array, arm: number) => {
  const sums = ratioSums(totals, arm, 'for-you', 'clicks')
  return [total(sums.x), total(sums.y)]
}

describe('the simulated A/B experiment', () => {
  it('ends, without noise, with exactly the devices’ true totals, each under its own arm', () => {
    const all = devices(1050, [0.2, 0.3])
    const run = runExperiment(experiment, all, options)
    expect(run.serverTotals).toEqual(run.trueTotals)
    for (const arm of [0, 1]) {
      const mine = all.filter((d) => placeDevice(experiment, d.id).arm === arm)
      expect(listsAndClicks(run.serverTotals, arm)).toEqual([
        mine.reduce((s, d) => s + d.byArm[arm]![0], 0),
        mine.reduce((s, d) => s + d.byArm[arm]![1], 0),
      ])
    }
    // A look after every release of 100 devices, and one for the last 50.
    expect(run.looks.map((l) => l.devices)).toEqual([...Array.from({ length: 10 }, (_, i) => (i + 1) * 100), 1050]) // prettier-ignore
    // The shortcut the A/A runs take (no shares) ends with the same totals.
    expect(runExperiment(experiment, all, { ...options, split: false }).serverTotals).toEqual(
      run.serverTotals,
    )
  })

  it('clips a device’s lists as its report does, and its clicks to its lists', () => {
    const heavy: DeviceOutcomes = {
      id: 'heavy',
      byArm: [
        [500, 400],
        [500, 400],
      ],
    }
    const run = runExperiment(experiment, [heavy, ...devices(99, [0.2, 0.2])], options)
    const arm = placeDevice(experiment, 'heavy').arm
    const others = devices(99, [0.2, 0.2]).filter((d) => placeDevice(experiment, d.id).arm === arm)
    const clip = OUTCOME_CLIPS.lists
    expect(listsAndClicks(run.trueTotals, arm)).toEqual([
      clip + others.reduce((s, d) => s + d.byArm[arm]![0], 0),
      clip + others.reduce((s, d) => s + d.byArm[arm]![1], 0),
    ])
  })

  it('decides a real lift early and keeps the true lift inside its interval', () => {
    const run = runExperiment(experiment, devices(3000, [0.1, 0.4]), options)
    expect(run.decidedAt).not.toBeNull()
    expect(run.decidedAt!).toBeLessThanOrEqual(500)
    const last = run.looks.at(-1)!
    expect(last.alwaysValid[0]).toBeLessThan(0.3)
    expect(last.alwaysValid[1]).toBeGreaterThan(0.3)
  })

  it('noises what the servers hold by the stated amount, and widens the interval', () => {
    const all = devices(2000, [0.2, 0.3])
    const exact = runExperiment(experiment, all, options)
    const noised = runExperiment(experiment, all, { ...options, sigma: 1 })
    expect(noised.trueTotals).toEqual(exact.trueTotals)
    const sd = OUTCOME_CLIPS.lists * Math.sqrt(20) // σ·clip per cell and release, 20 releases
    let squares = 0
    let cells = 0
    for (const arm of [0, 1]) {
      const got = ratioSums(noised.serverTotals, arm, 'for-you', 'clicks').x
      const want = ratioSums(exact.trueTotals, arm, 'for-you', 'clicks').x
      for (const [g, value] of got.entries()) {
        squares += (value - want[g]!) ** 2
        cells++
      }
    }
    expect(Math.sqrt(squares / cells) / sd).toBeGreaterThan(0.8)
    expect(Math.sqrt(squares / cells) / sd).toBeLessThan(1.2)
    const width = (r: typeof exact) => r.looks.at(-1)!.interval[1] - r.looks.at(-1)!.interval[0]
    expect(width(noised)).toBeGreaterThan(width(exact))
  })
})
