// The only runtime file: opens the store, binds a port on the loopback interface and serves
// createApp, with the federation routes and the publisher loop unless told to only serve files.
import { serve } from '@hono/node-server'
import { randomBytes } from 'node:crypto'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { createApp } from './app'
import { resolveConfig, type ServerFederationConfig, type ServerOptions } from './config'
import { createFederation, type Federation } from './federated/service'
import { openStore } from './storage/open-store'
import { createHelper, type Helper } from './helper/service'
import type { FederationStore } from './storage/store'

/** Starts the server `options` describe, the environment filling what they leave out (config.ts). */
export async function startServer(options: ServerOptions) {
  const config = resolveConfig(options, process.env)
  const { log, host } = config
  let stop = () => {}
  let federation: Federation | undefined
  let store: FederationStore | undefined
  let helper: Helper | undefined
  // Listening first: the stand-in helper's link needs the port (0 picks one).
  let handle: (request: Request) => Response | Promise<Response> = () =>
    new Response('starting', { status: 503, headers: { 'retry-after': '1' } })
  const server = serve({ fetch: (request) => handle(request), port: config.port, hostname: host })
  if (!server.listening) await new Promise((resolve) => server.once('listening', resolve))
  if (config.federation) {
    const f = config.federation
    if (f.store.kind === 'sqlite') mkdirSync(path.dirname(f.store.file), { recursive: true })
    store = await openStore(f.store)
    let pairing = f.helper
    if (pairing && 'standIn' in pairing) {
      const helperStore = pairing.standIn
      const token = randomBytes(32).toString('hex')
      helper = await createHelper({ store: helperStore, leaderToken: token, mounted: true })
      const port = (server.address() as AddressInfo).port
      const loopback = ['0.0.0.0', '::'].includes(host) ? '127.0.0.1' : host
      pairing = { url: '/helper', link: `http://${loopback}:${port}/helper`, token }
      log(
        `helper: a stand-in in this process with its own ${helperStore.kind} store, mounted at ` +
          '/helper; a shop pairs with a helper run by another operator (README)',
      )
    }
    federation = await createFederation(store, { ...f, helper: pairing })
    stop = federation.startPublisher(f.publishEveryMs, log)
    log(
      `federation: ${store.kind} store, v${(await store.current())!.version} current, ` +
        `promotion ${f.promotion}; admin token: ${handOverAdminToken(federation.adminToken, f)}`,
    )
  }
  handle = createApp({
    distDir: config.distDir,
    federation: federation?.deps,
    helper: helper?.app,
  }).fetch
  return {
    server,
    async close() {
      stop()
      await new Promise((resolve) => server.close(resolve))
      await federation?.close()
      await store?.close()
      await helper?.close()
    },
  }
}

/**
 * Writes a token this start created to a file only its owner can read, and says where the
 * operator finds the admin token: never the token itself (logs are collected and shared).
 */
function handOverAdminToken(
  created: string | null,
  f: Pick<ServerFederationConfig, 'adminTokenFrom' | 'adminTokenFile'>,
): string {
  if (f.adminTokenFrom === 'options') return 'the one configured'
  if (f.adminTokenFrom === 'environment') return 'POCKETREC_ADMIN_TOKEN'
  const file = f.adminTokenFile
  const shown = path.relative(process.cwd(), file) || file
  if (created === null) return `the one written to ${shown} when this store was created`
  mkdirSync(path.dirname(file), { recursive: true })
  // A file left by an earlier store would keep its own mode: replaced, never rewritten in place.
  rmSync(file, { force: true })
  writeFileSync(file, `${created}\n`, { mode: 0o600, flag: 'wx' })
  return `written to ${shown} (readable by you only)`
}
