import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import type { Experiment } from './experiments'
import { createNobleCipher } from './noble-cipher'
import { emptyOutcomeCounts, outcomeCell } from './outcome-counts'
import { buildOutcomeReport, reportCells, sumShares } from './outcome-report'
import {
  digestHex,
  experimentDigest,
  outcomeBodyBytes,
  outcomeShare,
  readOutcomeHeader,
  splitOutcomeReport,
} from './outcome-transport'

const cipher = createNobleCipher()
const bytes = (n: number) => new Uint8Array(randomBytes(n))
const experiment: Experiment = {
  id: 'holdout',
  key: 'k',
  arms: [
    { name: 'model', share: 1 },
    { name: 'pools', share: 1 },
  ],
}

function report(lists: number, clicks: number, arm = 1, group = 7) {
  const counts = emptyOutcomeCounts()
  counts[outcomeCell('similar', 'lists')] = lists
  counts[outcomeCell('similar', 'clicks')] = clicks
  return buildOutcomeReport(2, arm, group, counts)
}

const header = () => ({
  period: 20_428,
  idempotencyKey: bytes(16),
  experiment: experimentDigest(experiment),
})

describe('outcome bodies (P30c)', () => {
  it('the two servers’ shares add up to the report, and the helper’s body is a seed', () => {
    const r = report(6, 2)
    const h = header()
    const [leader, helper] = splitOutcomeReport(r, h, bytes, cipher)
    const cells = reportCells(2)
    expect(leader.length).toBe(outcomeBodyBytes(cells, 0))
    expect(helper.length).toBe(64 + 16)
    const sum = sumShares(
      [outcomeShare(leader, 0, cells, cipher), outcomeShare(helper, 1, cells, cipher)],
      cells,
    )
    expect(sum).toEqual(r)
    // The leader's words look random: the report is zero in all but ten cells.
    const words = outcomeShare(leader, 0, cells, cipher)
    expect(words.filter((w) => w === 0).length).toBeLessThan(3)
    for (const body of [leader, helper]) {
      const read = readOutcomeHeader(body)
      expect(read.cells).toBe(cells)
      expect(read.period).toBe(20_428)
      expect(read.idempotencyKey).toEqual(h.idempotencyKey)
      expect(digestHex(read.experiment)).toBe(digestHex(h.experiment))
    }
    expect([readOutcomeHeader(leader).party, readOutcomeHeader(helper).party]).toEqual([0, 1])
  })

  it('sums of many reports are exact in Z/2^32', () => {
    const cells = reportCells(2)
    const reports = Array.from({ length: 50 }, (_, i) => report(i % 20, i % 7, i % 2, i % 32))
    const bodies = reports.map((r) => splitOutcomeReport(r, header(), bytes, cipher))
    const leader = sumShares(
      bodies.map(([l]) => outcomeShare(l, 0, cells, cipher)),
      cells,
    )
    const helper = sumShares(
      bodies.map(([, h]) => outcomeShare(h, 1, cells, cipher)),
      cells,
    )
    expect(sumShares([leader, helper], cells)).toEqual(sumShares(reports, cells))
  })

  it('the digest changes with the key, the arms or the id, not with the shares', () => {
    const base = digestHex(experimentDigest(experiment))
    const arms = experiment.arms
    expect(digestHex(experimentDigest({ ...experiment, key: 'k2' }))).not.toBe(base)
    expect(digestHex(experimentDigest({ ...experiment, id: 'other' }))).not.toBe(base)
    expect(digestHex(experimentDigest({ ...experiment, arms: [arms[1]!, arms[0]!] }))).not.toBe(base) // prettier-ignore
    const shares = arms.map((a, i) => ({ ...a, share: i + 5 }))
    expect(digestHex(experimentDigest({ ...experiment, arms: shares }))).toBe(base)
  })

  it('refuses a body of another magic, party, size or cell count with a RangeError', () => {
    const cells = reportCells(2)
    const [leader, helper] = splitOutcomeReport(report(1, 0), header(), bytes, cipher)
    expect(() => readOutcomeHeader(leader.subarray(0, leader.length - 1))).toThrow(RangeError)
    expect(() => readOutcomeHeader(new Uint8Array(80))).toThrow(/magic/)
    const party = helper.slice()
    party[4] = 2
    expect(() => readOutcomeHeader(party)).toThrow(/party/)
    expect(() => outcomeShare(helper, 0, cells, cipher)).toThrow(/party 0/)
    expect(() => outcomeShare(leader, 0, reportCells(3), cipher)).toThrow(/cells/)
    const huge = helper.slice()
    new DataView(huge.buffer).setUint32(8, 2 ** 31, true)
    expect(() => readOutcomeHeader(huge)).toThrow(/cells/)
  })
})
