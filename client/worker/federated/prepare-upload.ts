// What a round queues in the outbox (PROTOCOL.md P7–P12, P29c): the leader's upload, and the
// helper's body with the helper's URL.
import type { FederationManifest } from '../../../shared/protocol'
import { helperRoute } from '../../../shared/helper-url'
import { decodeWeights } from '../../../shared/weights-codec'
import type { PendingUpload } from '../storage'
import { computeShareUpload } from './share-update'
import type { TokenAnswer } from './uploader'

export interface UploadInput {
  /** The release's model, as served (the global weights: never the personalised copy). */
  modelBytes: Uint8Array
  manifestUrl: URL
  /** Recent sessions (model rows), oldest first. */
  sessions: readonly Int32Array[]
  federation: FederationManifest
  /** The token the update is trained for (its slice). */
  token: TokenAnswer
  baseVersion: number
}

/** The upload of a round, or null when there is nothing to learn from or training diverged. */
export async function prepareUpload(
  input: UploadInput,
): Promise<Omit<PendingUpload, 'baseVersion'> | null> {
  const { federation } = input
  const update = await computeShareUpload(decodeWeights(input.modelBytes), input.sessions, {
    baseVersion: input.baseVersion,
    slice: input.token.slice,
    federation,
    training: {
      learningRate: federation.learningRate,
      denseLearningRate: federation.denseLearningRate,
      epochs: federation.epochs,
    },
  })
  if (!update) return null
  return {
    idempotencyKey: hex(update.idempotencyKey),
    body: update.leader,
    helper: {
      url: String(helperRoute(federation.helper, 'shares', input.manifestUrl)),
      body: update.helper,
    },
  }
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}
