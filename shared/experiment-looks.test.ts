import { describe, expect, it } from 'vitest'
import { readExperiment, listRateSums } from './experiment-looks'
import { estimateRatio } from './experiment-stats'
import { placeDevice, type Experiment } from './experiments'
import { emptyOutcomeCounts, outcomeCell } from './outcome-counts'
import { addToCells, reportCells } from './outcome-report'
import { createRandom } from './random'

const experiment: Experiment = {
  id: 'holdout',
  key: 'k',
  arms: [
    { name: 'pools', share: 1 },
    { name: 'model', share: 1 },
  ],
}

/** Batches of devices' reports summed: the treatment's lists are clicked `lift` times as often. */
function batches(devices: number, perBatch: number, lift: number, seed = 1): Int32Array[] {
  const random = createRandom(seed)
  const out: Int32Array[] = []
  let batch = new Uint32Array(reportCells(2))
  for (let i = 0; i < devices; i++) {
    const { arm, group } = placeDevice(experiment, `d${seed}-${i}`)
    const counts = emptyOutcomeCounts()
    const lists = 1 + Math.floor(random() * 6)
    let clicks = 0
    for (let l = 0; l < lists; l++) if (random() < 0.1 * (arm === 1 ? lift : 1)) clicks++
    counts[outcomeCell('similar', 'lists')] = lists
    counts[outcomeCell('similar', 'clicks')] = clicks
    counts[outcomeCell('trending', 'lists')] = 1
    addToCells(batch, 2, arm, group, counts)
    if ((i + 1) % perBatch === 0) {
      out.push(new Int32Array(batch.buffer))
      batch = new Uint32Array(reportCells(2))
    }
  }
  return out
}

describe('an experiment read look by look', () => {
  it('reads look k off the first k batches, and finds a real lift', () => {
    const looks = readExperiment(batches(3000, 500, 2), 2)
    const ctr = looks.find((m) => m.metric === 'clicks')!
    expect(ctr.looks).toHaveLength(6)
    const all = batches(3000, 500, 2).reduce((a, b) => a.map((v, i) => v + b[i]!))
    const last = ctr.looks[5]!
    expect(last.arms[1]!.rate).toBeCloseTo(estimateRatio(listRateSums(all, 1, 'clicks')).rate, 12)
    // Clicks per list over every scenario: the trending lists, never clicked, count too.
    expect(last.arms[0]!.rate).toBeLessThan(0.1)
    expect(last.versusControl[0]!.significant).toBe(true)
    expect(last.versusControl[0]!.alwaysValid[0]).toBeGreaterThan(0)
    // Once significant, it stays so: the p-value is a running minimum.
    const first = ctr.looks.findIndex((l) => l.versusControl[0]?.significant)
    expect(ctr.looks.slice(first).every((l) => l.versusControl[0]!.significant)).toBe(true)
  })

  it('flags an A/A experiment rarely, however often it is looked at', () => {
    let flagged = 0
    for (let seed = 1; seed <= 40; seed++) {
      const ctr = readExperiment(batches(1000, 100, 1, seed), 2)[0]!
      if (ctr.looks.some((l) => l.versusControl[0]?.significant)) flagged++
    }
    expect(flagged).toBeLessThanOrEqual(4)
  })

  it('shows no comparison before any list has a rate', () => {
    const empty = new Int32Array(reportCells(2))
    const [ctr] = readExperiment([empty], 2)
    expect(ctr!.looks[0]!.versusControl).toEqual([])
    expect(Number.isNaN(ctr!.looks[0]!.arms[0]!.rate)).toBe(true)
  })
})
