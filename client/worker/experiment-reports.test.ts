import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createNobleCipher } from '../../shared/noble-cipher'
import { outcomeCell } from '../../shared/outcome-counts'
import { buildOutcomeReport, reportCells, sumShares } from '../../shared/outcome-report'
import { outcomeShare, readOutcomeHeader } from '../../shared/outcome-transport'
import type { ManifestExperiment } from '../../shared/protocol'
import { armsSuffix, type Placed } from './experiment-arms'
import { countList, emptyOutcomeState, rollPeriod } from './experiment-outcomes'
import { buildReports } from './experiment-reports'

const crypto = { randomBytes: (n: number) => new Uint8Array(randomBytes(n)), cipher: createNobleCipher() } // prettier-ignore
const holdout: ManifestExperiment = {
  id: 'holdout',
  key: 'k',
  arms: [
    { name: 'model', share: 1, lists: 'model' },
    { name: 'pools', share: 1, lists: 'pools' },
  ],
}
const placed: Placed[] = [{ experiment: holdout, arm: holdout.arms[1]!, group: 5 }]

describe('a device’s outcome reports (P30c)', () => {
  it('makes each closed counter one report whose two bodies add up to its clipped counts', () => {
    const state = emptyOutcomeState()
    rollPeriod(state, 50)
    for (let n = 0; n < 25; n++) countList(state, placed, `${'0'.repeat(31)}${n % 10}${armsSuffix(placed)}`, 'similar') // prettier-ignore
    expect(buildReports(state, crypto)).toBe(false) // the day has not ended
    rollPeriod(state, 51)
    expect(buildReports(state, crypto)).toBe(true)
    expect(state.closed).toEqual([])
    const [report] = state.reports
    expect(report).toMatchObject({ experiment: 'holdout', period: 50 })
    expect(readOutcomeHeader(report!.leader)).toMatchObject({ party: 0, period: 50 })
    const cells = reportCells(2)
    const sum = sumShares(
      [outcomeShare(report!.leader, 0, cells, crypto.cipher), outcomeShare(report!.helper, 1, cells, crypto.cipher)], // prettier-ignore
      cells,
    )
    const counts = new Array(25).fill(0)
    counts[outcomeCell('similar', 'lists')] = 25
    // 25 lists, clipped to 20, in arm 1 (pools), group 5.
    expect(sum).toEqual(buildOutcomeReport(2, 1, 5, counts))
    expect(sum.reduce((a, b) => a + b, 0)).toBe(20)
  })
})
