import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { shareFactory } from '../../test/fixtures/share-uploads'
import {
  leaderUploadBytes,
  NO_SCORE,
  SCORE_BYTES,
  type DeviceScore,
} from '../../shared/leader-upload'
import { createRandom } from '../../shared/random'
import { openSqliteStore } from '../storage/sqlite-store'
import { record } from '../storage/store.contract'
import type { FederationStore, VersionRecord } from '../storage/store'
import type { FedBuffSettings } from './fedbuff'
import { DEFAULT_POPULARITY } from './popularity'
import { receiveUpdate, type IntakeDeps } from './intake'
import type { SecureChannelSettings } from './secure-channel'
import { signToken, type UploadToken } from './tokens'

const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-intake-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

// A small model and the two-server channel's layout for it (P29c): leader uploads of a few KB.
const shape = { denseSize: 50, nItems: 300, embedDim: 4 }
const layout = { maxRows: 4, embedDim: 4, denseCoordinates: 10, negativeRows: 3 }
const secure: SecureChannelSettings = {
  helperUrl: 'https://helper.example',
  helperLink: 'https://helper.example',
  helperToken: 'the-intake-test-pairing-secret-0123456789',
  layout,
  shape,
  clipNorm: 1,
  step: { tableRate: 1, denseRate: 1 },
}
const settings: FedBuffSettings = {
  bufferSize: 10,
  minBuffer: 2,
  maxWaitMs: 60_000,
  maxStaleness: 2,
  popularity: DEFAULT_POPULARITY,
  outcomes: { minBatch: 200, sigma: 1 },
  secure,
}
const factory = shareFactory(layout, shape)
const UPLOAD_BYTES = leaderUploadBytes(factory.params)
const secret = new TextEncoder().encode('test secret, 32 bytes or so.....')
const NOW = 1_800_000_000_000
const SCORE: DeviceScore = { cases: 40, hits20: 10, reciprocalRank20: 3.25 }
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

/** A leader upload (P29c): the leader's share body, then the device's score. */
function body(
  header: { baseVersion?: number; slice?: number; idempotencyKey?: Uint8Array } = {},
  score: DeviceScore = SCORE,
): Uint8Array {
  counter++
  return factory.pair(
    {
      baseVersion: 5,
      slice: 7,
      idempotencyKey: Uint8Array.from({ length: 16 }, (_, i) => (counter * 31 + i) & 0xff),
      ...header,
    },
    score,
  ).leader
}

/** Version `v` with the model `model` (P29c: a release builds on its parent's model). */
function version(v: number, parent: number | null, model = 'model-a'): VersionRecord {
  const r = record(v, parent)
  const sha256 = Buffer.from(model).toString('hex').padEnd(64, '0')
  return { ...r, manifest: { ...r.manifest, model: { ...r.manifest.model, sha256 } } }
}

describe('receiving an update (PROTOCOL.md P13, P29c)', () => {
  let store: FederationStore
  let deps: IntakeDeps
  let allowed = true

  beforeEach(async () => {
    store = openSqliteStore(path.join(dir, `intake-${++counter}.db`))
    for (const v of [3, 4, 5]) await store.addVersion(version(v, v === 3 ? null : v - 1))
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
    intake: IntakeDeps = deps,
  ) {
    const before = {
      count: await store.acceptedCount(),
      keys: (await store.buffered()).map((u) => u.key),
    }
    const result = await receiveUpdate(intake, request)
    expect(result, result.message).toMatchObject({ status, code })
    expect(await store.acceptedCount()).toBe(before.count)
    expect((await store.buffered()).map((u) => u.key)).toEqual(before.keys)
  }

  it('stores a valid upload with its header and score, once however often it is retried', async () => {
    const b = body({ baseVersion: 4 })
    const t = token({ version: 4 })
    expect(await receiveUpdate(deps, { token: t, body: b })).toMatchObject({
      status: 202,
      code: 'accepted',
    })
    const [stored] = await store.buffered()
    expect(stored).toMatchObject({ baseVersion: 4, acceptedAtVersion: 5, slice: 7, score: SCORE })
    expect(stored!.receivedAtMs).toBe(NOW)
    // The store keeps the leader's share body, as received, without the score.
    expect(Buffer.from(stored!.body)).toEqual(Buffer.from(b.subarray(0, -SCORE_BYTES)))
    await expectRefused({ token: t, body: b }, 200, 'duplicate')
    expect(await store.acceptedCount()).toBe(1)
  })

  it('refuses a body larger than a leader upload before reading it', async () => {
    await expectRefused({ token: token(), body: new Uint8Array(1_000_000) }, 413, 'E_TOO_LARGE')
    // One byte over: a valid upload with a byte appended is refused as too large, not read.
    const over = new Uint8Array(UPLOAD_BYTES + 1)
    over.set(body())
    await expectRefused({ token: 'not a token', body: over }, 413, 'E_TOO_LARGE')
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
    // The same body with a valid token is taken: each refusal above was the token's.
    expect((await receiveUpdate(deps, { token: token(), body: b })).status).toBe(202)
  })

  it('refuses malformed uploads, another layout’s, a helper body and an impossible score', async () => {
    const b = body()
    await expectRefused({ token: token(), body: b.subarray(0, -1) }, 400, 'E_UPDATE_FORMAT')
    await expectRefused({ token: token(), body: new Uint8Array(0) }, 400, 'E_UPDATE_FORMAT')
    const badMagic = b.slice()
    badMagic[0] = badMagic[0]! ^ 1
    await expectRefused({ token: token(), body: badMagic }, 400, 'E_UPDATE_FORMAT')
    // The helper's body (party 1) sent to the leader.
    const relabelled = b.slice()
    relabelled[4] = 1
    await expectRefused({ token: token(), body: relabelled }, 400, 'E_UPDATE_FORMAT')
    // A score no device could have measured: more hits than cases (P27).
    const scoreAt = b.length - SCORE_BYTES
    const badScore = b.slice()
    new DataView(badScore.buffer).setUint16(scoreAt + 2, 41, true)
    await expectRefused({ token: token(), body: badScore }, 400, 'E_UPDATE_FORMAT')
    // An upload for a smaller layout (fewer rows, dense coordinates and negatives).
    const smaller = shareFactory(
      { maxRows: 2, embedDim: 4, denseCoordinates: 5, negativeRows: 1 },
      shape,
    ).pair({ baseVersion: 5, slice: 7 }, NO_SCORE).leader
    expect(smaller.length).toBeLessThan(UPLOAD_BYTES)
    await expectRefused({ token: token(), body: smaller }, 400, 'E_UPDATE_FORMAT')
    // Each refused body was the altered one: the original is taken.
    expect((await receiveUpdate(deps, { token: token(), body: b })).status).toBe(202)
  })

  it('refuses another slice than the token’s', async () => {
    await expectRefused({ token: token({ slice: 8 }), body: body() }, 422, 'E_UPDATE_SLICE')
  })

  it('P14: refuses a base version too old or not yet published', async () => {
    await store.addVersion(version(1, null))
    await store.addVersion(version(2, 1))
    const at = (v: number) => ({
      token: token({ version: v }),
      body: body({ baseVersion: v }),
    })
    await expectRefused(at(2), 409, 'E_VERSION_STALE')
    await expectRefused(at(6), 409, 'E_VERSION_UNKNOWN')
    expect(await receiveUpdate(deps, at(3))).toMatchObject({
      status: 202,
    })
  })

  it('P29c: refuses an upload trained on another model than the current one, however recent', async () => {
    // v5 is a new model; v4, one version back and within the staleness bound, has the old one:
    // its public negatives differ, so its upload cannot be summed with v5's.
    await store.addVersion(version(6, 5, 'model-b'))
    await store.setCurrent(6)
    await expectRefused(
      { token: token({ version: 5 }), body: body({ baseVersion: 5 }) },
      409,
      'E_VERSION_STALE',
    )
    // A shop change (P25) keeps the model: an upload based on the version before it is taken.
    await store.addVersion(version(7, 6, 'model-b'))
    await store.setCurrent(7)
    expect(
      await receiveUpdate(deps, { token: token({ version: 6 }), body: body({ baseVersion: 6 }) }),
    ).toMatchObject({ status: 202, code: 'accepted' })
  })

  it('P12 (issue 11, 1 and 8): a stored update is answered duplicate before rules that changed since', async () => {
    const t = token({ client: 'retrying' })
    const b = body()
    expect((await receiveUpdate(deps, { token: t, body: b })).status).toBe(202)
    // A restart with another secret used to move the client's slice: the retry got 422.
    const otherSlice = token({ client: 'retrying', slice: 8 })
    await expectRefused({ token: otherSlice, body: b }, 200, 'duplicate')
    // The base went stale meanwhile: the retry used to get 409 E_VERSION_STALE.
    for (const v of [6, 7, 8]) await store.addVersion(version(v, v - 1))
    await store.setCurrent(8)
    await expectRefused({ token: t, body: b }, 200, 'duplicate')
    // A new model meanwhile, within the staleness bound: still the same answer.
    await store.addVersion(version(9, 8, 'model-b'))
    await store.setCurrent(9)
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

  it('P13: checks in the documented order, the first failing check naming the refusal', async () => {
    allowed = false
    // Another version than the token's comes before the slice, the staleness and the limits.
    await expectRefused(
      { token: token({ version: 4, slice: 8 }), body: body({ baseVersion: 3 }) },
      401,
      'E_TOKEN',
    )
    // The slice before the staleness and the limits.
    await store.addVersion(version(1, null))
    await expectRefused(
      { token: token({ version: 1, slice: 8 }), body: body({ baseVersion: 1 }) },
      422,
      'E_UPDATE_SLICE',
    )
    // The staleness, then the model, before the limits.
    await expectRefused(
      { token: token({ version: 1 }), body: body({ baseVersion: 1 }) },
      409,
      'E_VERSION_STALE',
    )
    await store.addVersion(version(6, 5, 'model-b'))
    await store.setCurrent(6)
    await expectRefused(
      { token: token({ version: 5 }), body: body({ baseVersion: 5 }) },
      409,
      'E_VERSION_STALE',
    )
    // The rate limit before P15's one update per client.
    allowed = true
    const t = token({ version: 6, client: 'ordered' })
    expect((await receiveUpdate(deps, { token: t, body: body({ baseVersion: 6 }) })).status).toBe(
      202,
    )
    allowed = false
    await expectRefused({ token: t, body: body({ baseVersion: 6 }) }, 429, 'E_RATE_LIMITED')
    allowed = true
    await expectRefused({ token: t, body: body({ baseVersion: 6 }) }, 409, 'E_CLIENT_LIMIT')
  })

  it('P21/P15: refuses a rate-limited client, and a second update from one client in the buffer', async () => {
    allowed = false
    await expectRefused({ token: token(), body: body() }, 429, 'E_RATE_LIMITED')
    allowed = true
    const t = token({ client: 'same' })
    expect((await receiveUpdate(deps, { token: t, body: body() })).status).toBe(202)
    await expectRefused({ token: t, body: body() }, 409, 'E_CLIENT_LIMIT')
    // P15 is on the buffer, not the version: a new current version does not lift it.
    await store.addVersion(version(6, 5))
    await store.setCurrent(6)
    const later = token({ client: 'same', version: 6 })
    await expectRefused({ token: later, body: body({ baseVersion: 6 }) }, 409, 'E_CLIENT_LIMIT')
  })

  it('P29c: a server paired with no helper takes no upload, and stores nothing', async () => {
    const { secure: _, ...plain } = settings
    await expectRefused({ token: token(), body: body() }, 409, 'E_NO_HELPER', {
      ...deps,
      settings: plain,
    })
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
