// Receiving one update (PROTOCOL.md P13): every check runs before anything is stored, in the
// documented order, and each refusal carries a status and a stable code. A retry of an update
// already stored is answered `duplicate` before any rule that may have changed since (slice,
// staleness, limits). Only `store.accept` writes, atomic with the idempotency and P15 rules.
import {
  decodeUpdate,
  sameLayout,
  updateByteLength,
  updateNorm,
  UpdateFormatError,
  type ModelUpdate,
} from '../../shared/update-codec'
import { POPULARITY_CLIP } from '../../shared/popularity-sketch'
import { contributionNorm, serverReading } from '../../shared/federation-layout'
import type { DeviceScore } from '../../shared/leader-upload'
import { decodeLeaderUpload, leaderUploadBytes } from '../../shared/leader-upload'
import { readShareHeader } from '../../shared/secure-update'
import type { FederationStore } from '../storage/store'
import { channelParams, type SecureChannelSettings } from './secure-channel'
import { checkVersion, updateWeight, type FedBuffSettings } from './fedbuff'
import { verifyToken } from './tokens'

export type IntakeCode =
  | 'accepted'
  | 'duplicate'
  | 'E_TOO_LARGE'
  | 'E_TOKEN'
  | 'E_UPDATE_FORMAT'
  | 'E_UPDATE_LAYOUT'
  | 'E_UPDATE_SLICE'
  | 'E_VERSION_STALE'
  | 'E_VERSION_UNKNOWN'
  | 'E_UPDATE_NORM'
  | 'E_RATE_LIMITED'
  | 'E_CLIENT_LIMIT'

export interface IntakeResult {
  status: 200 | 202 | 400 | 401 | 409 | 413 | 422 | 429
  code: IntakeCode
  message: string
}

export interface IntakeDeps {
  store: FederationStore
  settings: FedBuffSettings
  /** The site this server aggregates for; a token for another is refused. */
  site: string
  secret: Uint8Array
  now: () => number
  /** The current version's number (from the store's "current"). */
  currentVersion: () => Promise<number>
  /** False when this client has sent too much lately (P21). */
  allow?: (client: string) => boolean
  /** The model's item count; needed for the norm of sketch updates (P8b, P11). */
  nItems?: number
}

const refuse = (
  status: IntakeResult['status'],
  code: IntakeCode,
  message: string,
): IntakeResult => ({
  status,
  code,
  message,
})

export async function receiveUpdate(
  deps: IntakeDeps,
  request: { token: unknown; body: Uint8Array },
): Promise<IntakeResult> {
  const { settings } = deps
  const limit = uploadByteLength(settings)
  if (request.body.length > limit) {
    return refuse(413, 'E_TOO_LARGE', `expected at most ${limit} bytes, got ${request.body.length}`)
  }
  const checked = verifyToken(request.token, deps.secret, deps.now())
  if (!checked.ok) return refuse(401, 'E_TOKEN', checked.reason)
  const token = checked.token
  if (token.site !== deps.site) return refuse(401, 'E_TOKEN', `the token is for site ${token.site}`)
  const decoded = settings.secure
    ? readLeaderUpload(request.body, settings.secure)
    : readDenseUpdate(request.body, deps)
  if ('refusal' in decoded) return decoded.refusal
  const update = decoded.upload
  // P12: keys are the client's own; another client's body with the same key is its own update.
  const key = `${token.client}:${Buffer.from(update.idempotencyKey).toString('hex')}`
  if (await deps.store.hasUpdate(key)) {
    return refuse(200, 'duplicate', 'this update was accepted before')
  }
  if (update.baseVersion !== token.version) {
    const message = `the token is for v${token.version}, the update is based on v${update.baseVersion}`
    return refuse(401, 'E_TOKEN', message)
  }
  const layoutRefusal = decoded.checkLayout()
  if (layoutRefusal) return layoutRefusal
  if (update.slice !== token.slice) {
    return refuse(422, 'E_UPDATE_SLICE', `expected slice ${token.slice}, got ${update.slice}`)
  }
  const current = await deps.currentVersion()
  const version = checkVersion(update.baseVersion, current, settings.maxStaleness)
  if (version === 'too-stale') {
    return refuse(
      409,
      'E_VERSION_STALE',
      `base v${update.baseVersion} is more than ${settings.maxStaleness} behind v${current}`,
    )
  }
  if (version === 'unknown') {
    return refuse(
      409,
      'E_VERSION_UNKNOWN',
      `base v${update.baseVersion} is not a published version`,
    )
  }
  // P29c: a release sums updates over one set of public negatives, its parent's, which follow
  // from the model: an update trained on another model is stale, however recent.
  if (settings.secure && version === 'stale-ok') {
    const [base, now] = await Promise.all([
      deps.store.version(update.baseVersion),
      deps.store.version(current),
    ])
    if (base?.manifest.model.sha256 !== now?.manifest.model.sha256)
      return refuse(
        409,
        'E_VERSION_STALE',
        `base v${update.baseVersion} has another model than v${current}: train on v${current}`,
      )
  }
  const boundRefusal = decoded.checkBounds()
  if (boundRefusal) return boundRefusal
  if (deps.allow && !deps.allow(token.client)) {
    return refuse(429, 'E_RATE_LIMITED', 'too many uploads from this client; retry later')
  }
  const outcome = await deps.store.accept({
    key,
    clientId: token.client,
    baseVersion: update.baseVersion,
    acceptedAtVersion: current,
    slice: update.slice,
    examples: update.examples,
    weight: updateWeight(update.examples, current - update.baseVersion, settings.exampleCap),
    body: update.stored,
    receivedAtMs: deps.now(),
    score: update.score,
  })
  if (outcome === 'duplicate') return refuse(200, 'duplicate', 'this update was accepted before')
  if (outcome === 'client-limit') {
    const message = 'this client has an update waiting for the next release already'
    return refuse(409, 'E_CLIENT_LIMIT', message)
  }
  return refuse(202, 'accepted', 'stored; it joins the next version')
}

/** The largest upload the current channel takes: a dense update, or a leader upload (P29c). */
export function uploadByteLength(settings: FedBuffSettings): number {
  return settings.secure
    ? leaderUploadBytes(channelParams(settings.secure))
    : updateByteLength(settings.layout)
}

/** What intake needs of an upload, whichever channel carried it. */
interface Upload {
  idempotencyKey: Uint8Array
  baseVersion: number
  slice: number
  examples: number
  score: DeviceScore
  /** What the store keeps: the dense update as received, or the leader's share body. */
  stored: Uint8Array
}

/** A decoded upload, and the checks of its channel that run in P13's order; or its refusal. */
type Decoded =
  | {
      upload: Upload
      /** The layout (P8–P9): after the token's version check. */
      checkLayout: () => IntakeResult | null
      /** The norms (P11, P28): after the version checks. */
      checkBounds: () => IntakeResult | null
    }
  | { refusal: IntakeResult }

const noRefusal = () => null

/**
 * P29c: the leader's body and the device's score. Its keys are checked at the release (with the
 * helper, secure-release.ts); its payload has no bound a server could check (PROTOCOL.md P29b).
 */
function readLeaderUpload(body: Uint8Array, secure: SecureChannelSettings): Decoded {
  try {
    const { body: share, score } = decodeLeaderUpload(body, channelParams(secure))
    const header = readShareHeader(share)
    return {
      upload: { ...header, examples: 0, score, stored: share },
      checkLayout: noRefusal,
      checkBounds: noRefusal,
    }
  } catch (error) {
    if (!(error instanceof RangeError)) throw error
    return { refusal: refuse(400, 'E_UPDATE_FORMAT', error.message) }
  }
}

/** P8–P11, P28: a dense update of the slice or sketch layout. */
function readDenseUpdate(body: Uint8Array, deps: IntakeDeps): Decoded {
  const { settings } = deps
  let update: ModelUpdate
  try {
    update = decodeUpdate(body)
  } catch (error) {
    if (!(error instanceof UpdateFormatError)) throw error
    return { refusal: refuse(400, 'E_UPDATE_FORMAT', `${error.code}: ${error.message}`) }
  }
  return {
    upload: { ...update, stored: body },
    checkLayout: () =>
      sameLayout(update.layout, settings.layout)
        ? null
        : refuse(422, 'E_UPDATE_LAYOUT', 'expected the layout of the current federation block'),
    checkBounds: () => {
      if (update.layout.tableSketch && deps.nItems === undefined) {
        throw new Error('expected the model item count for a sketch layout (P8b)')
      }
      const layout = serverReading(update.layout, settings.layout)
      const norm = contributionNorm(update.values, update.slice, layout, deps.nItems ?? 0)
      // float16 rounding may lift a norm clipped to exactly C by a hair: allow 0.5 %.
      if (!(norm <= settings.clipNorm * 1.005)) {
        return refuse(
          422,
          'E_UPDATE_NORM',
          `expected an L2 norm ≤ ${settings.clipNorm}, got ${norm}`,
        )
      }
      // P28: the popularity sketch has a bound of its own, with the same float16 allowance.
      const popularityNorm = update.popularity ? updateNorm(update.popularity) : 0
      if (!(popularityNorm <= POPULARITY_CLIP * 1.005)) {
        return refuse(
          422,
          'E_UPDATE_NORM',
          `expected a popularity sketch of L2 norm ≤ ${POPULARITY_CLIP}, got ${popularityNorm}`,
        )
      }
      return null
    },
  }
}
