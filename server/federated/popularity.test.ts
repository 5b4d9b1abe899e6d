import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { validateCandidatePools } from '../../shared/artifacts'
import { popularityCell, sketchPopularity } from '../../shared/popularity-sketch'
import type { CandidatePools, Catalogue } from '../../shared/protocol'
import {
  NO_SCORE,
  encodeUpdate,
  updateByteLength,
  type UpdateLayout,
} from '../../shared/update-codec'
import { encodeWeights, type WeightsFile } from '../../shared/weights-codec'
import { openSqliteStore } from '../storage/sqlite-store'
import { record, storedUpdate } from '../storage/store.contract'
import type { FederationStore } from '../storage/store'
import type { FedBuffSettings } from './fedbuff'
import {
  advancePopularity,
  decodePopularityState,
  poolsFromReports,
  sumReports,
} from './popularity'
import { publishIfDue } from './publisher'
import { readJson, servedManifest } from './releases'
import { DEFAULT_UPDATE_TRAINING, popularityBucketsFor } from './defaults'

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
  it('sizes the default sketch to what the 64 KB budget leaves beside the model values', () => {
    const diginetica = { denseCoordinates: 16_384, sliceRows: 150, embedDim: 100 }
    expect(popularityBucketsFor(diginetica)).toBe(1024)
    const wider = { ...diginetica, sliceRows: 160 }
    const buckets = popularityBucketsFor(wider)
    expect(buckets).toBe(356)
    expect(updateByteLength({ ...wider, popularityBuckets: buckets })).toBeLessThanOrEqual(65_536)
    expect(updateByteLength({ ...wider, popularityBuckets: buckets + 1 })).toBeGreaterThan(65_536)
    // Too little room for a useful sketch: none.
    expect(popularityBucketsFor({ ...diginetica, sliceRows: 163 })).toBe(0)
  })

  it('sums reports per seed and noises every bucket of every sum by σ', () => {
    const sums = sumReports(
      [
        { seed: 4, values: Float32Array.of(1, 0, 0) },
        { seed: 4, values: Float32Array.of(0.5, -0.5, 0) },
        { seed: 5, values: Float32Array.of(0, 0, 1) },
      ],
      3,
      2,
      () => 0.25, // every draw: N(0, 1) = 0.25, so each bucket gains σ·0.25 = 0.5
    )
    expect([...sums.keys()]).toEqual([4, 5])
    expect(Array.from(sums.get(4)!)).toEqual([2, 0, 0.5])
    expect(Array.from(sums.get(5)!)).toEqual([0.5, 0.5, 1.5])
    expect(() => sumReports([{ seed: 1, values: new Float32Array(2) }], 3, 0, () => 0)).toThrow(
      'expected 3 popularity buckets',
    )
  })

  it('reads every item back from its signed bucket; the trend halves after its half-life', () => {
    const buckets = 8
    const sums = new Map([[3, Float64Array.from({ length: buckets }, (_, b) => b + 1)]])
    const first = advancePopularity(undefined, sums, 10, 5, 2)
    for (let item = 0; item < 5; item++) {
      const [bucket, sign] = popularityCell(3, item, buckets)
      expect(first.total[item]).toBe(sign * (bucket + 1))
      expect(first.trend[item]).toBe(first.total[item])
    }
    const empty = new Map([[4, new Float64Array(buckets)]])
    const third = advancePopularity(advancePopularity(first, empty, 0, 5, 2), empty, 0, 5, 2)
    expect(third.reports).toBe(10)
    expect(Array.from(third.total)).toEqual(Array.from(first.total)) // totals do not decay
    for (let item = 0; item < 5; item++)
      expect(third.trend[item]).toBeCloseTo(first.total[item]! / 2, 5)
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

// A model of one dense tensor and a 6 × 2 table; updates carry a 64-bucket popularity sketch.
const model: WeightsFile = {
  format: 'pocketrec-gru',
  meta: { nItems: 6 },
  tensors: [
    { name: 'gru/a', shape: [2], values: Float32Array.of(0, 0.5) },
    { name: 'item_embedding', shape: [6, 2], values: new Float32Array(12).fill(1) },
  ],
}
const layout: UpdateLayout = {
  denseCoordinates: 2,
  sliceRows: 1,
  embedDim: 2,
  popularityBuckets: 64,
}
const settings: FedBuffSettings = {
  layout,
  bufferSize: 2,
  minBuffer: 1,
  maxWaitMs: 60_000,
  maxStaleness: 3,
  exampleCap: 100,
  clipNorm: 1,
  serverLearningRate: 1,
  noiseMultiplier: 0,
  popularity: { minReports: 4, trendHalfLife: 10 },
}

describe('publishing with popularity reports (PROTOCOL.md P28)', () => {
  let store: FederationStore
  let n = 0
  const put = async (bytes: Uint8Array) => {
    const sha256 = createHash('sha256').update(bytes).digest('hex')
    await store.putArtifact(sha256, bytes)
    return { url: `${sha256.slice(0, 8)}.x`, sha256, bytes: bytes.byteLength }
  }
  const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value))

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

  let key = 0
  const send = async (client: string, viewed: number[]) => {
    const current = (await store.current())!.version
    const body = encodeUpdate({
      baseVersion: current,
      examples: 100,
      slice: 0,
      layout,
      idempotencyKey: new Uint8Array(16).fill(++key),
      values: new Float32Array(4),
      popularity: sketchPopularity([Int32Array.from(viewed)], current, 64).values,
      score: NO_SCORE,
    })
    const update = { ...storedUpdate(`k${key}`, client, current), slice: 0, weight: 1 }
    await store.accept({ ...update, body, receivedAtMs: 1000 })
  }
  const publish = (gaussian = () => 0) =>
    publishIfDue({ store, settings, now: () => 3000, gaussian })

  it('adds each release to the totals, and keeps the trainer’s pools until enough devices reported', async () => {
    // Items 1, 2 and 4 sit in distinct cells at seeds 1 and 2, so the sums read back exactly.
    for (const seed of [1, 2]) {
      const cells = [1, 2, 4].map((item) => popularityCell(seed, item, 64)[0])
      expect(new Set(cells).size).toBe(3)
    }
    await send('a', [1, 1]) // one item: norm 1, not clipped
    await send('b', [1, 2, 1, 2]) // two: 1/√2 each
    expect(await publish()).toMatchObject({ status: 'published' })
    const v2 = (await store.current())!
    expect(v2.metrics).toMatchObject({ popularityReports: 2 })
    expect(v2.manifest.pools).toEqual((await store.version(1))!.manifest.pools) // 2 < 4 reports
    const afterOne = decodePopularityState((await store.artifact(v2.manifest.popularity!.sha256))!)
    expect(afterOne.total[1]).toBeCloseTo(1 + Math.SQRT1_2, 3)
    expect(afterOne.total[2]).toBeCloseTo(Math.SQRT1_2, 3)
    expect(afterOne.total[4]).toBe(0)

    await send('c', [4, 2])
    await send('d', [4])
    expect(await publish()).toMatchObject({ status: 'published' })
    const v3 = (await store.current())!
    const state = decodePopularityState((await store.artifact(v3.manifest.popularity!.sha256))!)
    expect(state.reports).toBe(4)
    expect(state.total[1]).toBeCloseTo(1 + Math.SQRT1_2, 3)
    expect(state.total[2]).toBeCloseTo(2 * Math.SQRT1_2, 3)
    expect(state.total[4]).toBeCloseTo(1 + Math.SQRT1_2, 3)
    // The trend weighs v2's reports by 0.5^(1/10).
    expect(state.trend[1]).toBeCloseTo((1 + Math.SQRT1_2) * 0.5 ** 0.1, 3)

    // Four reports: popular, trending and categories follow them; new and co-visitation stay.
    expect(v3.manifest.pools.sha256).not.toBe(v2.manifest.pools.sha256)
    const pools = await readJson<CandidatePools>(store, v3.manifest.pools)
    expect(validateCandidatePools(pools, { nItems: 6 }).ok).toBe(true)
    expect(pools.popular.slice(0, 2).sort()).toEqual([1, 4]) // tied at 1.71; 2 at 1.41
    expect(pools.popular[2]).toBe(2)
    expect(pools.trending[0]).toBe(4) // the newer reports weigh more
    expect(pools.byCategory).toEqual({ hats: [4], shoes: [1, 2] })
    expect(pools.new).toEqual(trainerPools.new)
    // Devices get the pools, never the totals.
    const served = servedManifest(v3.manifest, settings, DEFAULT_UPDATE_TRAINING)
    expect(Object.keys(served)).not.toContain('popularity')
    expect(served.federation?.layout.popularityBuckets).toBe(64)
  })

  it('P24: reports in a candidate still waiting for promotion count in the next release', async () => {
    const gated = () =>
      publishIfDue({ store, settings, now: () => 3000, gaussian: () => 0, promotion: 'gated' })
    await send('a', [1])
    await send('b', [1])
    expect(await gated()).toMatchObject({ record: { version: 2, parent: 1 } })
    // v1 stays current: the next devices train from it, and v3 is built on it too.
    await send('c', [4])
    await send('d', [4])
    expect(await gated()).toMatchObject({ record: { version: 3, parent: 1 } })
    const v3 = (await store.version(3))!
    const state = decodePopularityState((await store.artifact(v3.manifest.popularity!.sha256))!)
    expect(state.reports).toBe(4)
    expect(state.total[1]).toBeCloseTo(2, 3)
    expect(state.total[4]).toBeCloseTo(2, 3)
  })

  it('P20: a noised release with reports is told to the accountant as σ/√2', async () => {
    await send('a', [1])
    await send('b', [2])
    const noisy = { ...settings, noiseMultiplier: 2 }
    await publishIfDue({ store, settings: noisy, now: () => 3000, gaussian: () => 0 })
    expect(await store.ledger()).toEqual([
      { version: 2, noiseMultiplier: 2 / Math.SQRT2, clipNorm: 1, updates: 2 },
    ])
  })
})
