// How the server refuses a request, in one place: a route throws `refuse(code, message)`, and
// the one onError (answerError) answers `{ error: code, message, ...body }` with the status the
// code maps to and any headers the refusal carries, as Hono's HTTPException does for its own.
// Anything else thrown is a 500 E_INTERNAL. The shop's server (app.ts), the helper
// (helper/service.ts) and each group of routes that may be served alone install it. The codes are documented in shared/errors.ts; PROTOCOL.md
// lists each with its status, and a test holds that table and this map together.
import type { Context } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { PocketrecError, type ErrorCode } from '../shared/errors'

/** Every code a server answers with, and its status. */
export const HTTP_STATUS = {
  E_REQUEST: 400,
  E_TOO_LARGE: 413,
  E_NOT_FOUND: 404,
  E_INTERNAL: 500,
  E_ADMIN: 401,
  E_SITE_KEY: 401,
  E_ORIGIN: 403,
  E_CHALLENGE: 400,
  E_WORK: 400,
  E_CLIENT: 400,
  E_RATE_LIMITED: 429,
  E_TOKEN: 401,
  E_NO_HELPER: 409,
  E_UPDATE_FORMAT: 400,
  E_UPDATE_SLICE: 422,
  E_VERSION_STALE: 409,
  E_VERSION_UNKNOWN: 409,
  E_CLIENT_LIMIT: 409,
  E_OUTCOME_FORMAT: 400,
  E_EXPERIMENT_UNKNOWN: 409,
  E_CATALOGUE: 400,
  E_RULES: 400,
  E_EXPERIMENTS: 400,
  E_VALIDATION: 400,
  E_NO_VALIDATION: 409,
  E_METRICS: 400,
  E_NOT_EVALUATED: 409,
  E_ROLLBACK: 409,
  E_CONFLICT: 409,
  E_NO_RELEASE: 503,
  E_ARTIFACT_CORRUPT: 500,
  E_SHARE_FORMAT: 400,
  E_HELPER_FULL: 503,
  E_LEADER: 401,
  E_BATCH_SMALL: 409,
  E_BATCH_MISMATCH: 409,
  E_BATCH_GONE: 410,
  E_BATCH_CONFLICT: 409,
} as const satisfies Partial<Record<ErrorCode, ContentfulStatusCode>>

export type HttpErrorCode = keyof typeof HTTP_STATUS

export interface RefusalOptions {
  /** Another status than the code's own (an admin route's unknown version is a 404). */
  status?: ContentfulStatusCode
  /** Fields of the answer beside `error` and `message` (`excluded` of E_BATCH_SMALL). */
  body?: Record<string, unknown>
  /** Headers of the answer (`Retry-After`). */
  headers?: Record<string, string>
}

/** A request the server refuses; answerError turns it into the answer. */
export class Refusal extends PocketrecError<HttpErrorCode> {
  declare readonly status: ContentfulStatusCode
  declare readonly options: RefusalOptions

  constructor(code: HttpErrorCode, message: string, options: RefusalOptions = {}) {
    super('Refusal', code, message)
    this.status = options.status ?? HTTP_STATUS[code]
    this.options = options
  }
}

/** Refuses the request: throws the Refusal the app's onError answers. */
export function refuse(code: HttpErrorCode, message: string, options?: RefusalOptions): never {
  throw new Refusal(code, message, options)
}

/** The app's onError: a Refusal as its code says, anything else as 500 E_INTERNAL. */
export function answerError(error: Error, c: Context): Response {
  if (!(error instanceof Refusal)) {
    return c.json({ error: 'E_INTERNAL', message: error.message }, 500)
  }
  for (const [name, value] of Object.entries(error.options.headers ?? {})) c.header(name, value)
  return c.json({ error: error.code, message: error.message, ...error.options.body }, error.status)
}

/** The app's notFound. */
export function answerNotFound(c: Context): Response {
  return c.json({ error: 'E_NOT_FOUND', message: `no route for ${c.req.path}` }, 404)
}
