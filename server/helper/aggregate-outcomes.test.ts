// The helper's half of an outcome batch (P30c), on a real SQLite helper store: what it sums, what
// it leaves out and why, its floor, its half of the noise, and that a batch is answered once and
// no share enters two batches.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { Experiment } from '../../shared/experiments'
import { createNobleCipher } from '../../shared/noble-cipher'
import { emptyOutcomeCounts, outcomeCell } from '../../shared/outcome-counts'
import {
  buildOutcomeReport,
  exploreOffset,
  OUTCOME_CLIPS,
  reportCells,
  sumShares,
} from '../../shared/outcome-report'
import {
  digestHex,
  experimentDigest,
  outcomeShare,
  splitOutcomeReport,
} from '../../shared/outcome-transport'
import { createRandom } from '../../shared/random'
import { decodeAggregateAnswer } from '../../shared/share-sums'
import { aggregateOutcomeBatch } from './aggregate-outcomes'
import { openSqliteHelperStore } from './sqlite-helper-store'

const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-helper-outcomes-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
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
const digest = experimentDigest(experiment)
const cells = reportCells(2)
let opened = 0

function reports(n: number, of: Experiment = experiment) {
  return Array.from({ length: n }, (_, i) => {
    const counts = emptyOutcomeCounts()
    counts[outcomeCell('similar', 'lists')] = 1 + (i % 5)
    const report = buildOutcomeReport(2, i % 2, i % 32, counts)
    const key = bytes(16)
    const [leader, helper] = splitOutcomeReport(
      report,
      { period: 1, idempotencyKey: key, experiment: experimentDigest(of) },
      bytes,
      cipher,
    )
    return { key: digestHex(key), report, leader, helper }
  })
}

async function setUp(settings: { minBatch: number; outcomeSigma: number }) {
  const store = openSqliteHelperStore(path.join(dir, `helper-${++opened}.db`))
  const deps = {
    store,
    settings: { ...settings, waitingTtlMs: 3_600_000 },
    cipher,
    now: () => 1_000,
    uniform: createRandom(7),
  }
  const aggregate = (request: unknown) =>
    aggregateOutcomeBatch(deps, new TextEncoder().encode(JSON.stringify(request)))
  return { store, aggregate }
}

const request = (batch: string, keys: string[]) => ({
  batch,
  experiment: digestHex(digest),
  arms: 2,
  reports: keys,
})

describe('the helper’s outcome batches (P30c)', () => {
  it('sums the named shares: with the leader’s, the reports’ totals', async () => {
    const { store, aggregate } = await setUp({ minBatch: 3, outcomeSigma: 0 })
    const sent = reports(6)
    for (const r of sent) await store.putShare(r.key, r.helper, 1, 100)
    const result = await aggregate(
      request(
        'b1',
        sent.map((r) => r.key),
      ),
    )
    expect(result.status).toBe('answered')
    const answer = decodeAggregateAnswer((result as { answer: Uint8Array }).answer)
    expect(answer).toMatchObject({ batch: 'b1', excluded: [], sigma: 0 })
    const helper = new Uint32Array(answer.sums.slice().buffer)
    const leader = sumShares(
      sent.map((r) => outcomeShare(r.leader, 0, cells, cipher)),
      cells,
    )
    expect(sumShares([leader, helper], cells)).toEqual(
      sumShares(
        sent.map((r) => r.report),
        cells,
      ),
    )
    await store.close()
  })

  it('leaves out missing, consumed and foreign shares, and refuses a batch below its floor', async () => {
    const { store, aggregate } = await setUp({ minBatch: 3, outcomeSigma: 0 })
    const sent = reports(4)
    const foreign = reports(1, { ...experiment, key: 'other' })[0]!
    for (const r of [...sent.slice(0, 3), foreign]) await store.putShare(r.key, r.helper, 1, 100)
    // sent[3] never reached the helper; foreign is another experiment's.
    const first = await aggregate(
      request('b1', [sent[0]!.key, sent[1]!.key, sent[3]!.key, foreign.key]),
    )
    expect(first).toMatchObject({ status: 'refused', code: 'E_BATCH_SMALL', excluded: [[2, 'missing'], [3, 'malformed']] }) // prettier-ignore
    // Refused: nothing consumed, the same shares can make a batch.
    const second = await aggregate(
      request(
        'b2',
        sent.slice(0, 3).map((r) => r.key),
      ),
    )
    expect(second.status).toBe('answered')
    // The same request again gets the same bytes; another request under that id is refused.
    const retry = await aggregate(
      request(
        'b2',
        sent.slice(0, 3).map((r) => r.key),
      ),
    )
    expect(retry).toEqual(second)
    const other = await aggregate(
      request(
        'b2',
        sent.slice(0, 2).map((r) => r.key),
      ),
    )
    expect(other).toMatchObject({ status: 'refused', code: 'E_BATCH_MISMATCH' })
    // A share that entered b2 never enters another batch.
    const third = await aggregate(
      request(
        'b3',
        sent.slice(0, 3).map((r) => r.key),
      ),
    )
    expect(third).toMatchObject({ code: 'E_BATCH_SMALL', excluded: [[0, 'consumed'], [1, 'consumed'], [2, 'consumed']] }) // prettier-ignore
    await store.close()
  })

  it('adds its half of the noise, of the stated size per cell', async () => {
    const { store, aggregate } = await setUp({ minBatch: 1, outcomeSigma: 2 })
    const sent = reports(2)
    for (const r of sent) await store.putShare(r.key, r.helper, 1, 100)
    const result = await aggregate(
      request(
        'noisy',
        sent.map((r) => r.key),
      ),
    )
    const answer = decodeAggregateAnswer((result as { answer: Uint8Array }).answer)
    expect(answer.sigma).toBe(2)
    const helper = new Uint32Array(answer.sums.slice().buffer)
    const leader = sumShares(
      sent.map((r) => outcomeShare(r.leader, 0, cells, cipher)),
      cells,
    )
    const noisy = sumShares([leader, helper], cells)
    const exact = sumShares(
      sent.map((r) => r.report),
      cells,
    )
    // The lists cells (every 5th metric, clip 20): N(0, (2·20)²/2) each.
    const errors: number[] = []
    for (let i = 0; i < exploreOffset(2); i++) {
      const metric = Math.floor(i / 32) % 5
      if (metric === 0) errors.push((noisy[i]! - exact[i]!) | 0)
    }
    const rms = Math.sqrt(errors.reduce((s, e) => s + e * e, 0) / errors.length)
    const stated = (2 * OUTCOME_CLIPS.lists) / Math.SQRT2
    expect(rms).toBeGreaterThan(0.8 * stated)
    expect(rms).toBeLessThan(1.2 * stated)
    await store.close()
  })

  it('refuses a malformed request, naming why', async () => {
    const { store, aggregate } = await setUp({ minBatch: 1, outcomeSigma: 0 })
    expect(await aggregate({ batch: 'x', experiment: 'zz', arms: 2, reports: [] })).toMatchObject({
      status: 'refused',
      code: 'E_REQUEST',
    })
    const key = 'a'.repeat(32)
    expect(await aggregate(request('x', [key, key]))).toMatchObject({ code: 'E_REQUEST', message: /once/ }) // prettier-ignore
    await store.close()
  })
})
