// Receiving one update (PROTOCOL.md P13, P29c): every check runs before anything is stored, in
// the documented order, and each refusal carries a status and a stable code. A retry of an update
// already stored is answered `duplicate` before any rule that may have changed since (slice,
// staleness, limits). Only `store.accept` writes, atomic with the idempotency and P15 rules. An
// upload is the leader's share body and the device's score (shared/leader-upload.ts); its keys
// are checked at the release, with the helper (secure-release.ts), and its payload has no bound
// a server could check (P29b).
import { decodeLeaderUpload, leaderUploadBytes } from '../../shared/leader-upload'
import { readShareHeader } from '../../shared/secure-update'
import type { FederationStore } from '../storage/store'
import { checkVersion, type FedBuffSettings } from './fedbuff'
import { channelParams } from './secure-channel'
import { verifyToken } from './tokens'
import { HTTP_STATUS } from '../http-errors'

export type IntakeCode =
  | 'accepted'
  | 'duplicate'
  | 'E_TOO_LARGE'
  | 'E_TOKEN'
  | 'E_UPDATE_FORMAT'
  | 'E_UPDATE_SLICE'
  | 'E_VERSION_STALE'
  | 'E_VERSION_UNKNOWN'
  | 'E_RATE_LIMITED'
  | 'E_CLIENT_LIMIT'
  | 'E_NO_HELPER'

export interface IntakeResult {
  /** The answer's status: 202 accepted, 200 duplicate, else the refusal's (http-errors.ts). */
  status: 200 | 202 | (typeof HTTP_STATUS)[Exclude<IntakeCode, 'accepted' | 'duplicate'>]
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
}

/** P13, P29c: why a server paired with no helper refuses tokens and updates. */
export const NO_HELPER = 'this server is paired with no helper: it takes no updates (P29c)'

const refuse = (
  code: Exclude<IntakeCode, 'accepted' | 'duplicate'>,
  message: string,
): IntakeResult => ({ status: HTTP_STATUS[code], code, message })
const DUPLICATE: IntakeResult = {
  status: 200,
  code: 'duplicate',
  message: 'this update was accepted before',
}

export async function receiveUpdate(
  deps: IntakeDeps,
  request: { token: unknown; body: Uint8Array },
): Promise<IntakeResult> {
  const { settings } = deps
  const secure = settings.secure
  if (!secure) return refuse('E_NO_HELPER', NO_HELPER)
  const limit = uploadByteLength(settings)
  if (request.body.length > limit) {
    return refuse('E_TOO_LARGE', `expected at most ${limit} bytes, got ${request.body.length}`)
  }
  const checked = verifyToken(request.token, deps.secret, deps.now())
  if (!checked.ok) return refuse('E_TOKEN', checked.reason)
  const token = checked.token
  if (token.site !== deps.site) return refuse('E_TOKEN', `the token is for site ${token.site}`)
  let upload: ReturnType<typeof decodeLeaderUpload>
  try {
    upload = decodeLeaderUpload(request.body, channelParams(secure))
  } catch (error) {
    if (!(error instanceof RangeError)) throw error
    return refuse('E_UPDATE_FORMAT', error.message)
  }
  const header = readShareHeader(upload.body)
  // P12: keys are the client's own; another client's body with the same key is its own update.
  const key = `${token.client}:${Buffer.from(header.idempotencyKey).toString('hex')}`
  if (await deps.store.hasUpdate(key)) {
    return DUPLICATE
  }
  if (header.baseVersion !== token.version) {
    const message = `the token is for v${token.version}, the update is based on v${header.baseVersion}`
    return refuse('E_TOKEN', message)
  }
  if (header.slice !== token.slice) {
    return refuse('E_UPDATE_SLICE', `expected slice ${token.slice}, got ${header.slice}`)
  }
  const current = await deps.currentVersion()
  const version = checkVersion(header.baseVersion, current, settings.maxStaleness)
  if (version === 'too-stale') {
    return refuse(
      'E_VERSION_STALE',
      `base v${header.baseVersion} is more than ${settings.maxStaleness} behind v${current}`,
    )
  }
  if (version === 'unknown') {
    return refuse('E_VERSION_UNKNOWN', `base v${header.baseVersion} is not a published version`)
  }
  // P29c: a release sums updates over one set of public negatives, its parent's, which follow
  // from the model: an update trained on another model is stale, however recent.
  if (version === 'stale-ok') {
    const [base, now] = await Promise.all([
      deps.store.version(header.baseVersion),
      deps.store.version(current),
    ])
    if (base?.manifest.model.sha256 !== now?.manifest.model.sha256)
      return refuse(
        'E_VERSION_STALE',
        `base v${header.baseVersion} has another model than v${current}: train on v${current}`,
      )
  }
  if (deps.allow && !deps.allow(token.client)) {
    return refuse('E_RATE_LIMITED', 'too many uploads from this client; retry later')
  }
  const outcome = await deps.store.accept({
    key,
    clientId: token.client,
    baseVersion: header.baseVersion,
    acceptedAtVersion: current,
    slice: header.slice,
    body: upload.body,
    receivedAtMs: deps.now(),
    score: upload.score,
  })
  if (outcome === 'duplicate') return DUPLICATE
  if (outcome === 'client-limit') {
    const message = 'this client has an update waiting for the next release already'
    return refuse('E_CLIENT_LIMIT', message)
  }
  return { status: 202, code: 'accepted', message: 'stored; it joins the next version' }
}

/** The largest upload the server takes: a leader upload of its channel (P29c); 0 without one. */
export function uploadByteLength(settings: FedBuffSettings): number {
  return settings.secure ? leaderUploadBytes(channelParams(settings.secure)) : 0
}
