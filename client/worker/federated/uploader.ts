// Getting updates to the server (PROTOCOL.md P12, P21, P29c): a token per attempt (asked for the
// version the update was trained on, so a retry gets the same slice; the first attempt reuses the
// token the update was trained for while it is valid), the body from the outbox (on the
// two-server channel, the helper's body to the helper first, then the leader's), and the answer
// decides: accepted or duplicate → done; any other 4xx → the server will never
// take it (stale, malformed, over the limit) → dropped; 429, 5xx or no answer → kept for later.
import type { OutboxStore } from '../storage'
import type { ClientIdResult } from './client-id'
import { postBytes, postJson } from './post-json'

export interface UploaderDeps {
  fetch: typeof fetch
  /** The manifest's URL: the federation routes are /v1/… on its origin. */
  manifestUrl: URL
  siteKey: string
  /**
   * This device's issued id (client-id.ts): the stored one, or with `renew` a new one, asked for
   * when the server refused the stored one (E_CLIENT).
   */
  clientId: (renew: boolean) => Promise<ClientIdResult>
  outbox: OutboxStore
}

export interface TokenAnswer {
  token: string
  slice: number
  version: number
}

export type DrainResult = { sent: number; dropped: number; kept: number }

/**
 * Asks for an upload token for `version` (default: the server's current one). A stored id the
 * server refuses is replaced once, and the token asked again with the new one.
 */
export async function requestToken(
  deps: Omit<UploaderDeps, 'outbox'>,
  version?: number,
): Promise<{ ok: true; answer: TokenAnswer } | { ok: false; retry: boolean; reason: string }> {
  let id = await deps.clientId(false)
  if (!id.ok) return id
  let answer = await askToken(deps, id.id, version)
  // The stored id is not one the server takes (expired, or random from before P21): once more
  // with a new one.
  if (answer.status === 400 && answer.body?.error === 'E_CLIENT') {
    id = await deps.clientId(true)
    if (!id.ok) return id
    answer = await askToken(deps, id.id, version)
  }
  if (answer.status < 200 || answer.status > 299 || !answer.body) {
    const retry = answer.status === 0 || answer.status === 429 || answer.status >= 500
    return { ok: false, retry, reason: `token: ${answer.reason}` }
  }
  return { ok: true, answer: answer.body as unknown as TokenAnswer }
}

/**
 * Sends the queued uploads, oldest first; stops at the first one the server could not take now.
 * `held`: a token the caller already has (the one whose slice it just trained for), used for the
 * first upload of its version instead of asking again; if the server no longer takes it (401:
 * expired), a fresh one is asked for.
 */
export async function drainOutbox(deps: UploaderDeps, held?: TokenAnswer): Promise<DrainResult> {
  const result: DrainResult = { sent: 0, dropped: 0, kept: 0 }
  const pending = await deps.outbox.list()
  const updatesUrl = new URL('/v1/updates', deps.manifestUrl)
  let spare = held
  for (let i = 0; i < pending.length; i++) {
    const upload = pending[i]!
    const base = Number(upload.baseVersion.replace(/^v/, ''))
    // P29c: the helper's body first (it keeps the first body under a key, so a retry is
    // harmless): the leader counts an update only once the helper holds its half.
    let status: number | null = upload.helper
      ? await postBytes(deps.fetch, upload.helper.url, upload.helper.body)
      : null
    if (status === null || status === 200 || status === 202) {
      status = null
      if (spare?.version === base) {
        status = await postBytes(deps.fetch, updatesUrl, upload.body, spare.token)
        spare = undefined
      }
      // No token yet, or the held one has expired (401): ask for one.
      if (status === null || status === 401) {
        const token = await requestToken(deps, base)
        if (!token.ok) {
          if (!token.retry) {
            await deps.outbox.remove(upload.id)
            result.dropped++
            continue
          }
          await deps.outbox.recordAttempt(upload.id)
          result.kept += pending.length - i
          return result
        }
        status = await postBytes(deps.fetch, updatesUrl, upload.body, token.answer.token)
      }
    }
    if (status === 200 || status === 202) {
      await deps.outbox.remove(upload.id)
      result.sent++
    } else if (status >= 400 && status < 500 && status !== 429) {
      await deps.outbox.remove(upload.id)
      result.dropped++
    } else {
      await deps.outbox.recordAttempt(upload.id)
      result.kept += pending.length - i
      return result
    }
  }
  return result
}

/** POST /v1/token for `client` (and `version`). */
function askToken(deps: Omit<UploaderDeps, 'outbox'>, client: string, version?: number) {
  const url = new URL('/v1/token', deps.manifestUrl)
  return postJson(deps.fetch, url, { siteKey: deps.siteKey, client, version })
}
