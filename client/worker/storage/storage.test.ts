import 'fake-indexeddb/auto'
import { IDBFactory } from 'fake-indexeddb'
import { beforeEach, describe, expect, it } from 'vitest'
import { openStorage } from './storage'

const T0 = 1_700_000_000_000

beforeEach(() => {
  globalThis.indexedDB = new IDBFactory()
})

describe('storage', () => {
  it('answers every read on an empty database', async () => {
    const storage = await openStorage({ now: () => T0 })
    expect(await storage.events.currentSession()).toBeNull()
    expect(await storage.events.recentSessions(5)).toEqual([])
    expect(await storage.events.recentlyViewed(5)).toEqual([])
    expect(await storage.events.purchasedSince(0)).toEqual([])
    expect(await storage.events.cartItems()).toEqual([])
    expect(await storage.artifacts.loadRelease()).toBeNull()
    expect(await storage.artifacts.loadLocalWeights()).toBeNull()
    expect(await storage.outbox.list()).toEqual([])
    expect(await storage.meta.loadConsent()).toBe(false)
    expect(await storage.meta.loadTrainingState()).toMatchObject({ steps: 0, losses: [] })
    expect(await storage.stats()).toEqual({
      events: 0,
      sessions: 0,
      pendingUploads: 0,
      corruptRecords: 0,
    })
    storage.close()
  })

  it('forget closes and deletes the database so none remains', async () => {
    const storage = await openStorage({ now: () => T0 })
    await storage.meta.saveConsent(true)
    await storage.events.append({ event: 'Product Viewed', properties: { product_id: 'a' } })
    expect(await indexedDB.databases()).toHaveLength(1)
    await storage.forget()
    expect(await indexedDB.databases()).toEqual([])
    await expect(storage.stats()).rejects.toMatchObject({
      name: 'StorageError',
      code: 'E_STORAGE_CLOSED',
    })

    // A new start after consent is given again begins from nothing.
    const fresh = await openStorage({ now: () => T0 })
    expect(await fresh.stats()).toMatchObject({ events: 0, sessions: 0 })
    expect(await fresh.meta.loadConsent()).toBe(false)
    await fresh.forget()
  })
})
