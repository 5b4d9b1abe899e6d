// What the federation's route files share (index.ts mounts them): the body limits, checked before
// a body is read, the admin check, and the job thread that shop changes and scoring run in.
import type { MiddlewareHandler } from 'hono'
import type { Jobs } from '../../jobs/jobs'
import { limitBody } from '../documents'
import { isAdminToken } from '../secrets'
import { refuse } from '../../http-errors'

/** A catalogue of 43,097 products is 7 MB of JSON; room for ten times that. */
const MAX_SHOP_UPLOAD_BYTES = 64 * 2 ** 20
/** Token requests and admin requests (`{version}`, metrics): a few hundred bytes. */
const MAX_SMALL_BODY_BYTES = 4096

/** Token requests and admin requests that name a version. */
export const smallBody = limitBody(MAX_SMALL_BODY_BYTES)
/** A shop document or a validation set. */
export const shopUploadBody = limitBody(MAX_SHOP_UPLOAD_BYTES)

/** 401 E_ADMIN unless the request carries the admin token; runs before any body is read. */
export function adminOnly(adminTokenSha256: Uint8Array): MiddlewareHandler {
  return async (c, next) => {
    const given = c.req.header('authorization')?.replace(/^Bearer /, '')
    if (!isAdminToken(given, adminTokenSha256)) refuse('E_ADMIN', 'expected the admin token')
    await next()
  }
}

/**
 * The job thread, where shop changes, the validation set and scoring run (P25, P26). Bodies are
 * parsed there, not here: JSON.parse alone took 37 ms for DIGINETICA's 7 MB catalogue, and
 * uploads may be 64 MiB. Without it (deps built by hand) those routes answer 500.
 */
export function requireJobs(deps: { jobs?: Jobs }): Jobs {
  if (!deps.jobs) throw new Error('expected the job thread in deps.jobs (createFederation)')
  return deps.jobs
}
