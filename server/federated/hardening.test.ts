// Issue 11's probe, as tests: each numbered problem the attacker and the operator found, over
// real HTTP against a server seeded from a real trainer export and a SQLite file, paired with a
// helper (P29c: a server takes updates only then) that every server here shares.
// Devices send leader uploads (share body and score) to the server and helper bodies to the
// helper. Each of these fails on the code before the fix it names (see the issue's list).
import { artifactFrom, shopCatalogue } from '../../test/fixtures/read-artifact'
import { serve } from '@hono/node-server'
import Database from 'better-sqlite3'
import { mkdtempSync, rmSync, statSync, readFileSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Catalogue, DeviceCatalogue, ModelManifest, RerankRules } from '../../shared/protocol'
import { writeTestRelease } from '../../test/fixtures/exported-release'
import { shareFactory, type ShareFactory, type SharePair } from '../../test/fixtures/share-uploads'
import { setNodeBackend } from '../../model/node-backend'
import { createApp } from '../app'
import { startTestHelper, type TestHelper } from '../../test/fixtures/listen'
import { startServer } from '../main'
import { openSqliteStore } from '../storage/sqlite-store'
import type { FederationStore } from '../storage/store'
import { issueClientId } from './clients'
import { createFederation, type Federation } from './service'
import { resolveFederationConfig } from '../config'

const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-hardening-'))
const artifacts = path.join(dir, 'artifacts')
const PAIRING = 'the-hardening-test-pairing-secret-0123456789'
let helper: TestHelper
let helperOrigin = ''
afterAll(async () => {
  await helper?.close()
  rmSync(dir, { recursive: true, force: true })
})
beforeAll(async () => {
  await setNodeBackend('cpu')
  await writeTestRelease(8, artifacts)
  // One helper for every server of this file: bodies are named by their random keys.
  helper = await startTestHelper(dir, { token: PAIRING, minBatch: 2, answerWaitMs: 50 })
  helperOrigin = helper.origin
}, 60_000)

interface Running {
  store: FederationStore
  federation: Federation
  origin: string
  logged: string[]
  close(): Promise<void>
}

let opened = 0
/**
 * A server on a SQLite file (a fresh one unless `file` is given), as `npm start` wires it, paired
 * with the file's helper.
 */
async function start(
  options: { file?: string; settings?: object; promotion?: 'auto' | 'gated' } = {},
): Promise<Running> {
  const file = options.file ?? path.join(dir, `server-${++opened}.db`)
  const store = openSqliteStore(file)
  const logged: string[] = []
  const federation = await createFederation(
    store,
    resolveFederationConfig({
      artifactsDir: artifacts,
      settings: { bufferSize: 1000, ...options.settings },
      promotion: options.promotion ?? 'auto',
      log: (line) => logged.push(line),
      helper: { url: helperOrigin, token: PAIRING },
    }),
  )
  const app = createApp({ distDir: dir, federation: federation.deps })
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' })
  await new Promise((resolve) => server.once('listening', resolve))
  return {
    store,
    federation,
    logged,
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      await new Promise((resolve) => server.close(resolve))
      await federation.close()
      await store.close()
    },
  }
}

const json = (body: unknown) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
})

/** A token for the device `name`, with the id POST /v1/client would issue it (P21). */
async function token(s: Running, name: string, version?: number) {
  const client = issueClientId({ site: 'demo-shop', secret: s.federation.deps.secret }, name)
  const response = await fetch(
    `${s.origin}/v1/token`,
    json({ siteKey: 'demo-shop', client, version }),
  )
  expect(response.status, await response.clone().text()).toBe(200)
  return (await response.json()) as { token: string; slice: number; version: number }
}

let factory: ShareFactory | undefined
/**
 * A well-formed update of the server's channel for the token's version and slice, with a fresh
 * key: the leader's upload and the helper's body (valid shares: they pass every check and sum).
 */
function update(s: Running, issued: { slice: number; version: number }): SharePair {
  const secure = s.federation.deps.settings.secure!
  // Every server here serves the same export: one layout and shape.
  factory ??= shareFactory(secure.layout, secure.shape)
  return factory.pair({ baseVersion: issued.version, slice: issued.slice })
}

/** As a device sends it: the helper's body first, then the leader's upload; the leader's answer. */
async function upload(s: Running, issued: { token: string }, pair: SharePair) {
  const toHelper = await fetch(`${helperOrigin}/v1/shares`, {
    method: 'POST',
    body: pair.helper as Uint8Array<ArrayBuffer>,
  })
  expect([200, 202], await toHelper.clone().text()).toContain(toHelper.status)
  const response = await fetch(`${s.origin}/v1/updates`, {
    method: 'POST',
    headers: { authorization: `Bearer ${issued.token}` },
    body: pair.leader as Uint8Array<ArrayBuffer>,
  })
  const answer = (await response.json()) as { error?: string; status?: string }
  return { ...answer, answer: answer.status, status: response.status }
}

const admin = (s: Running, route: string, method: 'POST' | 'PUT', body: string) =>
  fetch(`${s.origin}/v1/admin/${route}`, {
    method,
    headers: {
      authorization: `Bearer ${s.federation.adminToken!}`,
      'content-type': 'application/json',
    },
    body,
  })

const manifestOf = async (s: Running) =>
  (await (await fetch(`${s.origin}/artifacts/manifest.json`)).json()) as ModelManifest
const artifactOf = async <T>(s: Running, ref: { url: string }) =>
  artifactFrom<T>(
    ref.url,
    new Uint8Array(await (await fetch(`${s.origin}/artifacts/${ref.url}`)).arrayBuffer()),
  )

describe('issue 11: the aggregation server, hardened', () => {
  it('1. a restart keeps the token secret and the admin token: tokens, slices and retries survive it', async () => {
    const file = path.join(dir, 'restart.db')
    const first = await start({ file })
    const issued = await token(first, 'device-restart-1')
    const retried = update(first, issued)
    expect((await upload(first, issued, retried)).status).toBe(202)
    // A second device has its token and is training for its slice when the server restarts.
    const training = await token(first, 'device-restart-2')
    const adminToken = first.federation.adminToken!
    await first.close()

    const second = await start({ file })
    expect(second.federation.adminToken).toBeNull() // created by the first start, not shown again
    // The token and slice of the first process still hold: a retry is a duplicate, and a device
    // that trained for its slice before the restart has its update taken.
    expect(await upload(second, issued, retried)).toMatchObject({
      status: 200,
      answer: 'duplicate',
    })
    expect((await token(second, 'device-restart-1')).slice).toBe(issued.slice)
    expect((await token(second, 'device-restart-2')).slice).toBe(training.slice)
    expect((await upload(second, training, update(second, training))).status).toBe(202)
    const versions = await fetch(`${second.origin}/v1/admin/versions`, {
      headers: { authorization: `Bearer ${adminToken}` },
    })
    expect(versions.status).toBe(200)
    await second.close()
  })

  it('2. /v1/token refuses a body over its limit with 413 before reading it', async () => {
    const s = await start()
    const big = JSON.stringify({
      siteKey: 'demo-shop',
      client: 'device-big-1',
      pad: 'x'.repeat(1e6),
    })
    const response = await fetch(`${s.origin}/v1/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: big,
    })
    expect(response.status).toBe(413)
    expect(await response.json()).toMatchObject({ error: 'E_TOO_LARGE' })
    await s.close()
  })

  it('3. one update per device per release, whatever publishes in between (P15)', async () => {
    const s = await start({ settings: { bufferSize: 2 } })
    const first = await token(s, 'device-twice-1')
    expect((await upload(s, first, update(s, first))).status).toBe(202)
    const again = async () => {
      const issued = await token(s, 'device-twice-1')
      return upload(s, issued, update(s, issued))
    }
    const m = await manifestOf(s)
    // A catalogue upload publishes v2 without consuming the buffer.
    const catalogue = shopCatalogue(await artifactOf<DeviceCatalogue>(s, m.catalogue))
    const changed = {
      ...catalogue,
      items: catalogue.items.map((i) => ({ ...i, price: i.price + 1 })),
    }
    expect((await admin(s, 'catalogue', 'PUT', JSON.stringify(changed))).status).toBe(201)
    expect(await again()).toMatchObject({ status: 409, error: 'E_CLIENT_LIMIT' })
    // Rules: v3.
    const rules = await artifactOf<RerankRules>(s, m.rules)
    const stricter = JSON.stringify({ ...rules, maxPerBrand: 2 })
    expect((await admin(s, 'rules', 'PUT', stricter)).status).toBe(201)
    expect(await again()).toMatchObject({ status: 409, error: 'E_CLIENT_LIMIT' })
    // Rollback to v2.
    const rolled = await admin(s, 'rollback', 'POST', JSON.stringify({ version: 2 }))
    expect(await rolled.json()).toEqual({ current: 2 })
    expect(await again()).toMatchObject({ status: 409, error: 'E_CLIENT_LIMIT' })
    // Promotion of v3 (evaluated by hand).
    await admin(s, 'metrics', 'POST', JSON.stringify({ version: 3, metrics: { recall20: 1 } }))
    expect((await admin(s, 'promote', 'POST', JSON.stringify({ version: 3 }))).status).toBe(200)
    expect(await again()).toMatchObject({ status: 409, error: 'E_CLIENT_LIMIT' })
    // Only FedBuff's release consumes the buffer: one update of the device in it, then room.
    const other = await token(s, 'device-once-2')
    expect((await upload(s, other, update(s, other))).status).toBe(202)
    const published = await s.federation.publishNow()
    expect(published).toMatchObject({ status: 'published', updates: 2 })
    expect(await again()).toMatchObject({ status: 202 })
    await s.close()
  })

  it('6. admin documents: deep nesting, unknown keys and prototype names are refused, nothing stored', async () => {
    const s = await start()
    const m = await manifestOf(s)
    const rules = await artifactOf<RerankRules>(s, m.rules)
    const deep = '{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000)
    const refusals: Array<[string, 'POST' | 'PUT', string]> = [
      // A deeply nested unknown key: 500 E_INTERNAL before.
      ['rules', 'PUT', JSON.stringify({ ...rules, junk: 0 }).replace('"junk":0', `"junk":${deep}`)],
      // Unknown keys were stored and shipped to every device.
      ['rules', 'PUT', JSON.stringify({ ...rules, junk: 'x'.repeat(1000) })],
      ['rules', 'PUT', JSON.stringify({ ...rules, pins: { 'for-you': [], other: [] } })],
      ['metrics', 'POST', JSON.stringify({ version: 1, metrics: { a: 1 }, __proto__x: 1 })],
      ['promote', 'POST', '{"version": 1, "__proto__": {"polluted": true}}'],
      [
        'validation',
        'PUT',
        JSON.stringify({ type: 'pocketrec-validation', sessions: [['a', 'b']], x: deep }),
      ],
    ]
    for (const [route, method, body] of refusals) {
      const response = await admin(s, route, method, body)
      expect(response.status, `${route}: ${body.slice(0, 60)}`).toBe(400)
    }
    expect((await manifestOf(s)).version).toBe('v1')
    expect((await s.store.versions()).length).toBe(1)
    expect(await s.store.setting('validation')).toBeNull()
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    // A product id that names an Object property is data like any other.
    const body = JSON.stringify({ ...rules, boosts: { constructor: 2 } }).replace(
      '"constructor":2',
      '"constructor":2,"__proto__":3',
    )
    expect((await admin(s, 'rules', 'PUT', body)).status).toBe(201)
    const shipped = await artifactOf<RerankRules>(s, (await manifestOf(s)).rules)
    expect(Object.hasOwn(shipped.boosts, 'constructor')).toBe(true)
    await s.close()
  })

  it('7. a damaged artifact is refused and logged, never served under its immutable name', async () => {
    const file = path.join(dir, 'damaged.db')
    const s = await start({ file })
    const m = await manifestOf(s)
    const raw = new Database(file)
    // Flip a byte of the model; replace the catalogue's gzip copy with another's.
    const read = raw.prepare('SELECT bytes FROM artifacts WHERE sha256 = ?')
    const model0 = (read.get(m.model.sha256) as { bytes: Buffer }).bytes
    model0[100] = model0[100]! ^ 0xff
    raw.prepare('UPDATE artifacts SET bytes = ? WHERE sha256 = ?').run(model0, m.model.sha256)
    raw
      .prepare(
        'UPDATE artifacts SET bytes = (SELECT bytes FROM artifacts WHERE sha256 = ?) WHERE sha256 = ?',
      )
      .run(`${m.rules.sha256}.gz`, `${m.catalogue.sha256}.gz`)
    raw.close()
    // The plain copy is what a client that accepts no compression gets (the model's compressed
    // copies, made from the bytes before the flip, still hash and may be served).
    const model = await fetch(`${s.origin}/artifacts/${m.model.url}`, {
      headers: { 'accept-encoding': 'identity' },
    })
    expect(model.status).toBe(500)
    expect(await model.json()).toMatchObject({ error: 'E_ARTIFACT_CORRUPT' })
    expect(model.headers.get('cache-control') ?? '').not.toMatch(/immutable/)
    expect(s.logged.some((line) => line.includes(m.model.url))).toBe(true)
    // The damaged gzip copy is skipped: the plain catalogue, which still hashes, is served.
    const catalogue = await fetch(`${s.origin}/artifacts/${m.catalogue.url}`, {
      headers: { 'accept-encoding': 'gzip' },
    })
    expect(catalogue.status).toBe(200)
    const served = new Uint8Array(await catalogue.arrayBuffer())
    expect(artifactFrom<Catalogue>(m.catalogue.url, served).type).toBe('pocketrec-catalogue')
    expect(s.logged.some((line) => line.includes(m.catalogue.url))).toBe(true)
    await s.close()
  })

  it('8. admin routes answer no CORS; metrics must be named numbers', async () => {
    const s = await start()
    const preflight = await fetch(`${s.origin}/v1/admin/versions`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://evil.example',
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'authorization',
      },
    })
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull()
    const listed = await fetch(`${s.origin}/v1/admin/versions`, {
      headers: {
        authorization: `Bearer ${s.federation.adminToken!}`,
        origin: 'https://evil.example',
      },
    })
    expect(listed.status).toBe(200)
    expect(listed.headers.get('access-control-allow-origin')).toBeNull()
    // Public routes keep theirs (P5).
    const manifest = await fetch(`${s.origin}/artifacts/manifest.json`, {
      headers: { origin: 'https://shop.example' },
    })
    expect(manifest.headers.get('access-control-allow-origin')).toBe('*')
    // `metrics: [1, 2]` counted as an evaluation, and let a version be promoted.
    await s.store.addVersion({ ...(await s.store.current())!, version: 2, parent: 1, metrics: {} })
    for (const metrics of [[1, 2], {}, { updates: 5 }, { reviewedOn: 1 }, { ' ': 1 }]) {
      const response = await admin(s, 'metrics', 'POST', JSON.stringify({ version: 2, metrics }))
      expect(response.status, JSON.stringify(metrics)).toBe(400)
    }
    const promote = await admin(s, 'promote', 'POST', JSON.stringify({ version: 2 }))
    expect(await promote.json()).toMatchObject({ error: 'E_NOT_EVALUATED' })
    await s.close()
  })

  it('8. the admin token is never logged: a created one goes to a file only its owner reads', async () => {
    const logged: string[] = []
    const dataDir = mkdtempSync(path.join(dir, 'start-'))
    // A token file an earlier store left, readable by everyone: its mode must not survive.
    writeFileSync(path.join(dataDir, 'admin-token'), 'old\n', { mode: 0o644 })
    const previous = process.env.POCKETREC_ADMIN_TOKEN
    delete process.env.POCKETREC_ADMIN_TOKEN
    const running = await startServer({
      port: 0,
      distDir: dir,
      federation: {
        artifactsDir: artifacts,
        sqliteFile: path.join(dataDir, 'pocketrec.db'),
        adminTokenFile: path.join(dataDir, 'admin-token'),
        publishEveryMs: 3_600_000,
        // As `npm start` runs it: a stand-in helper in the same process (P29c).
        helper: 'stand-in',
      },
      log: (line) => logged.push(line),
    })
    try {
      const file = path.join(dataDir, 'admin-token')
      const adminToken = readFileSync(file, 'utf8').trim()
      expect(adminToken.length).toBeGreaterThanOrEqual(16)
      expect(statSync(file).mode & 0o777).toBe(0o600)
      expect(logged.join('\n')).not.toContain(adminToken)
      expect(logged.join('\n')).toContain('admin-token')
    } finally {
      await running.close()
      if (previous !== undefined) process.env.POCKETREC_ADMIN_TOKEN = previous
    }
  })
})
