import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { ratioSums } from './experiment-looks'
import { estimateRatio } from './experiment-stats'
import { placeDevice, type Experiment } from './experiments'
import {
  countExplored,
  emptyOutcomeCounts,
  EXPLORE_BUCKETS,
  exploreBucket,
  outcomeCell,
  type ExploreCounts,
  type OutcomeCounts,
} from './outcome-counts'
import {
  addHalfNoise,
  buildOutcomeReport,
  combineSums,
  EXPLORE_CLIPS,
  exploreOffset,
  OUTCOME_CLIPS,
  reportCells,
  splitReport,
  sumShares,
} from './outcome-report'
import { createRandom } from './random'

const words = (n: number) => new Uint32Array(randomBytes(4 * n).buffer)
const experiment: Experiment = {
  id: 'holdout',
  key: 'k',
  arms: [
    { name: 'model', share: 1 },
    { name: 'pools', share: 1 },
  ],
}

/** A device's counts: for-you lists, clicks with arm-dependent odds, an order now and then. */
function deviceCounts(random: () => number, arm: number): OutcomeCounts {
  const counts = emptyOutcomeCounts()
  const lists = 1 + Math.floor(random() * 10)
  let clicks = 0
  for (let i = 0; i < lists; i++) if (random() < (arm === 0 ? 0.3 : 0.15)) clicks++
  counts[outcomeCell('for-you', 'lists')] = lists
  counts[outcomeCell('for-you', 'clicks')] = clicks
  counts[outcomeCell('trending', 'lists')] = 1
  if (clicks > 0 && random() < 0.2) {
    counts[outcomeCell('for-you', 'purchases')] = 1
    counts[outcomeCell('for-you', 'revenue')] = Math.round(20 + 80 * random())
  }
  return counts
}

function fleet(n: number, seed = 1) {
  const random = createRandom(seed)
  return Array.from({ length: n }, (_, i) => {
    const { arm, group } = placeDevice(experiment, `device-${i}`)
    return { arm, group, report: buildOutcomeReport(2, arm, group, deviceCounts(random, arm)) }
  })
}

/** Each device splits its report; each server sums the shares it received. */
function serverSums(devices: ReturnType<typeof fleet>) {
  const cells = reportCells(2)
  const shares = devices.map((d) => splitReport(d.report, words))
  const leader = sumShares(
    shares.map((s) => s[0]),
    cells,
  )
  const helper = sumShares(
    shares.map((s) => s[1]),
    cells,
  )
  return { shares, leader, helper }
}

describe('outcome reports through two servers (P30)', () => {
  it('sums to exactly the devices’ totals without noise, though each share alone is random', () => {
    const devices = fleet(600)
    const cells = reportCells(2)
    const { shares, leader, helper } = serverSums(devices)
    const totals = combineSums(leader, helper)
    const exact = new Int32Array(cells)
    for (const d of devices) for (let i = 0; i < cells; i++) exact[i]! += d.report[i]!
    expect(totals).toEqual(exact)
    // A share says nothing: a device's mostly-zero report is spread over all 2^32 values.
    const leaderShare = shares[0]![0]
    expect(leaderShare.filter((w) => w === 0).length).toBeLessThan(3)
    const mean = leaderShare.reduce((a, b) => a + b, 0) / leaderShare.length
    expect(Math.abs(mean / 2 ** 32 - 0.5)).toBeLessThan(0.05)
    // Read back per arm: the click-through rate of each arm's devices, exactly.
    for (const arm of [0, 1]) {
      const mine = devices.filter((d) => d.arm === arm)
      const at = (metric: 'lists' | 'clicks') =>
        mine.reduce((sum, d) => {
          const cell = (arm * 5 * 5 + outcomeCell('for-you', metric)) * 32 + d.group
          return sum + d.report[cell]!
        }, 0)
      const sums = ratioSums(totals, arm, 'for-you', 'clicks')
      expect(estimateRatio(sums).rate).toBeCloseTo(at('clicks') / at('lists'), 12)
    }
  })

  it('clips what one device counts, and a click only credits a list it saw', () => {
    const counts = emptyOutcomeCounts()
    counts[outcomeCell('similar', 'lists')] = 500
    counts[outcomeCell('for-you', 'lists')] = 3
    counts[outcomeCell('for-you', 'clicks')] = 80
    counts[outcomeCell('for-you', 'revenue')] = Number.NaN
    counts[outcomeCell('trending', 'adds')] = -4
    const report = buildOutcomeReport(2, 1, 7, counts)
    const cell = (
      scenario: 'similar' | 'for-you' | 'trending',
      metric: 'lists' | 'clicks' | 'revenue' | 'adds',
    ) => report[(1 * 25 + outcomeCell(scenario, metric)) * 32 + 7]
    expect(cell('similar', 'lists')).toBe(OUTCOME_CLIPS.lists)
    expect(cell('for-you', 'clicks')).toBe(3)
    expect(cell('for-you', 'revenue')).toBe(0)
    expect(cell('trending', 'adds')).toBe(0)
    // Nothing outside the device's arm and group.
    expect(report.reduce((a, b) => a + b, 0)).toBe(OUTCOME_CLIPS.lists + 3 + 3)
    expect(() => buildOutcomeReport(2, 2, 0, counts)).toThrow(RangeError)
  })

  it('carries the exploring arm’s counts per bucket, clipped, in a section every report has (P30f)', () => {
    const counts = emptyOutcomeCounts()
    counts[outcomeCell('for-you', 'lists')] = 2
    const explored: ExploreCounts = []
    for (let i = 0; i < 9; i++) countExplored(explored, 'new-1', 'shown')
    countExplored(explored, 'new-1', 'clicked')
    countExplored(explored, 'new-1', 'clicked')
    countExplored(explored, 'new-2', 'clicked') // clicked today, shown yesterday
    explored.push([EXPLORE_BUCKETS, 3, 0], [-1, 3, 0], [7, Number.NaN, 0]) // out of range: ignored
    const report = buildOutcomeReport(2, 0, 4, counts, explored)
    const plain = buildOutcomeReport(2, 0, 4, counts)
    expect(report.length).toBe(plain.length)
    const offset = exploreOffset(2)
    expect(report.subarray(0, offset)).toEqual(plain.subarray(0, offset))
    const section = report.subarray(offset)
    expect(section[exploreBucket('new-1')]).toBe(EXPLORE_CLIPS.shown)
    expect(section[EXPLORE_BUCKETS + exploreBucket('new-1')]).toBe(EXPLORE_CLIPS.clicked)
    expect(section[EXPLORE_BUCKETS + exploreBucket('new-2')]).toBe(1)
    expect(section.reduce((a, b) => a + b, 0)).toBe(EXPLORE_CLIPS.shown + 2)
    // Buckets spread ids: 200 new items' ids fill about 180 of 1,024 buckets.
    const buckets = new Set(Array.from({ length: 200 }, (_, i) => exploreBucket(`sku-${i}`)))
    expect(buckets.size).toBeGreaterThan(170)
  })

  it('carries the stated noise when each server adds its half', () => {
    const { leader, helper } = serverSums(fleet(300, 2))
    const exact = combineSums(leader, helper)
    addHalfNoise(leader, 2, 1, createRandom(3))
    addHalfNoise(helper, 2, 1, createRandom(4))
    const noised = combineSums(leader, helper)
    let squares = 0
    let n = 0
    for (const arm of [0, 1]) {
      for (let g = 0; g < 32; g++) {
        const i = (arm * 25 + outcomeCell('for-you', 'lists')) * 32 + g
        squares += (noised[i]! - exact[i]!) ** 2
        n++
      }
    }
    const sd = Math.sqrt(squares / n)
    expect(sd / OUTCOME_CLIPS.lists).toBeGreaterThan(0.75)
    expect(sd / OUTCOME_CLIPS.lists).toBeLessThan(1.25)
  })
})
