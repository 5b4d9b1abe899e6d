// The helper's half of a release (PROTOCOL.md P29c), run in its aggregation thread: the leader
// names a batch of reports by key with its digest of each; the helper checks its own body of each
// (verifyShareBody), leaves out those missing, consumed by an earlier batch, malformed or whose
// digests differ, and, if at least `minBatch` remain, adds them into its share of the sums and
// commits the batch (the shares consumed and the answer kept) in one transaction before it
// answers. A retry of the same request gets the same answer; a different request under the same
// batch id is refused, and no share enters two batches: two overlapping batches would let the
// leader subtract one device's update out of their sums.
import { createHash } from 'node:crypto'
import type { BlockCipher } from '../../shared/dpf'
import { addShareBodies, secureParamsFor, verifyShareBody } from '../../shared/secure-update'
import {
  encodeAggregateAnswer,
  encodeShareSums,
  type ExclusionReason,
} from '../../shared/share-sums'
import { createSparseSums, type SparseLayout, type SparseShape } from '../../shared/sparse-update'
import { checkDocument } from '../federated/documents'
import type { HelperStore } from './helper-store'

export interface AggregateRequest {
  batch: string
  layout: SparseLayout
  shape: SparseShape
  reports: { key: string; digest: string }[]
}

export type AggregateCode =
  'E_REQUEST' | 'E_BATCH_MISMATCH' | 'E_BATCH_GONE' | 'E_BATCH_SMALL' | 'E_BATCH_CONFLICT'

export type AggregateResult =
  | { status: 'answered'; answer: Uint8Array }
  | {
      status: 'refused'
      code: AggregateCode
      message: string
      /** E_BATCH_SMALL: the reports left out (index in the request, why); the leader drops them. */
      excluded?: [number, ExclusionReason][]
    }

export interface AggregateSettings {
  /** The fewest reports whose sums this helper lets leave it, whatever the leader asks. */
  minBatch: number
  /**
   * P30c: the noise multiplier of the helper's half of the noise on a batch of outcome reports
   * (N(0, (σ·clip)²/2) per cell); the helper's own setting, whatever the leader asks.
   */
  outcomeSigma: number
  /** Waiting shares older than this are dropped (no leader named them in time). */
  waitingTtlMs: number
}

export interface AggregateDeps {
  store: HelperStore
  settings: AggregateSettings
  cipher: BlockCipher
  now: () => number
}

export const refusal = (
  code: AggregateCode,
  message: string,
  excluded?: [number, ExclusionReason][],
): AggregateResult => ({ status: 'refused', code, message, ...(excluded && { excluded }) })

export async function aggregateBatch(
  deps: AggregateDeps,
  body: Uint8Array,
): Promise<AggregateResult> {
  const { store } = deps
  const requestSha256 = createHash('sha256').update(body).digest('hex')
  const parsed = parseRequest(body)
  if ('message' in parsed) return refusal('E_REQUEST', parsed.message)
  const request = parsed.request
  const earlier = await answerOf(store, request.batch, requestSha256)
  if (earlier) return earlier

  const params = secureParamsFor(request.layout, request.shape)
  const shares = new Map(
    (await store.shares(request.reports.map((r) => r.key))).map((s) => [s.key, s]),
  )
  const excluded: [number, ExclusionReason][] = []
  const included: { key: string; body: Uint8Array }[] = []
  request.reports.forEach(({ key, digest }, index) => {
    const share = shares.get(key)
    const reason = !share ? 'missing' : share.batch !== null ? 'consumed' : check(share.body)
    if (reason) excluded.push([index, reason])
    else included.push({ key, body: share!.body })

    function check(share: Uint8Array): ExclusionReason | undefined {
      try {
        const own = Buffer.from(verifyShareBody(share, 1, params, deps.cipher)).toString('hex')
        return own === digest ? undefined : 'digest'
      } catch (error) {
        if (error instanceof RangeError) return 'malformed'
        throw error
      }
    }
  })
  if (included.length < deps.settings.minBatch)
    return tooSmall(deps.settings.minBatch, included.length, excluded)
  const sums = createSparseSums(request.shape, new Int32Array(request.layout.negativeRows))
  addShareBodies(
    sums,
    included.map((r) => r.body),
    1,
    params,
    deps.cipher,
  )
  const answer = encodeAggregateAnswer({
    batch: request.batch,
    excluded,
    sums: encodeShareSums(sums, request.shape),
  })
  return commitAnswer(
    deps,
    request.batch,
    requestSha256,
    answer,
    included.map((r) => r.key),
  )
}

/**
 * Commits a batch's answer with the shares it consumed, then drops shares that waited too long;
 * the answer, or the one another replica committed meanwhile.
 */
export async function commitAnswer(
  deps: AggregateDeps,
  batch: string,
  requestSha256: string,
  answer: Uint8Array,
  included: readonly string[],
): Promise<AggregateResult> {
  const { store } = deps
  const outcome = await store.commitBatch(
    { id: batch, requestSha256, answer, createdAtMs: deps.now() },
    included,
  )
  await store.dropWaiting(deps.now() - deps.settings.waitingTtlMs)
  if (outcome === 'committed') return { status: 'answered', answer }
  // Another replica committed this batch, or one of its shares, meanwhile.
  return (
    (await answerOf(store, batch, requestSha256)) ??
    refusal('E_BATCH_CONFLICT', 'a share of this batch was consumed meanwhile: send it again')
  )
}

/** E_BATCH_SMALL: fewer than `minBatch` reports qualify; the refusal names those left out. */
export function tooSmall(
  minBatch: number,
  qualifying: number,
  excluded: [number, ExclusionReason][],
): AggregateResult {
  const reasons = excluded.map(([, reason]) => reason)
  const tally = [...new Set(reasons)].map((r) => `${reasons.filter((x) => x === r).length} ${r}`)
  return refusal(
    'E_BATCH_SMALL',
    `expected at least ${minBatch} reports to sum, ${qualifying} qualify` +
      (tally.length ? ` (left out: ${tally.join(', ')})` : ''),
    excluded,
  )
}

/** The committed answer of `batch`, a refusal if it was another request, or null if none. */
export async function answerOf(
  store: HelperStore,
  batch: string,
  requestSha256: string,
): Promise<AggregateResult | null> {
  const record = await store.batch(batch)
  if (!record) return null
  if (record.requestSha256 !== requestSha256)
    return refusal('E_BATCH_MISMATCH', `batch ${batch} was aggregated from another request`)
  if (record.answer.length === 0)
    return refusal('E_BATCH_GONE', `batch ${batch} is older than the answers this helper keeps`)
  return { status: 'answered', answer: record.answer }
}

function parseRequest(body: Uint8Array): { request: AggregateRequest } | { message: string } {
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder().decode(body))
  } catch {
    return { message: 'expected a JSON aggregate request' }
  }
  const checked = checkDocument<AggregateRequest>('aggregate', value)
  if (!checked.ok) return { message: checked.message }
  const request = checked.value
  if (request.layout.embedDim !== request.shape.embedDim)
    return { message: 'expected the layout’s embedDim to equal the shape’s' }
  if (request.layout.denseCoordinates > request.shape.denseSize)
    return { message: 'expected at most shape.denseSize dense coordinates' }
  if (new Set(request.reports.map((r) => r.key)).size !== request.reports.length)
    return { message: 'expected each report once' }
  return { request }
}
