import { serve } from '@hono/node-server'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRandom } from '../../shared/random'
import { encodeUpdate, updateByteLength } from '../../shared/update-codec'
import { createApp } from '../app'
import { openSqliteStore } from '../storage/sqlite-store'
import { record } from '../storage/store.contract'
import type { FederationStore } from '../storage/store'
import type { FedBuffSettings } from './fedbuff'
import { federationRoutes } from './routes'

// The federation routes over real HTTP on 127.0.0.1, on the embedded SQLite store.
const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-routes-'))
const layout = { denseCoordinates: 4, sliceRows: 2, embedDim: 3 }
const settings: FedBuffSettings = {
  layout,
  bufferSize: 100,
  minBuffer: 1,
  maxWaitMs: 60_000,
  maxStaleness: 2,
  exampleCap: 100,
  clipNorm: 1,
  serverLearningRate: 1,
  noiseMultiplier: 0,
}
const ADMIN = 'admin-token-for-tests'
const sha256 = (text: string) => createHash('sha256').update(text).digest()
let store: FederationStore
let origin: string
let close: () => void

async function token(client: string): Promise<{ token: string; slice: number; version: number }> {
  const response = await fetch(`${origin}/v1/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ siteKey: 'pk_shop', client }),
  })
  expect(response.status).toBe(200)
  return response.json()
}

function update(slice: number, key: number): Uint8Array {
  return encodeUpdate({
    baseVersion: 2,
    examples: 10,
    slice,
    layout,
    idempotencyKey: new Uint8Array(16).fill(key),
    values: new Float32Array(10).fill(0.1),
    score: { cases: 4, hits20: 2, reciprocalRank20: 0.75 },
  })
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
        siteKey: 'pk_shop',
        adminTokenSha256: sha256(ADMIN),
        secret: new TextEncoder().encode('routes test secret'),
        rateLimits: { perClientPerMinute: 1000 },
        training: { learningRate: 0.001, epochs: 1 },
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
      body: JSON.stringify({ siteKey: 'pk_other', client: 'abcdefgh' }),
    })
    expect(bad.status).toBe(401)
    const badClient = await fetch(`${origin}/v1/token`, {
      method: 'POST',
      body: JSON.stringify({ siteKey: 'pk_shop', client: 'x' }),
    })
    expect(badClient.status).toBe(400)
    const issued = await token('client-aaaa')
    expect(issued).toMatchObject({ version: 2, layout, clipNorm: 1 })
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
    const huge = await upload(
      (await token('client-cccc')).token,
      new Uint8Array(updateByteLength(layout) + 1),
    )
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

  it('reports counters and the privacy budget publicly', async () => {
    const status = await (await fetch(`${origin}/v1/federation`)).json()
    expect(status).toMatchObject({ version: 2, privacy: { releases: 0, epsilon: 0, delta: 1e-6 } })
    expect(status.accepted).toBeGreaterThanOrEqual(1)
    expect(status.refused.E_TOO_LARGE).toBeGreaterThanOrEqual(1)
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

describe('rate limits (P21)', () => {
  it('limits each client and the whole site per minute, tokens and uploads apart', async () => {
    const limitsDir = mkdtempSync(path.join(tmpdir(), 'pocketrec-limits-'))
    const limitsStore = openSqliteStore(path.join(limitsDir, 'limits.db'))
    await limitsStore.addVersion(record(1, null))
    await limitsStore.addVersion(record(2, 1))
    await limitsStore.setCurrent(2)
    let now = 1_000_000
    const app = federationRoutes({
      store: limitsStore,
      settings,
      site: 'shop',
      siteKey: 'pk_shop',
      adminTokenSha256: sha256(ADMIN),
      secret: new TextEncoder().encode('limits test secret'),
      now: () => now,
      rateLimits: { perClientPerMinute: 2, perSitePerMinute: 3 },
      training: { learningRate: 0.001, epochs: 1 },
    })
    const ask = async (client: string) => {
      const response = await app.request('/token', {
        method: 'POST',
        body: JSON.stringify({ siteKey: 'pk_shop', client }),
      })
      const body = (await response.json()) as { token?: string; slice?: number; error?: string }
      return { status: response.status, ...body }
    }
    const send = async (issued: { token?: string; slice?: number }, key: number) =>
      (
        await app.request('/updates', {
          method: 'POST',
          headers: { authorization: `Bearer ${issued.token}` },
          body: update(issued.slice!, key) as Uint8Array<ArrayBuffer>,
        })
      ).status

    // Minute 1: client A's third token is over its own limit and spends none of the site's.
    expect((await Promise.all([ask('client-a1'), ask('client-a1')])).map((r) => r.status)).toEqual([
      200, 200,
    ])
    expect(await ask('client-a1')).toMatchObject({ status: 429, error: 'E_RATE_LIMITED' })
    expect((await ask('client-b1')).status).toBe(200)
    expect(await ask('client-c1')).toMatchObject({ status: 429, error: 'E_RATE_LIMITED' })

    // Minute 2: three tokens again; minute 3: a fourth, then four uploads in one minute.
    now += 60_000
    const issued = [await ask('client-c1'), await ask('client-d1'), await ask('client-e1')]
    now += 60_000
    issued.push(await ask('client-f1'))
    expect(issued.map((r) => r.status)).toEqual([200, 200, 200, 200])
    const statuses = []
    for (const [i, t] of issued.entries()) statuses.push(await send(t, 100 + i))
    expect(statuses).toEqual([202, 202, 202, 429])
    expect((await limitsStore.bufferStats()).updates).toBe(3) // the refused one stored nothing
    now += 60_000
    expect(await send(issued[3]!, 103)).toBe(202)
    await limitsStore.close()
    rmSync(limitsDir, { recursive: true, force: true })
  })
})
