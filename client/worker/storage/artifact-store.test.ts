import 'fake-indexeddb/auto'
import { IDBFactory } from 'fake-indexeddb'
import { openDB } from 'idb'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { encodeWeights } from '../../../shared/weights-codec'
import type { Release } from './artifact-store'
import { MAX_PENDING_UPLOADS } from './outbox-store'
import { DB_NAME } from './schema'
import { openStorage, type Storage } from './storage'

const T0 = 1_700_000_000_000
let storage: Storage

function createRelease(version: string): Release {
  const ref = { url: `/${version}/x`, sha256: 'ab'.repeat(32), bytes: 10 }
  return {
    manifest: {
      type: 'pocketrec-manifest',
      version,
      createdAt: '2026-11-27T00:00:00Z',
      model: ref,
      catalogue: ref,
      pools: ref,
      rules: ref,
    },
    modelBytes: encodeWeights({
      format: 'pocketrec-gru/1',
      meta: { version },
      tensors: [{ name: 'w', shape: [2], values: new Float32Array([1, 2]) }],
    }),
    catalogue: {
      type: 'pocketrec-catalogue',
      items: [
        {
          id: 'sku-1',
          index: 0,
          name: 'Mug',
          category: 'kitchen',
          brand: 'Acme',
          price: 9.5,
          inStock: true,
        },
      ],
    },
    pools: {
      type: 'pocketrec-pools',
      trending: [0],
      popular: [0],
      new: [],
      byCategory: { kitchen: [0] },
      coVisitation: { '0': [] },
    },
    rules: {
      type: 'pocketrec-rules',
      excludePurchasedDays: 30,
      maxPerCategory: 3,
      maxPerBrand: 2,
      boosts: { 'sku-1': 1.5 },
      pins: { trending: [{ productId: 'sku-1', position: 0 }] },
    },
  }
}

async function putRaw(storeName: string, value: unknown): Promise<void> {
  const db = await openDB(DB_NAME)
  await db.put(storeName, value)
  db.close()
}

async function countRaw(storeName: string): Promise<number> {
  const db = await openDB(DB_NAME)
  const count = await db.count(storeName)
  db.close()
  return count
}

beforeEach(async () => {
  globalThis.indexedDB = new IDBFactory()
  storage = await openStorage({ now: () => T0 })
})

afterEach(() => storage.close())

describe('artifact store', () => {
  it('round-trips a release, model bytes included', async () => {
    const release = createRelease('v1')
    await storage.artifacts.saveRelease(release)
    expect(await storage.artifacts.loadRelease()).toEqual(release)
  })

  it('keeps only the latest release', async () => {
    await storage.artifacts.saveRelease(createRelease('v1'))
    await storage.artifacts.saveRelease(createRelease('v2'))
    expect((await storage.artifacts.loadRelease())?.manifest.version).toBe('v2')
    for (const name of ['pools', 'catalogue', 'rules', 'model'])
      expect(await countRaw(name)).toBe(1)
  })

  it('reads a release with a corrupt part as none and deletes that part', async () => {
    await storage.artifacts.saveRelease(createRelease('v1'))
    await putRaw('catalogue', { version: 'v1', data: { type: 'pocketrec-catalogue', items: [{}] } })
    expect(await storage.artifacts.loadRelease()).toBeNull()
    expect(await countRaw('catalogue')).toBe(0)
    expect(await countRaw('pools')).toBe(1)
    expect((await storage.stats()).corruptRecords).toBe(1)
  })

  it('reads a corrupt model record as none and deletes it', async () => {
    await storage.artifacts.saveRelease(createRelease('v1'))
    await putRaw('model', { key: 'global', version: 'v1', bytes: 'not bytes' })
    expect(await storage.artifacts.loadRelease()).toBeNull()
    expect(await countRaw('model')).toBe(0)
  })

  it('round-trips local weights and drops corrupt ones', async () => {
    const bytes = new Uint8Array([1, 2, 3])
    await storage.artifacts.saveLocalWeights({ baseVersion: 'v1', bytes, steps: 4 })
    expect(await storage.artifacts.loadLocalWeights()).toEqual({
      key: 'local',
      baseVersion: 'v1',
      bytes,
      steps: 4,
      savedAtMs: T0,
    })
    await putRaw('local-weights', { key: 'local', baseVersion: 'v1', bytes: [1, 2, 3] })
    expect(await storage.artifacts.loadLocalWeights()).toBeNull()
    expect(await countRaw('local-weights')).toBe(0)
  })
})

describe('outbox store', () => {
  const upload = { idempotencyKey: 'k1', baseVersion: 'v1', body: new Uint8Array([9]) }

  it('queues an upload once per idempotency key and tracks attempts', async () => {
    const first = await storage.outbox.enqueue(upload)
    const again = await storage.outbox.enqueue(upload)
    expect(again).toEqual(first)
    await storage.outbox.recordAttempt(first.id)
    expect(await storage.outbox.list()).toEqual([{ ...first, attempts: 1, lastAttemptAtMs: T0 }])
    await storage.outbox.remove(first.id)
    expect(await storage.outbox.list()).toEqual([])
  })

  it('keeps only the latest uploads', async () => {
    for (let i = 0; i < MAX_PENDING_UPLOADS + 2; i++) {
      await storage.outbox.enqueue({ ...upload, idempotencyKey: `k${i}` })
    }
    const keys = (await storage.outbox.list()).map((u) => u.idempotencyKey)
    expect(keys).toHaveLength(MAX_PENDING_UPLOADS)
    expect(keys[0]).toBe('k2')
  })

  it('replaces a corrupt record holding the same idempotency key', async () => {
    await putRaw('outbox', { idempotencyKey: 'k1', body: 'oops' })
    const queued = await storage.outbox.enqueue(upload)
    expect(await storage.outbox.list()).toEqual([queued])
  })
})

describe('meta store', () => {
  it('round-trips consent and training state, reading corrupt ones as defaults', async () => {
    await storage.meta.saveConsent(true)
    expect(await storage.meta.loadConsent()).toBe(true)
    const state = { steps: 3, lastTrainedAtMs: T0, trainedThroughSessionId: 2, losses: [2.5, 2.1] }
    await storage.meta.saveTrainingState(state)
    expect(await storage.meta.loadTrainingState()).toEqual(state)
    await putRaw('meta', { key: 'training', steps: -1 })
    expect(await storage.meta.loadTrainingState()).toMatchObject({ steps: 0, losses: [] })
    await putRaw('meta', { key: 'consent', granted: 'yes' })
    expect(await storage.meta.loadConsent()).toBe(false)
    expect((await storage.stats()).corruptRecords).toBe(2)
  })
})
