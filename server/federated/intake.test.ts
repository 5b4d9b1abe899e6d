import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createRandom } from '../../shared/random'
import { NO_SCORE, encodeUpdate, type ModelUpdate } from '../../shared/update-codec'
import { openSqliteStore } from '../storage/sqlite-store'
import { record } from '../storage/store.contract'
import type { FederationStore } from '../storage/store'
import type { FedBuffSettings } from './fedbuff'
import { receiveUpdate, type IntakeDeps } from './intake'
import { signToken, type UploadToken } from './tokens'

const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-intake-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const layout = { denseCoordinates: 4, sliceRows: 2, embedDim: 3 }
const settings: FedBuffSettings = {
  layout,
  bufferSize: 10,
  minBuffer: 2,
  maxWaitMs: 60_000,
  maxStaleness: 2,
  exampleCap: 100,
  clipNorm: 1,
  serverLearningRate: 1,
  noiseMultiplier: 0,
}
const secret = new TextEncoder().encode('test secret, 32 bytes or so.....')
const NOW = 1_800_000_000_000
let counter = 0

function token(overrides: Partial<UploadToken> = {}): string {
  return signToken(
    {
      site: 'shop',
      client: `client-${counter}`,
      version: 5,
      slice: 7,
      exp: NOW + 60_000,
      ...overrides,
    },
    secret,
  )
}

function body(overrides: Partial<ModelUpdate> = {}): Uint8Array {
  counter++
  return encodeUpdate({
    baseVersion: 5,
    examples: 40,
    slice: 7,
    layout,
    idempotencyKey: Uint8Array.from({ length: 16 }, (_, i) => (counter * 31 + i) & 0xff),
    values: Float32Array.from({ length: 10 }, (_, i) => (i % 2 ? 0.1 : -0.1)),
    score: { cases: 40, hits20: 10, reciprocalRank20: 3.25 },
    ...overrides,
  })
}

describe('receiving an update (PROTOCOL.md P13)', () => {
  let store: FederationStore
  let deps: IntakeDeps
  let allowed = true

  beforeEach(async () => {
    store = openSqliteStore(path.join(dir, `intake-${++counter}.db`))
    for (const v of [3, 4, 5]) await store.addVersion(record(v, v === 3 ? null : v - 1))
    await store.setCurrent(5)
    allowed = true
    deps = {
      store,
      settings,
      site: 'shop',
      secret,
      now: () => NOW,
      currentVersion: async () => (await store.current())!.version,
      allow: () => allowed,
    }
  })
  afterEach(async () => store.close())

  /** Asserts the refusal, and that the store is exactly as before. */
  async function expectRefused(
    request: { token: unknown; body: Uint8Array },
    status: number,
    code: string,
  ) {
    const before = {
      count: await store.acceptedCount(),
      keys: (await store.buffered()).map((u) => u.key),
    }
    const result = await receiveUpdate(deps, request)
    expect(result, result.message).toMatchObject({ status, code })
    expect(await store.acceptedCount()).toBe(before.count)
    expect((await store.buffered()).map((u) => u.key)).toEqual(before.keys)
  }

  it('stores a valid update with its weight, once however often it is retried', async () => {
    const b = body({ baseVersion: 4 })
    const t = token({ version: 4 })
    expect(await receiveUpdate(deps, { token: t, body: b })).toMatchObject({
      status: 202,
      code: 'accepted',
    })
    const [stored] = await store.buffered()
    expect(stored).toMatchObject({ baseVersion: 4, acceptedAtVersion: 5, slice: 7, examples: 40 })
    expect(stored!.weight).toBeCloseTo(0.4 / Math.SQRT2, 12) // 40/100 examples, one version stale
    expect(Array.from(stored!.body)).toEqual(Array.from(b))
    await expectRefused({ token: t, body: b }, 200, 'duplicate')
  })

  it('refuses a body larger than the layout allows before reading it', async () => {
    await expectRefused({ token: token(), body: new Uint8Array(1_000_000) }, 413, 'E_TOO_LARGE')
  })

  it('refuses missing, forged, expired and other-site tokens', async () => {
    const b = body()
    await expectRefused({ token: undefined, body: b }, 401, 'E_TOKEN')
    await expectRefused({ token: 'abc', body: b }, 401, 'E_TOKEN')
    const forged = token().replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'))
    await expectRefused({ token: forged, body: b }, 401, 'E_TOKEN')
    await expectRefused(
      {
        token: signToken(
          { site: 'shop', client: 'x', version: 5, slice: 7, exp: NOW + 1 },
          new Uint8Array(8),
        ),
        body: b,
      },
      401,
      'E_TOKEN',
    )
    await expectRefused({ token: token({ exp: NOW }), body: b }, 401, 'E_TOKEN')
    await expectRefused({ token: token({ site: 'other' }), body: b }, 401, 'E_TOKEN')
  })

  it('refuses malformed bodies, another layout and another slice', async () => {
    const b = body()
    await expectRefused({ token: token(), body: b.subarray(0, -1) }, 400, 'E_UPDATE_FORMAT')
    const altered = b.slice()
    altered[50] = altered[50]! ^ 1
    await expectRefused({ token: token(), body: altered }, 400, 'E_UPDATE_FORMAT')
    const smaller = encodeUpdate({
      baseVersion: 5,
      examples: 1,
      slice: 7,
      layout: { denseCoordinates: 2, sliceRows: 1, embedDim: 3 },
      idempotencyKey: new Uint8Array(16),
      values: new Float32Array(5),
      score: NO_SCORE,
    })
    await expectRefused({ token: token(), body: smaller }, 422, 'E_UPDATE_LAYOUT')
    await expectRefused({ token: token({ slice: 8 }), body: body() }, 422, 'E_UPDATE_SLICE')
  })

  it('P14: refuses a base version too old or not yet published', async () => {
    await store.addVersion(record(1, null))
    await store.addVersion(record(2, 1))
    const at = (version: number) => ({
      token: token({ version }),
      body: body({ baseVersion: version }),
    })
    await expectRefused(at(2), 409, 'E_VERSION_STALE')
    await expectRefused(at(6), 409, 'E_VERSION_UNKNOWN')
    expect(await receiveUpdate(deps, at(3))).toMatchObject({
      status: 202,
    })
  })

  it('P11: refuses an update above the clip norm rather than rescaling it', async () => {
    const big = Float32Array.from({ length: 10 }, () => 0.5) // norm 1.58
    await expectRefused({ token: token(), body: body({ values: big }) }, 422, 'E_UPDATE_NORM')
  })

  it('P28: refuses a popularity sketch above norm 1, a missing one, and stores nothing', async () => {
    const withPopularity = { ...layout, popularityBuckets: 4 }
    const popularityDeps = { ...deps, settings: { ...settings, layout: withPopularity } }
    const before = await store.acceptedCount()
    const refused = await receiveUpdate(popularityDeps, {
      token: token(),
      body: body({ layout: withPopularity, popularity: Float32Array.of(1, -1, 0, 0) }),
    })
    expect([refused.status, refused.code]).toEqual([422, 'E_UPDATE_NORM'])
    // A device that sends no sketch to a server that asks for one sends another layout.
    const without = await receiveUpdate(popularityDeps, { token: token(), body: body() })
    expect([without.status, without.code]).toEqual([422, 'E_UPDATE_LAYOUT'])
    expect(await store.acceptedCount()).toBe(before)
    const accepted = await receiveUpdate(popularityDeps, {
      token: token(),
      body: body({ layout: withPopularity, popularity: Float32Array.of(0.6, -0.8, 0, 0) }),
    })
    expect(accepted.status).toBe(202)
    expect(await store.acceptedCount()).toBe(before + 1)
  })

  it('P8b/P11: a sketch update is held to the norm of what it does to every row', async () => {
    const sketch = { ...layout, tableSketch: true }
    const sketchDeps = { ...deps, settings: { ...settings, layout: sketch }, nItems: 1000 }
    // Values of norm 0.5; each of the 2 buckets is added to ~500 rows: ~11 on the model.
    const values = Float32Array.from({ length: 10 }, () => 0.5 / Math.sqrt(10))
    const before = await store.acceptedCount()
    const refused = await receiveUpdate(sketchDeps, {
      token: token(),
      body: body({ layout: sketch, values }),
    })
    expect([refused.status, refused.code]).toEqual([422, 'E_UPDATE_NORM'])
    expect(await store.acceptedCount()).toBe(before)
    const small = values.map((v) => v / 40)
    const accepted = await receiveUpdate(sketchDeps, {
      token: token(),
      body: body({ layout: sketch, values: small }),
    })
    expect(accepted.status).toBe(202)
    // A slice update is refused by a sketch server, and the reverse.
    await expectRefused(
      { token: token(), body: body({ layout: sketch, values: small }) },
      422,
      'E_UPDATE_LAYOUT',
    )
  })

  it("P8c: the norm counts only the rows the server's layout sketches", async () => {
    const sketch = { ...layout, tableSketch: true }
    // The same body as above (norm 0.5), read by a server that sketches rows 998 and 999 only:
    // a bucket is added to at most 2 rows, so the update does at most 0.5·√2 to the model.
    const values = Float32Array.from({ length: 10 }, () => 0.5 / Math.sqrt(10))
    const appended = { ...sketch, sketchFromRow: 998 }
    const appendedDeps = { ...deps, settings: { ...settings, layout: appended }, nItems: 1000 }
    const accepted = await receiveUpdate(appendedDeps, {
      token: token(),
      body: body({ layout: sketch, values }),
    })
    expect(accepted.status).toBe(202)
  })

  it('P12 (issue 11, 1 and 8): a stored update is answered duplicate before rules that changed since', async () => {
    const t = token({ client: 'retrying' })
    const b = body()
    expect((await receiveUpdate(deps, { token: t, body: b })).status).toBe(202)
    // A restart with another secret used to move the client's slice: the retry got 422.
    const otherSlice = token({ client: 'retrying', slice: 8 })
    await expectRefused({ token: otherSlice, body: b }, 200, 'duplicate')
    // The base went stale meanwhile: the retry used to get 409 E_VERSION_STALE.
    for (const v of [6, 7, 8]) await store.addVersion(record(v, v - 1))
    await store.setCurrent(8)
    await expectRefused({ token: t, body: b }, 200, 'duplicate')
    // Over its rate limit, it still learns that its update is in.
    allowed = false
    await expectRefused({ token: t, body: b }, 200, 'duplicate')
  })

  it('P12 (issue 11, 8): idempotency keys are the client’s own', async () => {
    const b = body()
    expect((await receiveUpdate(deps, { token: token({ client: 'first' }), body: b })).status).toBe(
      202,
    )
    // Another client's body with the same key used to be answered duplicate, and dropped.
    const result = await receiveUpdate(deps, { token: token({ client: 'second' }), body: b })
    expect(result).toMatchObject({ status: 202, code: 'accepted' })
    expect(await store.acceptedCount()).toBe(2)
  })

  it('P13 (issue 11, 8): refuses an update based on another version than its token', async () => {
    await expectRefused({ token: token({ version: 4 }), body: body() }, 401, 'E_TOKEN')
  })

  it('P21/P15: refuses a rate-limited client, and a second update from one client at a version', async () => {
    allowed = false
    await expectRefused({ token: token(), body: body() }, 429, 'E_RATE_LIMITED')
    allowed = true
    const t = token({ client: 'same' })
    expect((await receiveUpdate(deps, { token: t, body: body() })).status).toBe(202)
    await expectRefused({ token: t, body: body() }, 409, 'E_CLIENT_LIMIT')
  })

  it('fuzz: 400 hostile requests get a 4xx or a 2xx, never an exception, and only 202 stores', async () => {
    const random = createRandom(99)
    const valid = body()
    for (let i = 0; i < 400; i++) {
      const b = valid.slice(0, Math.floor(random() * (valid.length + 20)))
      if (b.length > 0) b[Math.floor(random() * b.length)] = Math.floor(random() * 256)
      const t = random() < 0.5 ? token() : String(random())
      const before = await store.acceptedCount()
      const result = await receiveUpdate(deps, { token: t, body: b })
      expect(
        result.status === 202 ||
          result.status === 200 ||
          (result.status >= 400 && result.status < 500),
      ).toBe(true)
      expect(await store.acceptedCount()).toBe(before + (result.status === 202 ? 1 : 0))
    }
  })
})
