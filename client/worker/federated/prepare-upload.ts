// What a round queues in the outbox (PROTOCOL.md P7–P12, P28, P29c): on the two-server channel
// the leader's upload and the helper's body with the helper's URL; else the slice update with
// its popularity sketch (P8–P11, P28), whichever the release's federation block announces.
import type { FederationManifest } from '../../../shared/protocol'
import { helperRoute } from '../../../shared/helper-url'
import { decodeWeights } from '../../../shared/weights-codec'
import type { PendingUpload } from '../storage'
import { computeUpdate, sessionsToReport } from './compute-update'
import { computeShareUpload } from './share-update'
import type { TokenAnswer } from './uploader'

export interface UploadInput {
  /** The release's model, as served (the global weights: never the personalised copy). */
  modelBytes: Uint8Array
  manifestUrl: URL
  /** Recent sessions (model rows), oldest first, with their stored ids. */
  recent: readonly { id: number; items: Int32Array }[]
  federation: FederationManifest
  /** The token the update is trained for (its slice). */
  token: TokenAnswer
  baseVersion: number
  /** P28: the last session a popularity sketch reported, or null. */
  reportedThrough: number | null
}

export interface QueuedUpdate {
  upload: Omit<PendingUpload, 'baseVersion'>
  /** P28: the session to record as reported once queued; undefined keeps the old mark. */
  reportedThrough: number | undefined
}

/** The upload of a round, or null when there is nothing to learn from or training diverged. */
export async function prepareUpload(input: UploadInput): Promise<QueuedUpdate | null> {
  const { federation } = input
  const training = {
    learningRate: federation.learningRate,
    denseLearningRate: federation.denseLearningRate,
    epochs: federation.epochs,
  }
  const global = decodeWeights(input.modelBytes)
  const sessions = input.recent.map((s) => s.items)
  if (federation.secure) {
    const update = await computeShareUpload(global, sessions, {
      baseVersion: input.baseVersion,
      slice: input.token.slice,
      secure: federation.secure,
      training,
    })
    if (!update) return null
    const url = String(helperRoute(federation.secure.helper, 'shares', input.manifestUrl))
    return {
      upload: {
        idempotencyKey: hex(update.idempotencyKey),
        body: update.leader,
        helper: { url, body: update.helper },
      },
      // The channel's per-row counts are the popularity (P29): no sketch, no mark moves.
      reportedThrough: undefined,
    }
  }
  // P28: a session's items go into one popularity sketch only; reported again to the next
  // version under a new hash, the buckets would intersect down to the items themselves.
  const report = sessionsToReport(input.recent, input.reportedThrough)
  const update = await computeUpdate(global, sessions, {
    baseVersion: input.baseVersion,
    slice: input.token.slice,
    layout: federation.layout,
    clipNorm: federation.clipNorm,
    popularitySessions: report.sessions,
    training,
  })
  if (!update) return null
  return {
    upload: { idempotencyKey: hex(update.idempotencyKey), body: update.body },
    reportedThrough: report.through ?? undefined,
  }
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}
