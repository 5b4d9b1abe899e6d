// This device's client id (PROTOCOL.md P21): asked of the server once, against a proof of work
// done here in time slices, and kept in IndexedDB. When the server refuses the stored one
// (E_CLIENT: expired, or a random id stored before P21) the uploader asks for a new one.
import { MAX_WORK_BITS, solveWork, type SolveOptions } from '../../../shared/proof-of-work'
import { postJson } from './post-json'

export interface ClientIdDeps {
  fetch: typeof fetch
  /** The manifest's URL: the federation routes are /v1/… on its origin. */
  manifestUrl: URL
  siteKey: string
  store: { loadClientId(): Promise<string | null>; saveClientId(id: string): Promise<void> }
  /** The work's slices and its abort signal (consent withdrawn). */
  work?: SolveOptions
  /**
   * Where a solved challenge waits when the server rations new ids (429): sent again while the
   * challenge lasts instead of doing the work again. The worker keeps one for its lifetime.
   */
  kept?: { solution?: Solution }
  now?: () => number
}

export interface Solution {
  challenge: string
  nonce: number
  /** The challenge's expiry, ms since the epoch (the server's clock). */
  exp: number
}

export type ClientIdResult =
  { ok: true; id: string } | { ok: false; retry: boolean; reason: string }

const CLIENT_ID = /^[A-Za-z0-9_-]{8,64}$/

/**
 * The stored id, or, when there is none or `renew` (the server refused the stored one), a new
 * one registered and stored. Throws only when the work is aborted.
 */
export async function obtainClientId(deps: ClientIdDeps, renew = false): Promise<ClientIdResult> {
  if (!renew) {
    const stored = await deps.store.loadClientId()
    if (stored) return { ok: true, id: stored }
  }
  const registered = await registerClient(deps)
  if (registered.ok) await deps.store.saveClientId(registered.id)
  return registered
}

/** A challenge, the work, and the id the server derives from the solved challenge. */
async function registerClient(deps: ClientIdDeps): Promise<ClientIdResult> {
  const now = deps.now ?? Date.now
  let solution = deps.kept?.solution
  if (deps.kept) delete deps.kept.solution
  if (!solution || solution.exp <= now()) {
    const solved = await solveChallenge(deps)
    if (!solved.ok) return solved
    solution = solved.solution
  }
  const { challenge, nonce } = solution
  const answer = await post(deps, '/v1/client', { siteKey: deps.siteKey, challenge, nonce })
  if (!answer.ok) {
    if (answer.status === 429 && deps.kept) deps.kept.solution = solution
    return failure(answer)
  }
  const id = answer.body.client
  if (typeof id !== 'string' || !CLIENT_ID.test(id)) {
    return { ok: false, retry: false, reason: `expected a client id, got ${JSON.stringify(id)}` }
  }
  return { ok: true, id }
}

async function solveChallenge(
  deps: ClientIdDeps,
): Promise<{ ok: true; solution: Solution } | { ok: false; retry: boolean; reason: string }> {
  const asked = await post(deps, '/v1/client/challenge', { siteKey: deps.siteKey })
  if (!asked.ok) return failure(asked)
  const { challenge, bits, exp } = asked.body
  if (
    typeof challenge !== 'string' ||
    challenge.length > 256 ||
    !Number.isInteger(bits) ||
    (bits as number) < 0 ||
    (bits as number) > MAX_WORK_BITS ||
    typeof exp !== 'number'
  ) {
    const reason = `expected {challenge, bits ≤ ${MAX_WORK_BITS}, exp}, got ${JSON.stringify(asked.body)}`
    return { ok: false, retry: false, reason }
  }
  const { nonce } = await solveWork(challenge, bits as number, deps.work)
  return { ok: true, solution: { challenge, nonce, exp } }
}

type Refused = { ok: false; retry: boolean; reason: string; status: number }

const failure = ({ retry, reason }: Refused) => ({ ok: false as const, retry, reason })

/** A JSON POST; busy, away or an expired challenge are worth retrying, other refusals not. */
async function post(
  deps: ClientIdDeps,
  path: string,
  body: object,
): Promise<{ ok: true; body: Record<string, unknown> } | Refused> {
  const answer = await postJson(deps.fetch, new URL(path, deps.manifestUrl), body)
  if (answer.status >= 200 && answer.status <= 299 && answer.body) {
    return { ok: true, body: answer.body }
  }
  // A challenge that expired while a slow device worked: the next attempt asks a new one.
  const retry =
    answer.status === 0 ||
    answer.status === 429 ||
    answer.status >= 500 ||
    answer.body?.error === 'E_CHALLENGE'
  return { ok: false, retry, reason: `${path}: ${answer.reason}`, status: answer.status }
}
