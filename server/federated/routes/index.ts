// The federation's HTTP surface (PROTOCOL.md P13, P21–P26), mounted under /v1 by createApp: one
// file per audience, each listing its routes.
//   device.ts  /v1/client/…, /v1/token, /v1/updates, /v1/outcomes, /v1/federation,
//              /v1/exploration   (devices, anyone)
//   admin.ts   /v1/admin/versions, metrics, promote, rollback, validation, evaluate   (operator)
//   shop.ts    /v1/admin/catalogue, /v1/admin/rules   (the shop's systems, with the admin token)
// Every route that takes a body has a limit, checked before the body is read (an upload: its
// exact size; a shop document: 64 MiB; anything else: a few KiB), and every JSON body is checked
// against its schema (documents.ts) before anything uses it.
import { Hono } from 'hono'
import type { UpdateTraining } from '../defaults'
import { adminRoutes, type AdminDeps } from './admin'
import { deviceRoutes, type DeviceDeps } from './device'
import { adminOnly } from './guards'
import { shopRoutes, type ShopDeps } from './shop'
import { answerError } from '../../http-errors'

export interface FederationDeps extends DeviceDeps, AdminDeps, ShopDeps {
  /** SHA-256 of the admin token (secrets.ts): the token itself is never held. */
  adminTokenSha256: Uint8Array
  /** How devices train for an update, announced in the manifest's federation block. */
  training: UpdateTraining
  /** Where the server reports what an operator must know (a damaged artifact). */
  log: (line: string) => void
}

export function federationRoutes(deps: FederationDeps): Hono {
  const app = new Hono()
  // Refusals are answered here too, so that these routes answer alike mounted or on their own.
  app.onError(answerError)
  app.route('/', deviceRoutes(deps))
  // Every path under /admin, an unknown one too, is authenticated before any body is read.
  const admin = new Hono()
  admin.use(adminOnly(deps.adminTokenSha256))
  admin.route('/', adminRoutes(deps))
  admin.route('/', shopRoutes(deps))
  app.route('/admin', admin)
  return app
}
