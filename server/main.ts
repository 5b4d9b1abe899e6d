// The only runtime file: opens the store, binds a port on the loopback interface and serves
// createApp, with the federation routes and the publisher loop unless told to only serve files.
import { serve } from '@hono/node-server'
import { randomBytes } from 'node:crypto'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { createApp } from './app'
import { createFederation, type Federation } from './federated/service'
import { openStore } from './storage/open-store'
import type { HelperStoreConfig } from './helper/helper-store'
import { createHelper, type Helper } from './helper/service'
import type { FederationStore, StoreConfig } from './storage/store'
import type { EvaluationSettings } from './evaluation/evaluate-versions'
import type { ClientIdSettings, RateLimits } from './federated/defaults'
import type { Promotion } from './federated/publisher'
import type { FedBuffSettings } from './federated/fedbuff'

export interface ServerOptions {
  port: number
  distDir: string
  host?: string
  /** Aggregate updates: the store, and the export that seeds it. Absent: static files only. */
  federation?: {
    /** PostgreSQL for several replicas; else SQLite at `sqliteFile`. */
    postgresUrl?: string
    sqliteFile?: string
    artifactsDir: string
    /** Default POCKETREC_ADMIN_TOKEN; absent: created on the store's first start (secrets.ts). */
    adminToken?: string
    /**
     * Where a created admin token is written, readable by its owner only (default
     * `.data/admin-token`); it is never logged.
     */
    adminTokenFile?: string
    publishEveryMs?: number
    /** PostgreSQL schema (replicas of one deployment share it). */
    schema?: string
    /**
     * Token secret, ≥ 32 bytes (default POCKETREC_SECRET, hex); absent: created on the store's
     * first start and kept there, so restarts and replicas share it (secrets.ts).
     */
    secret?: Uint8Array
    settings?: Partial<FedBuffSettings>
    rateLimits?: Partial<RateLimits>
    /** The work a device does for its client id, and how long ids live (P21). */
    clientIds?: Partial<ClientIdSettings>
    /** Origins whose pages may register devices (P21); default POCKETREC_ALLOWED_ORIGINS, else any. */
    allowedOrigins?: string[]
    /** How published versions become current (default `auto`; P24, P26). */
    promotion?: Promotion
    evaluation?: Partial<EvaluationSettings>
    /**
     * The two-server channel (P29c): `'stand-in'` runs a helper in this process with a store of
     * its own, mounted at /helper (the demo: one operator standing in for two); or the paired
     * helper of another operator (`url` for devices, `link` for this server, the pairing
     * `token`). Absent: the slice layout (P8).
     */
    helper?: 'stand-in' | { url: string; link?: string; token: string }
  }
  log?: (line: string) => void
}

export async function startServer(options: ServerOptions) {
  const log = options.log ?? ((line: string) => console.log(line))
  const distDir = path.relative(process.cwd(), options.distDir) || '.'
  let stop = () => {}
  let federation: Federation | undefined
  let store: FederationStore | undefined
  let helper: Helper | undefined
  // Listening first: the stand-in helper's link needs the port (0 picks one).
  let handle: (request: Request) => Response | Promise<Response> = () =>
    new Response('starting', { status: 503, headers: { 'retry-after': '1' } })
  const host = options.host ?? '127.0.0.1'
  const server = serve({ fetch: (request) => handle(request), port: options.port, hostname: host })
  if (!server.listening) await new Promise((resolve) => server.once('listening', resolve))
  if (options.federation) {
    const f = options.federation
    let config: StoreConfig
    let helperStore: HelperStoreConfig
    if (f.postgresUrl) {
      config = { kind: 'postgres', connectionString: f.postgresUrl, schema: f.schema }
      const schema = `${f.schema ?? 'pocketrec'}_helper`
      helperStore = { kind: 'postgres', connectionString: f.postgresUrl, schema }
    } else {
      const file = f.sqliteFile ?? path.resolve('.data/pocketrec.db')
      mkdirSync(path.dirname(file), { recursive: true })
      config = { kind: 'sqlite', file }
      helperStore = { kind: 'sqlite', file: file.replace(/(\.db)?$/, '-helper.db') }
    }
    store = await openStore(config)
    let pairing = f.helper === 'stand-in' ? undefined : f.helper
    if (f.helper === 'stand-in') {
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
    // A shop's server never serves a version nobody scored: with σ = 1 one noised release took
    // DIGINETICA's Recall@20 from 29.62 to 13.34 (BENCHMARKS.md). Candidates wait for the
    // operator's validation set (P26); `auto` is for simulations and demos that ask for it.
    const promotion = f.promotion ?? promotionFromEnv() ?? 'evaluated'
    federation = await createFederation({
      store,
      artifactsDir: f.artifactsDir,
      adminToken: f.adminToken ?? (process.env.POCKETREC_ADMIN_TOKEN || undefined),
      secret: f.secret ?? secretFromEnv(),
      settings: f.settings,
      rateLimits: f.rateLimits,
      clientIds: f.clientIds,
      allowedOrigins: f.allowedOrigins ?? originsFromEnv(),
      promotion,
      evaluation: f.evaluation,
      log,
      helper: pairing,
    })
    stop = federation.startPublisher(f.publishEveryMs ?? 2000, log)
    log(
      `federation: ${store.kind} store, v${(await store.current())!.version} current, ` +
        `promotion ${promotion}; admin token: ${handOverAdminToken(federation.adminToken, f)}`,
    )
  }
  handle = createApp({ distDir, federation: federation?.deps, helper: helper?.app }).fetch
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
  f: { adminToken?: string; adminTokenFile?: string },
): string {
  if (f.adminToken !== undefined) return 'the one configured'
  if (process.env.POCKETREC_ADMIN_TOKEN) return 'POCKETREC_ADMIN_TOKEN'
  const file = f.adminTokenFile ?? path.resolve('.data/admin-token')
  const shown = path.relative(process.cwd(), file) || file
  if (created === null) return `the one written to ${shown} when this store was created`
  mkdirSync(path.dirname(file), { recursive: true })
  // A file left by an earlier store would keep its own mode: replaced, never rewritten in place.
  rmSync(file, { force: true })
  writeFileSync(file, `${created}\n`, { mode: 0o600, flag: 'wx' })
  return `written to ${shown} (readable by you only)`
}

/** POCKETREC_SECRET: the token secret as hex (replicas without a shared store setting). */
function secretFromEnv(): Uint8Array | undefined {
  const value = process.env.POCKETREC_SECRET
  if (value === undefined || value === '') return undefined
  if (!/^([0-9a-f]{2}){32,}$/i.test(value)) {
    throw new Error('expected POCKETREC_SECRET to be at least 32 bytes as hex')
  }
  return Buffer.from(value, 'hex')
}

/** POCKETREC_PROMOTION=auto|gated|evaluated (P24, P26); unset: evaluated. */
function promotionFromEnv(): Promotion | undefined {
  const value = process.env.POCKETREC_PROMOTION
  if (value === undefined || value === '') return undefined
  if (value === 'auto' || value === 'gated' || value === 'evaluated') return value
  throw new Error(`expected POCKETREC_PROMOTION to be auto, gated or evaluated, got ${value}`)
}

/** POCKETREC_ALLOWED_ORIGINS=https://shop.example,https://www.shop.example (P21); unset: any. */
function originsFromEnv(): string[] | undefined {
  const value = process.env.POCKETREC_ALLOWED_ORIGINS
  if (value === undefined || value.trim() === '') return undefined
  return value.split(',').map((origin) => origin.trim())
}
