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
import type { FederationStore } from '../storage/store'
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
  const limit = updateByteLength(settings.layout)
  if (request.body.length > limit) {
    return refuse(413, 'E_TOO_LARGE', `expected at most ${limit} bytes, got ${request.body.length}`)
  }
  const checked = verifyToken(request.token, deps.secret, deps.now())
  if (!checked.ok) return refuse(401, 'E_TOKEN', checked.reason)
  const token = checked.token
  if (token.site !== deps.site) return refuse(401, 'E_TOKEN', `the token is for site ${token.site}`)
  let update: ModelUpdate
  try {
    update = decodeUpdate(request.body)
  } catch (error) {
    if (!(error instanceof UpdateFormatError)) throw error
    return refuse(400, 'E_UPDATE_FORMAT', `${error.code}: ${error.message}`)
  }
  // P12: keys are the client's own; another client's body with the same key is its own update.
  const key = `${token.client}:${Buffer.from(update.idempotencyKey).toString('hex')}`
  if (await deps.store.hasUpdate(key)) {
    return refuse(200, 'duplicate', 'this update was accepted before')
  }
  if (update.baseVersion !== token.version) {
    const message = `the token is for v${token.version}, the update is based on v${update.baseVersion}`
    return refuse(401, 'E_TOKEN', message)
  }
  if (!sameLayout(update.layout, settings.layout)) {
    return refuse(422, 'E_UPDATE_LAYOUT', 'expected the layout of the current federation block')
  }
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
  if (update.layout.tableSketch && deps.nItems === undefined) {
    throw new Error('expected the model item count for a sketch layout (P8b)')
  }
  const layout = serverReading(update.layout, settings.layout)
  const norm = contributionNorm(update.values, update.slice, layout, deps.nItems ?? 0)
  // float16 rounding may lift a norm clipped to exactly C by a hair: allow 0.5 %.
  if (!(norm <= settings.clipNorm * 1.005)) {
    return refuse(422, 'E_UPDATE_NORM', `expected an L2 norm ≤ ${settings.clipNorm}, got ${norm}`)
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
    body: request.body,
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
