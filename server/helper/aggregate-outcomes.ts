// The helper's half of a batch of outcome reports (PROTOCOL.md P30c), run in its aggregation
// thread: the leader names one experiment's reports by key; the helper leaves out those missing,
// consumed by an earlier batch or not a helper body of that experiment and size, and, if at least
// `minBatch` remain, sums their shares (each a seed's stream), adds its half of the noise and
// commits the batch (shares consumed, answer kept) before it answers, as for updates
// (aggregate.ts): a retry gets the same answer, and no share enters two batches.
import { createHash } from 'node:crypto'
import type { BlockCipher } from '../../shared/dpf'
import { addHalfNoise, reportCells, sumShares } from '../../shared/outcome-report'
import { digestHex, outcomeShare, readOutcomeHeader } from '../../shared/outcome-transport'
import { encodeAggregateAnswer, type ExclusionReason } from '../../shared/share-sums'
import { parseDocument } from '../federated/documents'
import { cryptoUniform } from '../secure-random'
import {
  answerOf,
  commitAnswer,
  refusal,
  tooSmall,
  type AggregateDeps,
  type AggregateResult,
} from './aggregate'

export interface AggregateOutcomesRequest {
  batch: string
  /** The experiment's digest, hex (shared/outcome-transport.ts). */
  experiment: string
  arms: number
  /** The helper's keys of the reports (their idempotency keys, hex). */
  reports: string[]
}

export async function aggregateOutcomeBatch(
  deps: AggregateDeps & { cipher: BlockCipher; uniform?: () => number },
  body: Uint8Array,
): Promise<AggregateResult> {
  const requestSha256 = createHash('sha256').update(body).digest('hex')
  const parsed = parseDocument<AggregateOutcomesRequest>(
    'aggregate-outcomes',
    new TextDecoder().decode(body),
  )
  if (!parsed.ok) return refusal('E_REQUEST', parsed.message)
  const request = parsed.value
  if (new Set(request.reports).size !== request.reports.length)
    return refusal('E_REQUEST', 'expected each report once')
  const earlier = await answerOf(deps.store, request.batch, requestSha256)
  if (earlier) return earlier

  const cells = reportCells(request.arms)
  const stored = new Map((await deps.store.shares(request.reports)).map((s) => [s.key, s]))
  const excluded: [number, ExclusionReason][] = []
  const included: { key: string; share: Uint32Array }[] = []
  request.reports.forEach((key, index) => {
    const share = stored.get(key)
    if (!share) return excluded.push([index, 'missing'])
    if (share.batch !== null) return excluded.push([index, 'consumed'])
    try {
      const header = readOutcomeHeader(share.body)
      if (digestHex(header.experiment) !== request.experiment)
        throw new RangeError('a report of another experiment')
      included.push({ key, share: outcomeShare(share.body, 1, cells, deps.cipher) })
    } catch (error) {
      if (!(error instanceof RangeError)) throw error
      excluded.push([index, 'malformed'])
    }
  })
  if (included.length < deps.settings.minBatch)
    return tooSmall(deps.settings.minBatch, included.length, excluded)
  const sum = sumShares(
    included.map((r) => r.share),
    cells,
  )
  const sigma = deps.settings.outcomeSigma
  addHalfNoise(sum, request.arms, sigma, deps.uniform ?? cryptoUniform)
  const answer = encodeAggregateAnswer({
    batch: request.batch,
    excluded,
    sums: new Uint8Array(sum.buffer),
    sigma,
  })
  return commitAnswer(
    deps,
    request.batch,
    requestSha256,
    answer,
    included.map((r) => r.key),
  )
}
