import { serve } from '@hono/node-server'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { shareFactory } from '../../test/fixtures/share-uploads'
import { leaderUploadBytes, type DeviceScore } from '../../shared/leader-upload'
import { createRandom } from '../../shared/random'
import { createApp } from '../app'
import { openSqliteStore } from '../storage/sqlite-store'
import { record } from '../storage/store.contract'
import type { FederationStore } from '../storage/store'
import { solveWork } from '../../shared/proof-of-work'
import { issueClientId } from './clients'
import { DEFAULT_CLIENT_IDS, DEFAULT_RATE_LIMITS, type RateLimits } from './defaults'
import type { FedBuffSettings } from './fedbuff'
import { DEFAULT_POPULARITY } from './popularity'
import { federationRoutes } from './routes'
import { signToken } from './tokens'
import type { SecureChannelSettings } from './secure-channel'

// The federation routes over real HTTP on 127.0.0.1, on the embedded SQLite store.
const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-routes-'))
// A small model and the two-server channel's layout for it (P29c); the helper is only contacted
// when publishing, which these tests do not.
const shape = { denseSize: 50, nItems: 300, embedDim: 4 }
const layout = { maxRows: 4, embedDim: 4, denseCoordinates: 10, negativeRows: 3 }
const HELPER_TOKEN = 'the-routes-test-pairing-secret-0123456789'
const secure: SecureChannelSettings = {
  helperUrl: 'https://helper.example',
  helperLink: 'https://helper.example',
  helperToken: HELPER_TOKEN,
  layout,
  shape,
  clipNorm: 1,
  step: { tableRate: 1, denseRate: 1 },
}
const settings: FedBuffSettings = {
  bufferSize: 100,
  minBuffer: 1,
  maxWaitMs: 60_000,
  maxStaleness: 2,
  popularity: DEFAULT_POPULARITY,
  outcomes: { minBatch: 200, sigma: 1 },
  secure,
}
const factory = shareFactory(layout, shape)
const UPLOAD_BYTES = leaderUploadBytes(factory.params)
const ADMIN = 'admin-token-for-tests'
const sha256 = (text: string) => createHash('sha256').update(text).digest()
const SECRET = new TextEncoder().encode('routes test secret')
/** An id as POST /v1/client issues it, minted with the secret (P21). */
const issuedId = (seed: string) => issueClientId({ site: 'shop', secret: SECRET }, seed)
let store: FederationStore
let origin: string
let close: () => void

async function token(client: string): Promise<{ token: string; slice: number; version: number }> {
  const response = await fetch(`${origin}/v1/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ siteKey: 'pk_shop', client: issuedId(client) }),
  })
  expect(response.status).toBe(200)
  return response.json()
}

const SCORE: DeviceScore = { cases: 4, hits20: 2, reciprocalRank20: 0.75 }

/** A leader upload (P29c) based on v2 for `slice`, with the idempotency key `key` (16 × key). */
function update(slice: number, key: number): Uint8Array {
  return factory.pair(
    { baseVersion: 2, slice, idempotencyKey: new Uint8Array(16).fill(key) },
    SCORE,
  ).leader
}

const upload = (tokenValue: string | null, body: Uint8Array) =>
  fetch(`${origin}/v1/updates`, {
    method: 'POST',
    headers: {
      'content-type': 'application/octet-stream',
      ...(tokenValue ? { authorization: `Bearer ${tokenValue}` } : {}),
    },
    body: body as Uint8Array<ArrayBuffer>,
  })

describe('federation routes over HTTP', () => {
  beforeAll(async () => {
    store = openSqliteStore(path.join(dir, 'routes.db'))
    await store.addVersion(record(1, null))
    await store.addVersion(record(2, 1))
    await store.setCurrent(2)
    const app = createApp({
      distDir: dir,
      federation: {
        store,
        settings,
        site: 'shop',
        sites: [{ key: 'pk_shop', origins: [] }],
        adminTokenSha256: sha256(ADMIN),
        secret: SECRET,
        now: Date.now,
        rateLimits: { ...DEFAULT_RATE_LIMITS, perClientPerMinute: 1000 },
        clientIds: DEFAULT_CLIENT_IDS,
        training: { learningRate: 0.001, epochs: 1 },
        log: (line) => console.error(line),
      },
    })
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' })
    await new Promise((resolve) => server.once('listening', resolve))
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    close = () => server.close()
  })

  afterAll(async () => {
    close?.()
    await store?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('issues tokens for the site key only, with the slice and layout to use', async () => {
    const bad = await fetch(`${origin}/v1/token`, {
      method: 'POST',
      body: JSON.stringify({ siteKey: 'pk_other', client: issuedId('abcdefgh') }),
    })
    expect(bad.status).toBe(401)
    // A device's id from before P21's issued ids: 128 random bits in hex.
    for (const client of ['x', '0123456789abcdef0123456789abcdef']) {
      const badClient = await fetch(`${origin}/v1/token`, {
        method: 'POST',
        body: JSON.stringify({ siteKey: 'pk_shop', client }),
      })
      expect(badClient.status).toBe(400)
      expect(await badClient.json()).toMatchObject({ error: 'E_CLIENT' })
    }
    const issued = await token('client-aaaa')
    expect(issued).toMatchObject({ version: 2, current: 2, layout, clipNorm: 1 })
    expect((await token('client-aaaa')).slice).toBe(issued.slice)
  })

  it('accepts an upload once, answers its retry as a duplicate, and lets a page on another origin send it', async () => {
    const { token: t, slice } = await token('client-bbbb')
    const body = update(slice, 1)
    const first = await upload(t, body)
    expect(first.status).toBe(202)
    expect(await first.json()).toMatchObject({ status: 'accepted' })
    const retry = await upload(t, body)
    expect(retry.status).toBe(200)
    expect(await retry.json()).toMatchObject({ status: 'duplicate' })
    const preflight = await fetch(`${origin}/v1/updates`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://shop.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    })
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*')
    expect(preflight.headers.get('access-control-allow-headers')).toMatch(/authorization/i)
  })

  it('cuts off a body larger than an update, and refuses a missing token, storing nothing', async () => {
    const before = await store.acceptedCount()
    const huge = await upload((await token('client-cccc')).token, new Uint8Array(UPLOAD_BYTES + 1))
    expect(huge.status).toBe(413)
    expect(await huge.json()).toMatchObject({ error: 'E_TOO_LARGE' })
    const anonymous = await upload(null, update(0, 2))
    expect(anonymous.status).toBe(401)
    expect(await store.acceptedCount()).toBe(before)
  })

  it('fuzz: 200 hostile uploads over HTTP, never a 5xx, nothing stored', async () => {
    const random = createRandom(4)
    const { token: t, slice } = await token('client-dddd')
    const valid = update(slice, 9)
    const before = await store.acceptedCount()
    for (let i = 0; i < 200; i++) {
      const body = valid.slice(0, Math.floor(random() * valid.length))
      if (body.length) body[Math.floor(random() * body.length)] = Math.floor(random() * 256)
      const response = await upload(random() < 0.7 ? t : `${t}x`, body)
      expect(response.status, `case ${i}`).toBeGreaterThanOrEqual(400)
      expect(response.status, `case ${i}`).toBeLessThan(500)
    }
    expect(await store.acceptedCount()).toBe(before)
  })

  it('reports counters and the privacy budget publicly, and never the helper’s pairing secret', async () => {
    const response = await fetch(`${origin}/v1/federation`)
    const text = await response.text()
    const status = JSON.parse(text)
    // No noised release yet (the two-server channel's are not noised): no ε is claimed.
    expect(status).toMatchObject({
      version: 2,
      privacy: { releases: 0, epsilon: null, delta: 1e-6 },
    })
    expect(status.accepted).toBeGreaterThanOrEqual(1)
    expect(status.refused.E_TOO_LARGE).toBeGreaterThanOrEqual(1)
    expect(status.settings).toMatchObject({
      bufferSize: 100,
      maxStaleness: 2,
      secure: { helperUrl: 'https://helper.example', layout, clipNorm: 1 },
    })
    expect(status.settings.secure).not.toHaveProperty('helperToken')
    expect(text).not.toContain(HELPER_TOKEN)
  })

  it('keeps admin routes behind the admin token; rollback repoints current', async () => {
    expect((await fetch(`${origin}/v1/admin/versions`)).status).toBe(401)
    const auth = { authorization: `Bearer ${ADMIN}` }
    const listed = await (await fetch(`${origin}/v1/admin/versions`, { headers: auth })).json()
    expect(listed).toMatchObject({
      current: 2,
      versions: [{ version: 1 }, { version: 2, parent: 1 }],
    })
    // P27: the one accepted update scored v2 on 4 cases: 2 hits, Σ 1/rank = 0.75.
    expect(listed.versions[0].devices).toBeUndefined()
    expect(listed.versions[1].devices).toEqual({ updates: 1, cases: 4, recall20: 50, mrr20: 18.75 })
    const forward = await fetch(`${origin}/v1/admin/rollback`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ version: 9 }),
    })
    expect(forward.status).toBe(409) // not earlier than current: that would be a promotion
    const recorded = await fetch(`${origin}/v1/admin/metrics`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ version: 2, metrics: { validationRecall20: 48.5 } }),
    })
    expect(recorded.status).toBe(200)
    expect((await store.version(2))!.metrics).toMatchObject({ validationRecall20: 48.5 })
    const bad = await fetch(`${origin}/v1/admin/metrics`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ version: 2, metrics: { x: 'high' } }),
    })
    expect(bad.status).toBe(400)
    // P24: promotion needs an evaluation on record.
    await store.addVersion({ ...record(3, 2), metrics: {} })
    const unevaluated = await fetch(`${origin}/v1/admin/promote`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ version: 3 }),
    })
    expect(unevaluated.status).toBe(409)
    expect(await unevaluated.json()).toMatchObject({ error: 'E_NOT_EVALUATED' })
    expect((await store.current())!.version).toBe(2)
    await store.recordMetrics(3, { validationRecall20: 49 })
    const promoted = await fetch(`${origin}/v1/admin/promote`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ version: 3 }),
    })
    expect(await promoted.json()).toMatchObject({ current: 3 })
    const rolled = await fetch(`${origin}/v1/admin/rollback`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ version: 1 }),
    })
    expect(await rolled.json()).toEqual({ current: 1 })
    expect((await store.current())!.version).toBe(1)
  })
})

describe('rate limits and issued client ids (P21)', () => {
  const dirs: string[] = []
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  })

  /** The routes on a fresh store at v2, a clock the test moves, and an issued-id helper. */
  async function limited(rateLimits: Partial<RateLimits>) {
    const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-limits-'))
    dirs.push(dir)
    const limitsStore = openSqliteStore(path.join(dir, 'limits.db'))
    await limitsStore.addVersion(record(1, null))
    await limitsStore.addVersion(record(2, 1))
    await limitsStore.setCurrent(2)
    const clock = { now: 1_000_000 }
    const deps = {
      store: limitsStore,
      settings,
      site: 'shop',
      sites: [{ key: 'pk_shop', origins: [] }],
      adminTokenSha256: sha256(ADMIN),
      secret: new TextEncoder().encode('limits test secret'),
      now: () => clock.now,
      rateLimits: { ...DEFAULT_RATE_LIMITS, ...rateLimits },
      clientIds: { ...DEFAULT_CLIENT_IDS, bits: 4 },
      training: { learningRate: 0.001, epochs: 1 },
      log: (line: string) => console.error(line),
    }
    const app = federationRoutes(deps)
    const ask = async (client: string) => {
      const response = await app.request('/token', {
        method: 'POST',
        body: JSON.stringify({ siteKey: 'pk_shop', client }),
      })
      const body = (await response.json()) as { token?: string; slice?: number; error?: string }
      return { status: response.status, ...body }
    }
    const send = async (token: { token?: string; slice?: number }, key: number) =>
      (
        await app.request('/updates', {
          method: 'POST',
          headers: { authorization: `Bearer ${token.token}` },
          body: update(token.slice!, key) as Uint8Array<ArrayBuffer>,
        })
      ).status
    /** A device's id the way the worker gets it: a challenge, the work, POST /v1/client. */
    const register = async () => {
      const post = (path: string, body: object) =>
        app.request(path, { method: 'POST', body: JSON.stringify({ siteKey: 'pk_shop', ...body }) })
      const { challenge, bits } = (await (await post('/client/challenge', {})).json()) as {
        challenge: string
        bits: number
      }
      const { nonce } = await solveWork(challenge, bits)
      const answer = await post('/client', { challenge, nonce })
      return { status: answer.status, ...((await answer.json()) as { client: string }) }
    }
    const id = (seed: string) => issueClientId(deps, seed)
    return { app, ask, send, register, id, clock, store: limitsStore }
  }

  it('limits each issued client per minute, tokens and uploads apart, with no site-wide quota', async () => {
    const {
      ask,
      send,
      id,
      clock,
      store: limitsStore,
    } = await limited({
      perClientPerMinute: 2,
      perSitePerMinute: 3,
    })
    const a = id('client-a1')
    expect((await Promise.all([ask(a), ask(a)])).map((r) => r.status)).toEqual([200, 200])
    expect(await ask(a)).toMatchObject({ status: 429, error: 'E_RATE_LIMITED' })
    // Other clients are not held back by A, nor by how many others asked (perSitePerMinute
    // counts new ids only).
    const tokens = []
    for (const seed of ['b1', 'c1', 'd1', 'e1', 'f1']) tokens.push(await ask(id(`client-${seed}`)))
    expect(tokens.map((r) => r.status)).toEqual([200, 200, 200, 200, 200])
    const statuses = []
    for (const [i, t] of tokens.entries()) statuses.push(await send(t, 100 + i))
    expect(statuses).toEqual([202, 202, 202, 202, 202])
    // B's own uploads: its second is over P15's one per version, its third over its limit.
    expect(await send(tokens[0]!, 120)).toBe(409)
    expect(await send(tokens[0]!, 121)).toBe(429)
    expect((await limitsStore.bufferStats()).updates).toBe(5)
    clock.now += 60_000
    expect((await ask(a)).status).toBe(200)
    await limitsStore.close()
  })

  it('[P21] fresh ids cannot lock an honest device out of its token (11,927 did in 19.5 s)', async () => {
    const {
      ask,
      send,
      register,
      id,
      store: limitsStore,
    } = await limited({
      perClientPerMinute: 30,
      perSitePerMinute: 100,
    })
    const honest = await register()
    expect(honest.status).toBe(200)
    // Made-up ids, a thousand of them: refused, and they spend nothing anyone else needs.
    for (let i = 0; i < 1000; i++) {
      const fresh = await ask(`sybil-${String(i).padStart(4, '0')}`)
      expect(fresh, `made-up id ${i}`).toMatchObject({ status: 400, error: 'E_CLIENT' })
    }
    // Ids the attacker paid for (stashed ones too) spend only their own quotas.
    for (let i = 0; i < 20; i++) {
      const statuses = new Set<number>()
      for (let k = 0; k < 31; k++) statuses.add((await ask(id(`paid-${i}`))).status)
      expect([...statuses].sort()).toEqual([200, 429])
    }
    // The attacker can use up the site's new ids for this minute...
    let registered = 0
    while ((await register()).status === 200) registered++
    expect(registered).toBe(99)
    // ...and the device with its id still gets its token and sends its update.
    const token = await ask(honest.client)
    expect(token.status).toBe(200)
    expect(await send(token, 7)).toBe(202)
    await limitsStore.close()
  })

  it('[P21] a client cannot pick its slice: made-up ids get none, an issued id keeps its own', async () => {
    const { ask, register, store: limitsStore } = await limited({})
    // Before P21, 39 fresh ids were enough to find a slice covering a chosen table row.
    for (let i = 0; i < 50; i++) {
      expect((await ask(`picker-${String(i).padStart(3, '0')}`)).status).toBe(400)
    }
    const device = await register()
    const slices = new Set<number>()
    for (let i = 0; i < 10; i++) slices.add((await ask(device.client)).slice!)
    expect(slices.size).toBe(1) // another slice at this version takes another solved challenge
    await limitsStore.close()
  })

  it('[P21] refused ids add no rate-limiter entry', async () => {
    // Two keys at most: if refused ids took entries, they would evict A's and B's, whose
    // counts would start again (the limiter forgets an evicted key's count).
    const { ask, id, store: limitsStore } = await limited({ perClientPerMinute: 1, maxKeys: 2 })
    const [a, b] = [id('client-a'), id('client-b')]
    expect([(await ask(a)).status, (await ask(b)).status]).toEqual([200, 200])
    for (let i = 0; i < 500; i++) expect((await ask(`refused-${i}-x`)).status).toBe(400)
    expect([(await ask(a)).status, (await ask(b)).status]).toEqual([429, 429])
    await limitsStore.close()
  })
})

describe('a server paired with no helper (P29c)', () => {
  const dirs: string[] = []
  const stores: FederationStore[] = []
  afterAll(async () => {
    for (const opened of stores) await opened.close()
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  })

  /** The routes on a fresh store at v1, with the settings of a server paired with no helper. */
  async function unpaired() {
    const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-no-helper-'))
    dirs.push(dir)
    const plainStore = openSqliteStore(path.join(dir, 'plain.db'))
    stores.push(plainStore)
    await plainStore.addVersion(record(1, null))
    await plainStore.setCurrent(1)
    const { secure: _, ...plain } = settings
    const app = federationRoutes({
      store: plainStore,
      settings: plain,
      site: 'shop',
      sites: [{ key: 'pk_shop', origins: [] }],
      adminTokenSha256: sha256(ADMIN),
      secret: SECRET,
      now: Date.now,
      rateLimits: DEFAULT_RATE_LIMITS,
      clientIds: DEFAULT_CLIENT_IDS,
      training: { learningRate: 0.001, epochs: 1 },
      log: (line) => console.error(line),
    })
    return { app, store: plainStore }
  }

  it('answers 409 E_NO_HELPER for a token, and shows no channel in its settings', async () => {
    const { app } = await unpaired()
    // A request that would get a token from a paired server.
    const asked = await app.request('/token', {
      method: 'POST',
      body: JSON.stringify({ siteKey: 'pk_shop', client: issuedId('client-nohelper') }),
    })
    expect(asked.status).toBe(409)
    expect(await asked.json()).toMatchObject({ error: 'E_NO_HELPER' })
    const status = (await (await app.request('/federation')).json()) as {
      settings: Record<string, unknown>
    }
    expect(status.settings).not.toHaveProperty('secure')
  })

  it('answers 409 E_NO_HELPER for an upload, and stores nothing', async () => {
    const { app, store: plainStore } = await unpaired()
    // An upload a paired server would take, with a valid token for it.
    const t = signToken(
      { site: 'shop', client: issuedId('client-nohelper'), version: 1, slice: 0, exp: 2e12 },
      SECRET,
    )
    const body = factory.pair({ baseVersion: 1, slice: 0 }, SCORE).leader
    const sent = await app.request('/updates', {
      method: 'POST',
      headers: { authorization: `Bearer ${t}` },
      body: body as Uint8Array<ArrayBuffer>,
    })
    expect(await plainStore.acceptedCount()).toBe(0)
    expect(sent.status).toBe(409)
    expect(await sent.json()).toMatchObject({ error: 'E_NO_HELPER' })
  })
})
