// The device's side of the two-server channel (PROTOCOL.md P29–P29c): the release's model scored
// on the shopper's own next items (P27), a sparse contribution trained from it
// (compute-sparse-update.ts), its viewed rows placed in the public buckets, and the whole split
// into two bodies of a fixed size, one for the leader (with the score) and one for the helper.
// Either body alone is pseudorandom; the keys come from WebCrypto's CSPRNG and noble's AES.
import { encodeLeaderUpload, type DeviceScore } from '../../../shared/leader-upload'
import { createNobleCipher } from '../../../shared/noble-cipher'
import type { FederationManifest } from '../../../shared/protocol'
import { placeRows } from '../../../shared/row-buckets'
import { secureParamsFor, splitContribution } from '../../../shared/secure-update'
import { withoutRows } from '../../../shared/sparse-update'
import { splitWeights } from '../../../shared/federation-layout'
import type { WeightsFile } from '../../../shared/weights-codec'
import { importModelWeights } from '../../../model/model-weights'
import { computeSparseUpdate } from './compute-sparse-update'
import { scoreCases } from './score-cases'
import type { LocalTrainerOptions } from '../../../model/train-local'

export interface SharePlan {
  baseVersion: number
  /** The token's slice: which dense window the update carries. */
  slice: number
  /** The release's federation block: layout, clip bound, public negatives. */
  federation: FederationManifest
  training?: LocalTrainerOptions
}

export interface ShareUpload {
  /** The leader's upload: its body and the score (leader-upload.ts). */
  leader: Uint8Array
  /** The helper's body. */
  helper: Uint8Array
  /** The same in both bodies: how the servers pair them, and the P12 key. */
  idempotencyKey: Uint8Array
  score: DeviceScore
  /** Rows trained, of which `dropped` could not be placed in a bucket (sent by neither body). */
  rows: number
  dropped: number
}

const randomBytes = (n: number) => globalThis.crypto.getRandomValues(new Uint8Array(n))

/** A uniform draw in [0, 1) from the CSPRNG: the placement must not be predictable either. */
function secureRandom(): number {
  return globalThis.crypto.getRandomValues(new Uint32Array(1))[0]! / 2 ** 32
}

/**
 * The two bodies of the update of `sessions` (model rows, oldest first) to the release of
 * `global`, or null when there is nothing to learn from or the run diverged.
 */
export async function computeShareUpload(
  global: WeightsFile,
  sessions: readonly Int32Array[],
  plan: SharePlan,
): Promise<ShareUpload | null> {
  // Scored first: after training on them the cases would no longer be unseen (P27).
  const full = importModelWeights(global)
  let score: DeviceScore
  try {
    score = await scoreCases(full, sessions)
  } finally {
    full.dispose()
  }
  const { federation } = plan
  const update = await computeSparseUpdate(global, sessions, {
    slice: plan.slice,
    layout: federation.layout,
    negativeRows: Int32Array.from(federation.negatives),
    clipNorm: federation.clipNorm,
    training: plan.training,
  })
  if (!update) return null
  const shape = splitWeights(global).shape
  const params = secureParamsFor(federation.layout, shape)
  const placed = placeRows(update.contribution.rows, params.buckets.params, secureRandom)
  const contribution = withoutRows(update.contribution, placed.dropped, shape.embedDim)
  const idempotencyKey = randomBytes(16)
  const [leader, helper] = splitContribution(
    contribution,
    placed.bucketRow,
    { baseVersion: plan.baseVersion, slice: plan.slice, idempotencyKey },
    params,
    randomBytes,
    createNobleCipher(),
  )
  return {
    leader: encodeLeaderUpload(leader, score),
    helper,
    idempotencyKey,
    score,
    rows: update.contribution.rows.length,
    dropped: placed.dropped.length,
  }
}
