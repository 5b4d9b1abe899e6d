// Short-lived signed upload tokens (PROTOCOL.md P21): `<payload>.<signature>`, both base64url, the
// signature an HMAC-SHA256 of the payload part under the server's secret. A token binds an upload
// to a site, a client, the version it was issued at and the slice the device must send.
import { createHmac, timingSafeEqual } from 'node:crypto'

export interface UploadToken {
  site: string
  /** The device's random client id (P15). */
  client: string
  version: number
  slice: number
  /** Expiry, ms since the epoch. */
  exp: number
}

export type TokenCheck = { ok: true; token: UploadToken } | { ok: false; reason: string }

const MAX_TOKEN_LENGTH = 1024

export function signToken(token: UploadToken, secret: Uint8Array): string {
  const payload = Buffer.from(JSON.stringify(token)).toString('base64url')
  return `${payload}.${mac(payload, secret)}`
}

/** Checks signature, shape and expiry; never throws on hostile input. */
export function verifyToken(raw: unknown, secret: Uint8Array, nowMs: number): TokenCheck {
  if (typeof raw !== 'string' || raw.length > MAX_TOKEN_LENGTH) {
    return { ok: false, reason: 'expected a token string' }
  }
  const dot = raw.indexOf('.')
  if (dot < 1 || dot !== raw.lastIndexOf('.'))
    return { ok: false, reason: 'expected payload.signature' }
  const payload = raw.slice(0, dot)
  const given = Buffer.from(raw.slice(dot + 1), 'base64url')
  const expected = Buffer.from(mac(payload, secret), 'base64url')
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, reason: 'the signature does not match' }
  }
  let token: unknown
  try {
    token = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))
  } catch {
    return { ok: false, reason: 'the payload is not JSON' }
  }
  if (!isUploadToken(token)) return { ok: false, reason: 'the payload is not an upload token' }
  if (token.exp <= nowMs) return { ok: false, reason: 'the token has expired' }
  return { ok: true, token }
}

function isUploadToken(raw: unknown): raw is UploadToken {
  if (typeof raw !== 'object' || raw === null) return false
  const t = raw as Record<string, unknown>
  const u32 = (v: unknown) =>
    Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff
  return (
    typeof t.site === 'string' &&
    typeof t.client === 'string' &&
    t.client.length > 0 &&
    t.client.length <= 64 &&
    u32(t.version) &&
    u32(t.slice) &&
    Number.isFinite(t.exp)
  )
}

function mac(payload: string, secret: Uint8Array): string {
  return createHmac('sha256', secret).update(payload).digest('base64url')
}

/**
 * The slice a client uploads at a version (P8): a keyed hash of the two, so it is uniform over
 * clients, independent of anything the device did, and the same on a retry with a fresh token.
 */
export function sliceFor(client: string, version: number, secret: Uint8Array): number {
  return createHmac('sha256', secret).update(`slice:${client}:${version}`).digest().readUInt32LE(0)
}

/** A token for `client` at `version`, valid for `ttlMs`. */
export function issueToken(
  site: string,
  client: string,
  version: number,
  secret: Uint8Array,
  nowMs: number,
  ttlMs = 10 * 60_000,
): { token: string; slice: number; exp: number } {
  const slice = sliceFor(client, version, secret)
  const exp = nowMs + ttlMs
  return { token: signToken({ site, client, version, slice, exp }, secret), slice, exp }
}
