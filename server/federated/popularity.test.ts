import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { validateCandidatePools } from '../../shared/artifacts'
import type { CandidatePools, Catalogue } from '../../shared/protocol'
import { secureParamsFor } from '../../shared/secure-update'
import { denseWindowStart, type SparseLayout } from '../../shared/sparse-update'
import { encodeWeights, type WeightsFile } from '../../shared/weights-codec'
import { startTestHelper, type TestHelper } from '../../test/fixtures/listen'
import { openSqliteStore } from '../storage/sqlite-store'
import { record } from '../storage/store.contract'
import { sendShares, testChannel } from '../../test/fixtures/share-uploads'
import type { FederationStore } from '../storage/store'
import { DEFAULT_SPARSE } from './defaults'
import type { FedBuffSettings } from './fedbuff'
import { addRelease, decodePopularityState, poolsFromReports } from './popularity'
import { publishIfDue } from './publisher'
import { readPools, servedManifest } from './releases'

const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-popularity-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const catalogue: Catalogue = {
  type: 'pocketrec-catalogue',
  items: [0, 1, 2, 3, 4, 5].map((index) => ({
    id: `p${index}`,
    index,
    name: `Product ${index}`,
    category: index < 3 ? 'shoes' : 'hats',
    brand: 'b',
    price: 10,
    inStock: true,
    addedAt: '2026-01-0' + (index + 1),
  })),
}
const trainerPools: CandidatePools = {
  type: 'pocketrec-pools',
  trending: [5, 4],
  popular: [5, 4, 3],
  new: [5, 4, 3, 2, 1, 0],
  byCategory: { hats: [5, 4, 3], shoes: [2] },
  coVisitation: { '0': [1] },
}

describe('popularity from device reports (PROTOCOL.md P28), pure parts', () => {
  it('adds each release’s counts to the totals; the trend halves after its half-life', () => {
    const first = addRelease(undefined, Float32Array.of(3, 0, 1, 0, 0, 2), 10, 2)
    expect(Array.from(first.total)).toEqual([3, 0, 1, 0, 0, 2])
    expect(Array.from(first.trend)).toEqual([3, 0, 1, 0, 0, 2])
    expect(first.reports).toBe(10)
    const second = addRelease(first, Float32Array.of(1, 4, 0, 0, 0, 0), 5, 2)
    expect(Array.from(second.total)).toEqual([4, 4, 1, 0, 0, 2])
    expect(second.trend[0]).toBeCloseTo(3 * Math.SQRT1_2 + 1, 6) // one release: 0.5^(1/2)
    expect(second.trend[1]).toBe(4)
    expect(second.reports).toBe(15)
    const none = new Float32Array(6)
    const fourth = addRelease(addRelease(second, none, 0, 2), none, 0, 2)
    expect(fourth.reports).toBe(15)
    expect(Array.from(fourth.total)).toEqual(Array.from(second.total)) // totals do not decay
    for (let item = 0; item < 6; item++)
      expect(fourth.trend[item]).toBeCloseTo(second.trend[item]! / 2, 5)
    expect(Array.from(first.total)).toEqual([3, 0, 1, 0, 0, 2]) // inputs untouched
  })

  it('ranks popular and trending by the totals, re-ranks categories, keeps new and co-visitation', () => {
    const state = {
      total: Float32Array.of(1, 9, 0, 4, -2, 3),
      trend: Float32Array.of(5, 1, 0, 0, 0, 0.5),
      reports: 100,
    }
    const pools = poolsFromReports(state, trainerPools, catalogue)
    expect(pools.popular).toEqual([1, 3, 5, 0]) // positive estimates only
    expect(pools.trending).toEqual([0, 1, 5])
    expect(pools.byCategory).toEqual({ hats: [3, 5], shoes: [1, 0] })
    expect(pools.new).toEqual(trainerPools.new)
    expect(pools.coVisitation).toEqual(trainerPools.coVisitation)
    expect(validateCandidatePools(pools, { nItems: 6 }).ok).toBe(true)
  })
})

// A model of one dense tensor and a 6 × 2 table; each update's viewed rows are counted once.
const model: WeightsFile = {
  format: 'pocketrec-gru',
  meta: { nItems: 6 },
  tensors: [
    { name: 'gru/a', shape: [2], values: Float32Array.of(0, 0.5) },
    { name: 'item_embedding', shape: [6, 2], values: new Float32Array(12).fill(1) },
  ],
}
const shape = { denseSize: 2, nItems: 6, embedDim: 2 }
const layout: SparseLayout = { maxRows: 2, embedDim: 2, denseCoordinates: 2, negativeRows: 1 }
const params = secureParamsFor(layout, shape)
const TOKEN = 'the-popularity-test-pairing-secret-012345'

describe('publishing with popularity reports (PROTOCOL.md P28)', () => {
  let helper: TestHelper
  let helperOrigin = ''
  let settings: FedBuffSettings
  let store: FederationStore
  let n = 0
  const put = async (bytes: Uint8Array) => {
    const sha256 = createHash('sha256').update(bytes).digest('hex')
    await store.putArtifact(sha256, bytes)
    return { url: `${sha256.slice(0, 8)}.x`, sha256, bytes: bytes.byteLength }
  }
  const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value))

  beforeAll(async () => {
    helper = await startTestHelper(dir, { token: TOKEN })
    helperOrigin = helper.origin
    settings = {
      bufferSize: 2,
      minBuffer: 1,
      maxWaitMs: 60_000,
      maxStaleness: 3,
      popularity: { minReports: 4, trendHalfLife: 10 },
      outcomes: { minBatch: 200, sigma: 1 },
      secure: testChannel(helperOrigin, TOKEN, layout, shape),
    }
  }, 60_000)
  afterAll(async () => {
    await helper?.close()
  })

  beforeEach(async () => {
    store = openSqliteStore(path.join(dir, `popularity-${++n}.db`))
    const first = record(1, null)
    first.manifest.model = await put(encodeWeights(model, { dtype: 'float16' }))
    first.manifest.catalogue = await put(json(catalogue))
    first.manifest.pools = await put(json(trainerPools))
    await store.addVersion(first)
    await store.setCurrent(1)
  })
  afterEach(async () => store.close())

  /**
   * A device trained from the current version that viewed `viewed` (their rows and the dense
   * window unchanged): each row counted once in the release.
   */
  const send = async (client: string, viewed: number[]) => {
    const version = (await store.current())!.version
    const contribution = {
      rows: Int32Array.from(viewed),
      rowValues: new Int32Array(viewed.length * shape.embedDim),
      denseStart: denseWindowStart(0, layout, shape),
      dense: new Int32Array(layout.denseCoordinates),
      negatives: new Int32Array(layout.negativeRows * shape.embedDim),
    }
    const upload = { key: `${client}:${version}`, client, version, slice: 0 }
    await sendShares(store, helperOrigin, upload, contribution, params)
  }
  const publish = (promotion: 'auto' | 'gated' = 'auto') =>
    publishIfDue({ store, settings, now: () => 3000, promotion })
  const totalsOf = async (version: number) =>
    decodePopularityState(
      (await store.artifact((await store.version(version))!.manifest.popularity!.sha256))!,
    )

  it('adds each release to the totals, and keeps the trainer’s pools until enough devices reported', async () => {
    await send('a', [1, 2])
    await send('b', [1])
    expect(await publish()).toMatchObject({ status: 'published' })
    const v2 = (await store.current())!
    expect(v2.metrics).toMatchObject({ updates: 2, popularityReports: 2 })
    expect(v2.manifest.pools).toEqual((await store.version(1))!.manifest.pools) // 2 < 4 reports
    const afterOne = await totalsOf(2)
    expect(Array.from(afterOne.total)).toEqual([0, 2, 1, 0, 0, 0])
    expect(Array.from(afterOne.trend)).toEqual([0, 2, 1, 0, 0, 0])

    await send('c', [4, 2])
    await send('d', [2, 4])
    expect(await publish()).toMatchObject({ status: 'published' })
    const v3 = (await store.current())!
    expect(v3.metrics).toMatchObject({ popularityReports: 4 })
    const state = await totalsOf(3)
    expect(state.reports).toBe(4)
    expect(Array.from(state.total)).toEqual([0, 2, 3, 0, 2, 0])
    // The trend weighs v2's reports by 0.5^(1/10).
    const decay = 0.5 ** 0.1
    expect(state.trend[1]).toBeCloseTo(2 * decay, 5)
    expect(state.trend[2]).toBeCloseTo(decay + 2, 5)
    expect(state.trend[4]).toBe(2)

    // Four reports: popular, trending and categories follow them; new and co-visitation stay.
    expect(v3.manifest.pools.sha256).not.toBe(v2.manifest.pools.sha256)
    const pools = await readPools(store, v3.manifest.pools)
    expect(validateCandidatePools(pools, { nItems: 6 }).ok).toBe(true)
    expect(pools.popular).toEqual([2, 1, 4]) // 1 and 4 tied at 2: by index
    expect(pools.trending).toEqual([2, 4, 1]) // the newer reports weigh more
    expect(pools.byCategory).toEqual({ hats: [4], shoes: [2, 1] })
    expect(pools.new).toEqual(trainerPools.new)
    expect(pools.coVisitation).toEqual(trainerPools.coVisitation)
    // Devices get the pools, never the totals.
    const served = servedManifest(v3.manifest, settings, DEFAULT_SPARSE.training)
    expect(Object.keys(served)).not.toContain('popularity')
    expect(served.pools).toEqual(v3.manifest.pools)
  })

  it('P24: reports in a candidate still waiting for promotion count in the next release', async () => {
    await send('a', [1])
    await send('b', [1])
    expect(await publish('gated')).toMatchObject({ record: { version: 2, parent: 1 } })
    // v1 stays current: the next devices train from it, and v3 is built on it too.
    await send('c', [4])
    await send('d', [4])
    expect(await publish('gated')).toMatchObject({ record: { version: 3, parent: 1 } })
    const state = await totalsOf(3)
    expect(state.reports).toBe(4)
    expect(Array.from(state.total)).toEqual([0, 2, 0, 0, 2, 0])
  })
})
