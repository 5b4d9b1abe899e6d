// The server's two secrets, the same across restarts and replicas (issue 11): the key that signs
// upload tokens and derives slices (P21, P8), and the admin token (P22). A secret drawn per
// process made every retried upload after a restart fail its slice check; so each is taken from
// the operator's configuration when given, else created once and kept in the store, where every
// replica and every later start finds it. The admin token is kept as its SHA-256 only: the
// plaintext exists where the operator put it (the environment, or the file `npm start` writes
// once, readable by its owner only), never in the store or a log.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { FederationStore } from '../storage/store'

export interface ServerSecrets {
  /** HMAC key of upload tokens and slices. */
  tokenSecret: Uint8Array
  /** SHA-256 of the admin token. */
  adminTokenSha256: Uint8Array
  /** The admin token's plaintext when it was given or created now; null when it was created by an earlier start. */
  adminToken: string | null
}

const TOKEN_SECRET = 'token-secret'
const ADMIN_TOKEN_SHA256 = 'admin-token-sha256'
/** The shortest token secret and admin token a server takes (server/config.ts checks them). */
export const MIN_SECRET_BYTES = 32
export const MIN_ADMIN_TOKEN_LENGTH = 16

/** The secrets given (checked by server/config.ts), else those kept in the store, else new ones. */
export async function loadSecrets(
  store: FederationStore,
  given: { secret: Uint8Array | undefined; adminToken: string | undefined },
): Promise<ServerSecrets> {
  const tokenSecret =
    given.secret ??
    Buffer.from(
      await store.settingOrInit(TOKEN_SECRET, randomBytes(MIN_SECRET_BYTES).toString('hex')),
      'hex',
    )
  if (given.adminToken !== undefined) {
    return { tokenSecret, adminTokenSha256: sha256(given.adminToken), adminToken: given.adminToken }
  }
  const drawn = randomBytes(18).toString('base64url')
  const stored = await store.settingOrInit(ADMIN_TOKEN_SHA256, hex(sha256(drawn)))
  const created = stored === hex(sha256(drawn))
  return {
    tokenSecret,
    adminTokenSha256: Buffer.from(stored, 'hex'),
    adminToken: created ? drawn : null,
  }
}

/** Whether `given` (a bearer token) is the admin token; constant time in the token's content. */
export function isAdminToken(given: string | undefined, adminTokenSha256: Uint8Array): boolean {
  return given !== undefined && timingSafeEqual(sha256(given), adminTokenSha256)
}

function sha256(text: string): Uint8Array {
  return createHash('sha256').update(text).digest()
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex')
}
