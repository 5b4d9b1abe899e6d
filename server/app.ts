// createApp(deps): routes only, no runtime. It serves the built storefront, the federation's
// routes under /v1 and the releases under /artifacts when given a federation (else the
// trainer's artifacts as static files), and answers every refusal through answerError.
import { Hono } from 'hono'
import { serveStatic } from '@hono/node-server/serve-static'
import { cors } from 'hono/cors'
import { etag } from 'hono/etag'
import { fairTurns } from './fair-turns'
import { releaseRoutes } from './federated/releases'
import { federationRoutes, type FederationDeps } from './federated/routes'
import { answerError, answerNotFound } from './http-errors'

export interface AppDeps {
  /** The built demo, loader, worker and .wasm files (`npm run build`), artifacts under artifacts/. */
  distDir: string
  /** The aggregation routes under /v1 (PROTOCOL.md); without them the server only serves files. */
  federation?: FederationDeps
  /** The stand-in helper's app (P29c), mounted at /helper: `npm start` runs one in-process. */
  helper?: Hono
}

/** A top-level script or wasm file: its name stays, so it is revalidated rather than cached. */
const NAMED_FILE = /^\/[\w.-]+\.(js|wasm)$/

export function createApp(deps: AppDeps): Hono {
  const app = new Hono()
  // One request per turn of the event loop, in arrival order: new connections are not starved.
  app.use('/*', fairTurns())
  // The tag, worker and artifacts are public and carry no credentials. A shop that loads the tag
  // from this server runs the worker as a blob on its own origin, which imports the worker
  // script and fetches the artifacts from here: both need CORS. Uploads authenticate with a
  // bearer token in a header, never a cookie, so any origin may send them too. Admin routes are
  // for the operator page on this origin only: no CORS, so no other page's script can call them.
  const publicCors = cors({
    origin: '*',
    allowMethods: ['GET', 'HEAD', 'POST'],
    allowHeaders: ['authorization', 'content-type', 'range'],
    // A device resuming a download checks the part it got (sync-release.ts).
    exposeHeaders: ['Content-Range'],
  })
  app.use('/*', (c, next) =>
    c.req.path === '/v1/admin' || c.req.path.startsWith('/v1/admin/')
      ? next()
      : publicCors(c, next),
  )
  if (deps.helper) app.route('/helper', deps.helper)
  if (deps.federation) {
    app.route('/v1', federationRoutes(deps.federation))
    // Releases come from the store: new versions appear there, not in distDir.
    app.route('/artifacts', releaseRoutes(deps.federation))
  }
  app.use('/artifacts/*', async (c, next) => {
    await next()
    // Content-addressed files never change; the manifest names the current ones and must not be
    // cached, and neither must an error (a missing or damaged artifact may be there tomorrow).
    const immutable = c.res.ok && !c.req.path.endsWith('/manifest.json')
    c.header('Cache-Control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
  })
  // Vite names every chunk under assets/ by its content hash: a repeat visit needs none of them.
  app.use('/assets/*', async (c, next) => {
    await next()
    if (c.res.ok) c.header('Cache-Control', 'public, max-age=31536000, immutable')
  })
  // The files a page names (the tag, the worker's entry, the wasm, …) keep their names across
  // builds: checked again on every visit, answered 304 while unchanged, so a repeat visit moves
  // none of their bytes (the ETag is the digest of the body sent, per encoding).
  const revalidate = etag()
  app.use('/*', async (c, next) => {
    if (!NAMED_FILE.test(c.req.path)) return next()
    await revalidate(c, next)
    if (c.res.ok || c.res.status === 304) c.header('Cache-Control', 'no-cache')
  })
  // precompressed: a file's .br or .gz sibling (written by the build and the exporter) goes to
  // clients that accept it, with Vary: Accept-Encoding: code, wasm and artifacts alike. A Range
  // (a device resuming an artifact's download) is always of the plain file.
  const compressed = serveStatic({ root: deps.distDir, precompressed: true })
  const plain = serveStatic({ root: deps.distDir })
  app.use('/*', (c, next) => (c.req.header('range') ? plain(c, next) : compressed(c, next)))
  app.notFound(answerNotFound)
  app.onError(answerError)
  return app
}
