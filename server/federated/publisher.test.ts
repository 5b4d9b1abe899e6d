import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { splitWeights } from '../../shared/federation-layout'
import { secureParamsFor } from '../../shared/secure-update'
import {
  checkContribution,
  denseWindowStart,
  fromFixed,
  toFixed,
  type SparseLayout,
} from '../../shared/sparse-update'
import { decodeWeights, encodeWeights, type WeightsFile } from '../../shared/weights-codec'
import { startTestHelper, type TestHelper } from '../../test/fixtures/listen'
import { openSqliteStore } from '../storage/sqlite-store'
import { record } from '../storage/store.contract'
import { sendShares, testChannel } from '../../test/fixtures/share-uploads'
import type { FederationStore } from '../storage/store'
import { DEFAULT_SPARSE } from './defaults'
import type { FedBuffSettings } from './fedbuff'
import { DEFAULT_POPULARITY } from './popularity'
import { publishIfDue, type PublisherDeps } from './publisher'
import { servedManifest } from './releases'

const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-publish-'))
const TOKEN = 'the-publisher-test-pairing-secret-0123456'

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
const shape = { denseSize: 5, nItems: 4, embedDim: 2 }
// Slice s carries dense (2s mod 5, +1); the public negative's values are zero in every update.
const layout: SparseLayout = { maxRows: 2, embedDim: 2, denseCoordinates: 2, negativeRows: 1 }
const params = secureParamsFor(layout, shape)

let helper: TestHelper
let helperOrigin = ''
let settings: FedBuffSettings

beforeAll(async () => {
  helper = await startTestHelper(dir, { token: TOKEN })
  helperOrigin = helper.origin
  settings = {
    bufferSize: 2,
    minBuffer: 1,
    maxWaitMs: 60_000,
    maxStaleness: 3,
    popularity: DEFAULT_POPULARITY,
    outcomes: { minBatch: 200, sigma: 1 },
    secure: testChannel(helperOrigin, TOKEN, layout, shape),
  }
}, 60_000)

afterAll(async () => {
  await helper?.close()
  rmSync(dir, { recursive: true, force: true })
})

/**
 * One device's contribution: `dense` the change of slice `slice`'s window, `rows` the changes
 * of the rows it viewed.
 */
function contributionOf(slice: number, dense: number[], rows: Record<number, number[]> = {}) {
  const viewed = Object.keys(rows).map(Number)
  const contribution = {
    rows: Int32Array.from(viewed),
    rowValues: Int32Array.from(viewed.flatMap((row) => rows[row]!.map(toFixed))),
    denseStart: denseWindowStart(slice, layout, shape),
    dense: Int32Array.from(dense, toFixed),
    negatives: new Int32Array(layout.negativeRows * shape.embedDim),
  }
  checkContribution(contribution, layout, shape)
  return contribution
}

const helperCounts = async () =>
  (await (await fetch(`${helperOrigin}/v1/helper`)).json()) as {
    consumed: number
    batches: number
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

  const deps = (overrides: Partial<PublisherDeps> = {}): PublisherDeps => ({
    store,
    settings,
    now: () => 3000,
    promotion: 'auto',
    ...overrides,
  })
  const publish = (overrides: Partial<PublisherDeps> = {}) => publishIfDue(deps(overrides))

  /**
   * A device's update trained from the current version: its helper body posted to the helper,
   * then its leader body accepted.
   */
  const send = async (
    key: string,
    client: string,
    slice: number,
    dense: number[],
    rows?: Record<number, number[]>,
  ) => {
    const version = (await store.current())!.version
    const upload = { key, client, version, slice }
    await sendShares(store, helperOrigin, upload, contributionOf(slice, dense, rows), params)
  }
  const weightsOf = async (ref: { sha256: string }) =>
    splitWeights(decodeWeights((await store.artifact(ref.sha256))!))

  it('splits a model into dense weights (file order, table left out) and the table', () => {
    const { dense, table, shape } = splitWeights(model)
    expect(Array.from(dense)).toEqual([0, 0.5, 1, -1, 2])
    expect(table).toHaveLength(8)
    expect(shape).toEqual({ denseSize: 5, nItems: 4, embedDim: 2 })
  })

  it('waits for K updates, then publishes the summed step as the next version', async () => {
    await send('k1', 'a', 0, [0.25, 0.5], { 0: [0.5, -0.25] })
    expect(await publish({ now: () => 2000 })).toEqual({ status: 'not-due', buffered: 1 })
    await send('k2', 'b', 1, [0.125, 0.25], { 0: [0.25, 0.75], 1: [-0.5, 0.5] })
    expect(await publish()).toMatchObject({ status: 'published', updates: 2 })
    const current = (await store.current())!
    expect(current).toMatchObject({ version: 2, parent: 1, metrics: { updates: 2 } })
    expect(current.manifest.version).toBe('v2')
    const { dense, table } = await weightsOf(current.manifest.master!)
    // Each dense coordinate by the mean over the windows covering it (one each); dense 4 untouched.
    expect(Array.from(dense)).toEqual([0.25, 1, 1.125, -0.75, 2])
    // Row 0 by its mean over the two devices that trained it, row 1 by its one device's change;
    // rows 2 and 3 untouched.
    expect(Array.from(table)).toEqual([1.375, 1.25, 0.5, 1.5, 1, 1, 1, 1])
    // Devices get that master in the shipped encoding: the table's four distinct rows are their
    // own centroids, within half an int8 step of the largest (1.5 / 127); the dense weights int6,
    // within half a step of their tensor's largest (2 / 31).
    const served = await weightsOf(current.manifest.model)
    served.table.forEach((value, i) =>
      expect(Math.abs(value - table[i]!)).toBeLessThanOrEqual(0.75 / 127 + 1e-7),
    )
    served.dense.forEach((value, i) =>
      expect(Math.abs(value - dense[i]!)).toBeLessThanOrEqual(1 / 31 + 1e-7),
    )
    expect(await store.buffered()).toEqual([])
    expect(await store.ledger()).toEqual([]) // not noised: nothing for the accountant
  })

  it('P18: steps below float16 spacing add up over releases instead of rounding away', async () => {
    // Dense 2 is 1, where float16's spacing is 2⁻¹⁰ ≈ 0.00098: each release adds about 0.0003.
    const step = fromFixed(toFixed(0.0003))
    for (let release = 0; release < 5; release++) {
      await send(`a${release}`, `a${release}`, 1, [0.0003, 0])
      await send(`b${release}`, `b${release}`, 1, [0.0003, 0])
      expect(await publish()).toMatchObject({ status: 'published', updates: 2 })
    }
    const current = (await store.current())!
    expect(current.version).toBe(6)
    const served = await weightsOf(current.manifest.model)
    const master = await weightsOf(current.manifest.master!)
    expect(master.dense[2]).toBeCloseTo(1 + 5 * step, 6)
    // The served model is the master rounded, not 1 five times over.
    expect(served.dense[2]).toBeCloseTo(1 + 5 * step, 3)
    expect(served.dense[2]).not.toBe(1)
    // The master and the popularity totals are the server's own: devices never see them.
    const manifest = servedManifest(current.manifest, settings, DEFAULT_SPARSE.training)
    expect(Object.keys(manifest)).not.toContain('master')
    expect(Object.keys(manifest)).not.toContain('popularity')
  })

  it('P18: keeps masters and totals for current and the newest three versions; a rollback past them publishes from float16', async () => {
    const step = fromFixed(toFixed(0.0003))
    const release = async (n: number) => {
      await send(`a${n}`, `a${n}`, 1, [0.0003, 0])
      await send(`b${n}`, `b${n}`, 1, [0.0003, 0])
      return publish()
    }
    for (let n = 0; n < 5; n++) await release(n) // v2 … v6
    const stored = async (version: number) => {
      const { manifest } = (await store.version(version))!
      const has = async (ref: { sha256: string }) => (await store.artifact(ref.sha256)) !== null
      return {
        model: await has(manifest.model),
        master: await has(manifest.master!),
        popularity: await has(manifest.popularity!),
      }
    }
    const kept = { model: true, master: true, popularity: true }
    const pruned = { model: true, master: false, popularity: false }
    expect(await stored(2)).toEqual(pruned)
    expect(await stored(3)).toEqual(pruned)
    for (const v of [4, 5, 6]) expect(await stored(v)).toEqual(kept)

    // Rolled back to v3, whose master is gone: the next release starts from v3's float16 model.
    expect(await store.setCurrent(3)).toBe(true)
    expect(await release(5)).toMatchObject({ status: 'published', record: { parent: 3 } })
    const v3 = (await store.version(3))!.manifest
    const next = (await store.current())!.manifest
    expect((await weightsOf(next.master!)).dense[2]).toBeCloseTo(
      (await weightsOf(v3.model)).dense[2]! + step,
      6,
    )
    // v3 is current no more and not among the newest three: nothing of it comes back.
    expect(await stored(3)).toEqual(pruned)
    expect(await stored(4)).toEqual(pruned)
  })

  it('P24: with gated promotion, publishes a candidate and leaves v1 current', async () => {
    const gated = { promotion: 'gated' as const }
    await send('k1', 'a', 0, [0.1, 0])
    await send('k2', 'b', 1, [0.1, 0])
    expect(await publish(gated)).toMatchObject({
      status: 'published',
      record: { version: 2, parent: 1 },
    })
    expect((await store.current())!.version).toBe(1)
    // The next round builds on v1 again, and takes the next free number.
    await send('k3', 'c', 0, [0.1, 0])
    await send('k4', 'd', 1, [0.1, 0])
    expect(await publish(gated)).toMatchObject({
      status: 'published',
      record: { version: 3, parent: 1 },
    })
    expect((await store.current())!.version).toBe(1)
  })

  it('leaves the old version current and the buffer whole when publishing fails midway', async () => {
    await send('k1', 'a', 0, [0.1, 0])
    await send('k2', 'b', 1, [0.1, 0])
    const before = await helperCounts()
    const failing: FederationStore = {
      ...store,
      putArtifact: async () => {
        throw new Error('disk full')
      },
    }
    // The helper has summed the batch when the leader fails to write the model.
    await expect(publish({ store: failing })).rejects.toThrow('disk full')
    expect((await store.current())!.version).toBe(1)
    expect(await store.versions()).toHaveLength(1)
    expect((await store.buffered()).map((u) => u.key)).toEqual(['k1', 'k2'])
    // And it publishes once the store works again, from the same batch: each update counted once.
    expect(await publish()).toMatchObject({ status: 'published', updates: 2 })
    expect(await helperCounts()).toMatchObject({
      consumed: before.consumed + 2,
      batches: before.batches + 1,
    })
    expect(await publish({ now: () => 4000 })).toEqual({ status: 'not-due', buffered: 0 })
  })

  it('P29c: asks the helper for a recorded batch exactly as first asked, even after current moved to another model', async () => {
    await send('k1', 'a', 0, [0.1, 0])
    await send('k2', 'b', 1, [0.1, 0])
    const before = await helperCounts()
    const failing: FederationStore = {
      ...store,
      putArtifact: async () => {
        throw new Error('disk full')
      },
    }
    await expect(publish({ store: failing })).rejects.toThrow('disk full')
    // Meanwhile "current" moves to a version of another model (an operator's promotion): the
    // batch's updates were trained on v1's, with v1's negatives. Asked again with the new
    // model's view (both updates stale, none summed), the helper would refuse the batch as
    // another request, and its two committed bodies could never be summed again.
    const other = structuredClone(model)
    other.tensors[0]!.values[0] = 0.75
    const bytes = encodeWeights(other, { dtype: 'float16' })
    const sha256 = createHash('sha256').update(bytes).digest('hex')
    await store.putArtifact(sha256, bytes)
    const promoted = record(2, 1)
    promoted.manifest.model = { url: 'm2.prw', sha256, bytes: bytes.byteLength }
    await store.addVersion(promoted)
    await store.setCurrent(2)
    expect(await publish()).toMatchObject({ status: 'published', updates: 2 })
    expect(await helperCounts()).toMatchObject({
      consumed: before.consumed + 2,
      batches: before.batches + 1,
    })
  })

  it('changes nothing when another replica published first (conflict), and publishes the buffer after', async () => {
    await send('k1', 'a', 0, [0.1, 0])
    await send('k2', 'b', 1, [0.1, 0])
    const conflicting: FederationStore = { ...store, publish: async () => 'conflict' }
    expect(await publish({ store: conflicting })).toEqual({ status: 'conflict' })
    expect((await store.current())!.version).toBe(1)
    expect(await store.versions()).toHaveLength(1)
    expect((await store.buffered()).map((u) => u.key)).toEqual(['k1', 'k2'])
    expect(await publish()).toMatchObject({
      status: 'published',
      updates: 2,
      record: { version: 2, parent: 1 },
    })
    expect(await store.buffered()).toEqual([])
  })
})
