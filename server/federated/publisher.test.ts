import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { NO_SCORE, encodeUpdate } from '../../shared/update-codec'
import { decodeWeights, encodeWeights, type WeightsFile } from '../../shared/weights-codec'
import { openSqliteStore } from '../storage/sqlite-store'
import { record, storedUpdate } from '../storage/store.contract'
import type { FederationStore } from '../storage/store'
import type { FedBuffSettings } from './fedbuff'
import { splitWeights } from '../../shared/federation-layout'
import { publishIfDue } from './publisher'
import { servedManifest } from './releases'
import { DEFAULT_UPDATE_TRAINING } from './defaults'
import { epsilonAfter } from './privacy'

const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-publish-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

// A model of two dense tensors (3 + 2 values) and a 4 × 2 table, all values exact in float16.
const model: WeightsFile = {
  format: 'pocketrec-gru',
  meta: { nItems: 4 },
  tensors: [
    { name: 'gru/a', shape: [3], values: Float32Array.of(0, 0.5, 1) },
    { name: 'item_embedding', shape: [4, 2], values: new Float32Array(8).fill(1) },
    { name: 'gru/b', shape: [2], values: Float32Array.of(-1, 2) },
  ],
}
const layout = { denseCoordinates: 2, sliceRows: 1, embedDim: 2 }
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
}

function encoded(slice: number, values: number[], key: number): Uint8Array {
  return encodeUpdate({
    baseVersion: 1,
    examples: 100,
    slice,
    layout,
    idempotencyKey: new Uint8Array(16).fill(key),
    values: Float32Array.from(values),
    score: NO_SCORE,
  })
}

describe('publishing a version (PROTOCOL.md P16–P19)', () => {
  let store: FederationStore
  let n = 0
  beforeEach(async () => {
    store = openSqliteStore(path.join(dir, `publish-${++n}.db`))
    const bytes = encodeWeights(model, { dtype: 'float16' })
    const sha256 = createHash('sha256').update(bytes).digest('hex')
    await store.putArtifact(sha256, bytes)
    const first = record(1, null)
    first.manifest.model = { url: 'm.prw', sha256, bytes: bytes.byteLength }
    await store.addVersion(first)
    await store.setCurrent(1)
  })
  afterEach(async () => store.close())

  const accept = (key: string, client: string, body: Uint8Array, weight = 1) =>
    store.accept({ ...storedUpdate(key, client), slice: 0, weight, body, receivedAtMs: 1000 })

  it('splits a model into dense weights (file order, table left out) and the table', () => {
    const { dense, table, shape } = splitWeights(model)
    expect(Array.from(dense)).toEqual([0, 0.5, 1, -1, 2])
    expect(table).toHaveLength(8)
    expect(shape).toEqual({ denseSize: 5, nItems: 4, embedDim: 2 })
  })

  it('waits for K updates, then publishes the averaged step as the next version', async () => {
    // Slice 0: dense 0–1, row 0. Slice 1: dense 2–3, row 1.
    await accept('k1', 'a', encoded(0, [0.25, 0.5, 0.5, -0.25], 1))
    expect(await publishIfDue({ store, settings, now: () => 2000, gaussian: () => 0 })).toEqual({
      status: 'not-due',
      buffered: 1,
    })
    await accept('k2', 'b', encoded(1, [0.125, 0.25, -0.5, 0.5], 2), 0.5)
    const result = await publishIfDue({ store, settings, now: () => 3000, gaussian: () => 0 })
    expect(result).toMatchObject({ status: 'published', updates: 2 })
    const current = (await store.current())!
    expect(current).toMatchObject({ version: 2, parent: 1, metrics: { updates: 2 } })
    expect(current.manifest.version).toBe('v2')
    const published = decodeWeights((await store.artifact(current.manifest.model.sha256))!)
    const { dense, table } = splitWeights(published)
    // dense 0: 0 + 0.25; dense 1: 0.5 + 0.5; dense 2: 1 + 0.5·0.125; dense 3: −1 + 0.5·0.25
    expect(Array.from(dense)).toEqual([0.25, 1, 1.0625, -0.875, 2])
    // row 0 moved by update 1, row 1 by half of update 2; rows 2 and 3 untouched.
    expect(Array.from(table)).toEqual([1.5, 0.75, 0.75, 1.25, 1, 1, 1, 1])
    expect(await store.buffered()).toEqual([])
    expect(await store.ledger()).toEqual([]) // no noise, no privacy spent
  })

  it('P18: steps below float16 spacing add up over releases instead of rounding away', async () => {
    // Dense 2 is 1, where float16's spacing is 2⁻¹⁰ ≈ 0.00098: each release adds 0.0003.
    for (let release = 0; release < 5; release++) {
      await accept(`a${release}`, `a${release}`, encoded(1, [0.0003, 0, 0, 0], 10 + release))
      await accept(`b${release}`, `b${release}`, encoded(1, [0.0003, 0, 0, 0], 20 + release))
      expect(
        await publishIfDue({ store, settings, now: () => 3000, gaussian: () => 0 }),
      ).toMatchObject({ status: 'published' })
    }
    const current = (await store.current())!
    const served = splitWeights(
      decodeWeights((await store.artifact(current.manifest.model.sha256))!),
    )
    const master = splitWeights(
      decodeWeights((await store.artifact(current.manifest.master!.sha256))!),
    )
    expect(master.dense[2]).toBeCloseTo(1.0015, 6)
    // The served float16 model is the master rounded, not 1 five times over.
    expect(served.dense[2]).toBeCloseTo(1.0015, 3)
    expect(served.dense[2]).not.toBe(1)
  })

  it('P18: keeps masters for current and the newest three versions; a rollback past them publishes from float16', async () => {
    const release = async (n: number) => {
      await accept(`a${n}`, `a${n}`, encoded(1, [0.0003, 0, 0, 0], 10 + n))
      await accept(`b${n}`, `b${n}`, encoded(1, [0.0003, 0, 0, 0], 40 + n))
      return publishIfDue({ store, settings, now: () => 3000, gaussian: () => 0 })
    }
    for (let n = 0; n < 5; n++) await release(n) // v2 … v6
    const stored = async (version: number) => {
      const { manifest } = (await store.version(version))!
      return {
        model: (await store.artifact(manifest.model.sha256)) !== null,
        master: (await store.artifact(manifest.master!.sha256)) !== null,
      }
    }
    expect(await stored(2)).toEqual({ model: true, master: false })
    expect(await stored(3)).toEqual({ model: true, master: false })
    for (const v of [4, 5, 6]) expect(await stored(v)).toEqual({ model: true, master: true })

    // Rolled back to v3, whose master is gone: the next release starts from v3's float16 model.
    expect(await store.setCurrent(3)).toBe(true)
    expect(await release(5)).toMatchObject({ status: 'published', record: { parent: 3 } })
    const weights = async (ref: { sha256: string }) =>
      splitWeights(decodeWeights((await store.artifact(ref.sha256))!)).dense[2]!
    const v3 = (await store.version(3))!.manifest
    const next = (await store.current())!.manifest
    expect(await weights(next.master!)).toBeCloseTo((await weights(v3.model)) + 0.0003, 6)
    // v3 is current no more and not among the newest three: nothing of it comes back.
    expect(await stored(3)).toEqual({ model: true, master: false })
  })

  it('P18: FedAdam keeps its moments beside each version; devices never see them', async () => {
    const adam = { ...settings, serverOptimizer: 'adam' as const, serverLearningRate: 0.1 }
    const publish = () =>
      publishIfDue({ store, settings: adam, now: () => 3000, gaussian: () => 0 })
    await accept('a1', 'a', encoded(0, [0.5, 0, 0, 0], 1))
    await accept('b1', 'b', encoded(0, [0.5, 0, 0, 0], 2))
    await publish()
    await accept('a2', 'a2', encoded(0, [-0.5, 0, 0, 0], 3))
    await accept('b2', 'b2', encoded(0, [-0.5, 0, 0, 0], 4))
    await publish()
    const current = (await store.current())!
    expect(current.version).toBe(3)
    const master = splitWeights(
      decodeWeights((await store.artifact(current.manifest.master!.sha256))!),
    )
    // Dense 0 started at 0: +0.1·0.5/(0.5 + τ), then the second step from the carried moments.
    const first = (0.1 * 0.5) / (0.5 + 1e-3)
    const second = (0.1 * (-0.005 / 0.19)) / (Math.sqrt(0.004975 / 0.0199) + 1e-3)
    expect(master.dense[0]).toBeCloseTo(first + second, 6)
    const served = servedManifest(current.manifest, adam, DEFAULT_UPDATE_TRAINING)
    expect(Object.keys(served)).not.toContain('master')
    expect(Object.keys(served)).not.toContain('moments')
    expect(current.manifest.moments).toBeDefined()
  })

  it('records the noised release in the ledger the accountant reads', async () => {
    await accept('k1', 'a', encoded(0, [0, 0, 0, 0], 1))
    await accept('k2', 'b', encoded(1, [0, 0, 0, 0], 2))
    const noisy = { ...settings, noiseMultiplier: 1.2, clipNorm: 0.5 }
    await publishIfDue({ store, settings: noisy, now: () => 3000, gaussian: () => 1 })
    const ledger = await store.ledger()
    expect(ledger).toEqual([{ version: 2, noiseMultiplier: 1.2, clipNorm: 0.5, updates: 2 }])
    expect(epsilonAfter(ledger.length, 1.2)).toBeCloseTo(epsilonAfter(1, 1.2), 12)
    // gaussian() = 1: each covered coordinate moved by σ·C / c = 0.6.
    const { dense } = splitWeights(
      decodeWeights((await store.artifact((await store.current())!.manifest.model.sha256))!),
    )
    expect(dense[0]).toBeCloseTo(0.6, 3)
    expect(dense[4]).toBe(2) // not covered
  })

  it('P24: with gated promotion, publishes a candidate and leaves v1 current', async () => {
    await accept('k1', 'a', encoded(0, [0.1, 0, 0, 0], 1))
    await accept('k2', 'b', encoded(1, [0.1, 0, 0, 0], 2))
    const gated = {
      store,
      settings,
      now: () => 3000,
      gaussian: () => 0,
      promotion: 'gated' as const,
    }
    expect(await publishIfDue(gated)).toMatchObject({
      status: 'published',
      record: { version: 2, parent: 1 },
    })
    expect((await store.current())!.version).toBe(1)
    // The next round builds on v1 again, and takes the next free number.
    await accept('k3', 'c', encoded(0, [0.1, 0, 0, 0], 3))
    await accept('k4', 'd', encoded(1, [0.1, 0, 0, 0], 4))
    expect(await publishIfDue(gated)).toMatchObject({ record: { version: 3, parent: 1 } })
  })

  it('leaves the old version current and the buffer whole when publishing fails midway', async () => {
    await accept('k1', 'a', encoded(0, [0.1, 0, 0, 0], 1))
    await accept('k2', 'b', encoded(1, [0.1, 0, 0, 0], 2))
    const failing: FederationStore = {
      ...store,
      putArtifact: async () => {
        throw new Error('disk full')
      },
    }
    await expect(
      publishIfDue({ store: failing, settings, now: () => 3000, gaussian: () => 0 }),
    ).rejects.toThrow('disk full')
    expect((await store.current())!.version).toBe(1)
    expect((await store.buffered()).map((u) => u.key)).toEqual(['k1', 'k2'])
    // And it publishes once the store works again, counting each update once.
    expect(
      await publishIfDue({ store, settings, now: () => 3000, gaussian: () => 0 }),
    ).toMatchObject({
      status: 'published',
      updates: 2,
    })
    expect(await publishIfDue({ store, settings, now: () => 4000, gaussian: () => 0 })).toEqual({
      status: 'not-due',
      buffered: 0,
    })
  })
})
