// Client ids (PROTOCOL.md P21): a device obtains its id from the server against a proof of work,
// and /v1/token takes only ids this server issued, so every id, and every slice it is assigned,
// costs 2^bits hashes. Stateless: challenges and ids carry their own HMAC under the server's
// secret (replicas sharing it agree), and an id is derived from its challenge, so replaying one
// solution always yields the same id. Mounted under /v1 by routes/device.ts:
//   POST /v1/client/challenge  {siteKey} → {challenge, bits, exp}
//   POST /v1/client            {siteKey, challenge, nonce} → {client, exp}
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { Hono, type Context } from 'hono'
import { checkWork } from '../../shared/proof-of-work'
import type { ClientIdSettings, RateLimits } from './defaults'
import { limitBody, parseDocument } from './documents'
import { createRateLimiter } from './rate-limiter'
import { answerError, refuse } from '../http-errors'

/**
 * A public key a script tag may carry (its `data-site`), and the origins (`https://shop.example`)
 * whose pages may register devices with it; empty: any. Browsers set `Origin` themselves, but
 * any other program can send whatever it likes: the cost of an id is the work, the origins only
 * keep other sites' pages from spending a shop's quota.
 */
export interface SiteKey {
  key: string
  origins: readonly string[]
}

/** The site's keys by key: keys come from outside, so they are looked up in a Map. */
export function siteKeyMap(sites: readonly SiteKey[]): ReadonlyMap<string, readonly string[]> {
  return new Map(sites.map((site) => [site.key, site.origins]))
}

export interface ClientIdDeps {
  site: string
  /** The site's public keys (server/config-sites.ts): one model, several names for its tags. */
  sites: readonly SiteKey[]
  secret: Uint8Array
  now: () => number
  /** The work asked for and the lifetimes of challenges and ids (checked by server/config.ts). */
  clientIds: ClientIdSettings
  /** `perSitePerMinute` caps new ids; `maxKeys` bounds the replay memory. */
  rateLimits: Pick<RateLimits, 'perSitePerMinute' | 'maxKeys'>
}

export type ClientIdCheck = { ok: true; id: string; exp: number } | { ok: false; reason: string }

/** r (12 bytes) ‖ expiry in seconds (u32, big-endian) ‖ MAC (12 bytes): 38 base64url chars. */
const ID_BYTES = 28
const ID_LENGTH = 38
const CHALLENGE_MAX_LENGTH = 128
/** The bodies here are a site key, a challenge and a number. */
const MAX_BODY_BYTES = 1024

/** Checks an id's MAC, site and expiry; never throws on hostile input. */
export function verifyClientId(
  raw: unknown,
  deps: Pick<ClientIdDeps, 'site' | 'secret'>,
  nowMs: number,
): ClientIdCheck {
  if (typeof raw !== 'string' || raw.length !== ID_LENGTH || !/^[A-Za-z0-9_-]+$/.test(raw)) {
    return { ok: false, reason: `expected an issued client id (${ID_LENGTH} base64url characters)` }
  }
  const bytes = Buffer.from(raw, 'base64url')
  // Only the canonical spelling: the last character has spare bits, and ids are compared as text.
  if (bytes.length !== ID_BYTES || bytes.toString('base64url') !== raw) {
    return { ok: false, reason: 'expected an issued client id' }
  }
  const expected = idMac(bytes.subarray(0, 16), deps)
  if (!timingSafeEqual(bytes.subarray(16), expected)) {
    return { ok: false, reason: 'the client id was not issued for this site' }
  }
  const exp = bytes.readUInt32BE(12) * 1000
  if (exp <= nowMs) return { ok: false, reason: 'the client id has expired' }
  return { ok: true, id: raw, exp }
}

/** The latest expiry an id can carry (seconds in a u32): February 2106. */
const NEVER_MS = 0xffffffff * 1000

/**
 * An issued id for `seed`, minted with the secret: what POST /v1/client answers for a solved
 * challenge, without the work. For tests, simulations and benchmarks that hold the secret; the
 * same (site, secret, seed) always gives the same id, valid until `expMs` (default: 2106).
 */
export function issueClientId(
  deps: Pick<ClientIdDeps, 'site' | 'secret'>,
  seed: string,
  expMs = NEVER_MS,
): string {
  return mintId(`seed:${seed}`, expMs, deps)
}

export function clientRoutes(deps: ClientIdDeps): Hono {
  const { now, clientIds: settings, rateLimits: limits } = deps
  const keys = siteKeyMap(deps.sites)
  const perSite = createRateLimiter({ limit: limits.perSitePerMinute, maxKeys: 1, now })
  // Ids issued while their challenge could still be replayed: a replay is answered again but
  // not counted, so one solution cannot spend the site's quota.
  const issued = createRateLimiter({
    limit: Infinity,
    windowMs: settings.challengeTtlMs,
    maxKeys: limits.maxKeys,
    now,
  })
  const app = new Hono()
  // Refusals are answered here too, so that these routes answer alike mounted or on their own.
  app.onError(answerError)
  app.use(limitBody(MAX_BODY_BYTES))
  app.post('/challenge', async (c) => {
    await admit<{ siteKey: string }>(c, 'challenge')
    const exp = now() + settings.challengeTtlMs
    const challenge = signChallenge(randomBytes(16).toString('base64url'), settings.bits, exp, deps)
    return c.json({ challenge, bits: settings.bits, exp })
  })

  app.post('/', async (c) => {
    const body = await admit<{ siteKey: string; challenge: string; nonce: number }>(c, 'client')
    const checked = verifyChallenge(body.challenge, deps, now())
    if (!checked.ok) refuse('E_CHALLENGE', checked.reason)
    if (!checkWork(checked.challenge, body.nonce, checked.bits)) {
      const message = `expected a nonce with SHA-256(SHA-256(challenge) ‖ nonce) starting with ${checked.bits} zero bits`
      refuse('E_WORK', message)
    }
    const exp = checked.exp + settings.idTtlMs
    const client = mintId(`challenge:${checked.challenge}`, exp, deps)
    if (!issued.has(client)) {
      if (!perSite.take(deps.site)) {
        refuse(
          'E_RATE_LIMITED',
          'too many new devices this minute; send the same solution again later',
        )
      }
      issued.take(client)
    }
    return c.json({ client, exp: Math.floor(exp / 1000) * 1000 })
  })

  /** The body against its schema, the site key, then its origins; none keeps any state. */
  async function admit<T extends { siteKey: string }>(
    c: Context,
    kind: 'challenge' | 'client',
  ): Promise<T> {
    const parsed = parseDocument<T>(kind, await c.req.text())
    if (!parsed.ok) refuse('E_REQUEST', parsed.message)
    const key = parsed.value.siteKey
    const origins = keys.get(key)
    if (!origins) refuse('E_SITE_KEY', 'expected one of this site’s public keys')
    const origin = c.req.header('origin')
    if (origins.length > 0 && !origins.includes(origin ?? '')) {
      const message = `expected a page on one of the origins of site key ${key}, got ${origin ?? 'no Origin header'}`
      refuse('E_ORIGIN', message)
    }
    return parsed.value
  }
  return app
}

/** `<random>.<bits>.<expiry ms>.<MAC>`: the MAC covers the site and the three fields. */
function signChallenge(
  random: string,
  bits: number,
  exp: number,
  deps: Pick<ClientIdDeps, 'site' | 'secret'>,
): string {
  const fields = `${random}.${bits}.${exp}`
  return `${fields}.${challengeMac(fields, deps).toString('base64url')}`
}

function verifyChallenge(
  raw: unknown,
  deps: Pick<ClientIdDeps, 'site' | 'secret'>,
  nowMs: number,
): { ok: true; challenge: string; bits: number; exp: number } | { ok: false; reason: string } {
  if (typeof raw !== 'string' || raw.length > CHALLENGE_MAX_LENGTH) {
    return { ok: false, reason: 'expected the challenge string from POST /v1/client/challenge' }
  }
  const parts = raw.split('.')
  if (parts.length !== 4 || !/^\d{1,2}$/.test(parts[1]!) || !/^\d{1,15}$/.test(parts[2]!)) {
    return { ok: false, reason: 'expected <random>.<bits>.<expiry>.<signature>' }
  }
  const given = Buffer.from(parts[3]!, 'base64url')
  const expected = challengeMac(parts.slice(0, 3).join('.'), deps)
  // The canonical spelling only: an id is derived from the challenge's text.
  if (
    given.length !== expected.length ||
    !timingSafeEqual(given, expected) ||
    given.toString('base64url') !== parts[3]
  ) {
    return { ok: false, reason: 'the challenge was not issued for this site, or was altered' }
  }
  const exp = Number(parts[2])
  if (exp <= nowMs) return { ok: false, reason: 'the challenge has expired: ask for a new one' }
  return { ok: true, challenge: raw, bits: Number(parts[1]), exp }
}

function challengeMac(fields: string, deps: Pick<ClientIdDeps, 'site' | 'secret'>): Buffer {
  return createHmac('sha256', deps.secret)
    .update(`client-challenge:${deps.site}:${fields}`)
    .digest()
    .subarray(0, 16)
}

/** The id for `material` (a challenge, or a seed): the same material always gives the same id. */
function mintId(
  material: string,
  expMs: number,
  deps: Pick<ClientIdDeps, 'site' | 'secret'>,
): string {
  const bytes = Buffer.alloc(ID_BYTES)
  createHmac('sha256', deps.secret).update(`client-id:${material}`).digest().copy(bytes, 0, 0, 12)
  bytes.writeUInt32BE(Math.min(Math.floor(expMs / 1000), 0xffffffff), 12)
  idMac(bytes.subarray(0, 16), deps).copy(bytes, 16)
  return bytes.toString('base64url')
}

function idMac(body: Uint8Array, deps: Pick<ClientIdDeps, 'site' | 'secret'>): Buffer {
  return createHmac('sha256', deps.secret)
    .update(`client-id-mac:${deps.site}:`)
    .update(body)
    .digest()
    .subarray(0, 12)
}
