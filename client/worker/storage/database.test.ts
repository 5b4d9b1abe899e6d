import 'fake-indexeddb/auto'
import { IDBFactory } from 'fake-indexeddb'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { TrackEvent } from '../../../shared/events'
import { deleteDatabase, openDatabase, type StorageContext } from './database'
import { createEventStore } from './event-store'
import { DB_NAME, MIGRATIONS, type Migration } from './schema'
import { openStorage, type Storage } from './storage'
import { StorageError } from './storage-error'

const T0 = 1_700_000_000_000
const now = () => T0
const opened: Array<Storage | StorageContext> = []

function viewed(productId: string, timestamp = T0): TrackEvent {
  return { event: 'Product Viewed', properties: { product_id: productId }, timestamp }
}

async function openWithEvents(count: number): Promise<Storage> {
  const storage = await openStorage({ now })
  opened.push(storage)
  for (let i = 0; i < count; i++) await storage.events.append(viewed(`p${i}`, T0 - count + i))
  return storage
}

function quotaError(): DOMException {
  return new DOMException('The quota has been exceeded.', 'QuotaExceededError')
}

async function listDatabases() {
  return (await indexedDB.databases()).map(({ name, version }) => ({ name, version }))
}

beforeEach(() => {
  globalThis.indexedDB = new IDBFactory()
})

afterEach(() => {
  vi.restoreAllMocks()
  for (const handle of opened.splice(0)) {
    if ('db' in handle) handle.db.close()
    else handle.close()
  }
})

describe('quota errors', () => {
  it('drops the oldest events and retries once', async () => {
    const storage = await openWithEvents(8)
    vi.spyOn(IDBObjectStore.prototype, 'put').mockImplementationOnce(() => {
      throw quotaError()
    })
    await storage.events.append(viewed('new'))
    // A quarter of the 8 events (the two oldest) made room for the new one.
    expect(await storage.events.recentlyViewed(20)).toEqual([
      'new',
      'p7',
      'p6',
      'p5',
      'p4',
      'p3',
      'p2',
    ])
  })

  it('leaves the database unchanged and throws StorageError when the quota stays exceeded', async () => {
    const storage = await openWithEvents(8)
    const before = await storage.events.recentSessions(5)
    vi.spyOn(IDBObjectStore.prototype, 'put').mockImplementation(() => {
      throw quotaError()
    })
    const error = await storage.events.append(viewed('new')).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(StorageError)
    expect(error).toMatchObject({ name: 'StorageError', code: 'E_STORAGE_QUOTA' })
    vi.restoreAllMocks()
    expect(await storage.events.countRecords()).toEqual({ events: 8, sessions: 1 })
    expect(await storage.events.recentSessions(5)).toEqual(before)
  })

  it('also recovers when the quota failure arrives asynchronously, as browsers report it', async () => {
    const storage = await openWithEvents(4)
    const original = IDBObjectStore.prototype.put
    let failures = 1
    vi.spyOn(IDBObjectStore.prototype, 'put').mockImplementation(function (
      this: IDBObjectStore,
      ...args: Parameters<IDBObjectStore['put']>
    ) {
      if (failures-- <= 0) return original.apply(this, args)
      // fake-indexeddb's own request queue (internal): the request fails later and aborts the
      // transaction with QuotaExceededError, as a browser does.
      const tx = this.transaction as unknown as {
        _execRequestAsync(request: { source: unknown; operation: () => never }): IDBRequest
      }
      return tx._execRequestAsync({
        source: this,
        operation: () => {
          throw quotaError()
        },
      }) as IDBRequest<IDBValidKey>
    })
    await storage.events.append(viewed('new'))
    expect(await storage.events.recentlyViewed(20)).toEqual(['new', 'p3', 'p2', 'p1'])
  })

  it('does not retry other write errors', async () => {
    const storage = await openWithEvents(2)
    const put = vi.spyOn(IDBObjectStore.prototype, 'put').mockImplementation(() => {
      throw new DOMException('broken', 'UnknownError')
    })
    await expect(storage.events.append(viewed('x'))).rejects.toMatchObject({
      name: 'StorageError',
      code: 'E_STORAGE_FAILED',
    })
    expect(put).toHaveBeenCalledTimes(1)
  })
})

describe('migrations', () => {
  // A plausible v2: backfill a field from the events, as a real data migration would.
  const backfillEventCounts: Migration = async (_db, tx) => {
    const bySession = tx.objectStore('events').index('by-session')
    let cursor = await tx.objectStore('sessions').openCursor()
    while (cursor) {
      const eventCount = await bySession.count(cursor.value.id!)
      await cursor.update({ ...cursor.value, eventCount: eventCount * 10 })
      cursor = await cursor.continue()
    }
  }

  it('creates every store at the current version and records it', async () => {
    const storage = await openStorage({ now })
    opened.push(storage)
    expect(await storage.meta.loadSchemaInfo()).toEqual({
      key: 'schema',
      version: MIGRATIONS.length,
      createdAtMs: T0,
      migratedAtMs: T0,
    })
    expect(await listDatabases()).toEqual([{ name: DB_NAME, version: MIGRATIONS.length }])
  })

  it('upgrades to the next version keeping every record', async () => {
    const v1 = await openWithEvents(3)
    const before = await v1.events.recentSessions(5)
    v1.close()

    const context = await openDatabase({
      now: () => T0 + 1,
      migrations: [...MIGRATIONS, backfillEventCounts],
    })
    opened.push(context)
    const events = createEventStore(context)
    expect(await events.recentSessions(5)).toEqual([{ ...before[0], eventCount: 30 }])
    expect(await events.recentlyViewed(5)).toEqual(['p2', 'p1', 'p0'])
    const next = MIGRATIONS.length + 1
    expect(await listDatabases()).toEqual([{ name: DB_NAME, version: next }])
    const schema = await context.db.get('meta', 'schema')
    expect(schema).toEqual({ key: 'schema', version: next, createdAtMs: T0, migratedAtMs: T0 + 1 })
  })

  it('issue 14: a version 1 database gains the exposure store and keeps its events', async () => {
    const v1 = await openDatabase({ now, migrations: MIGRATIONS.slice(0, 1) })
    await createEventStore(v1).append(viewed('p0', T0 - 1))
    v1.db.close()
    const storage = await openStorage({ now })
    opened.push(storage)
    expect(await storage.events.recentlyViewed(5)).toEqual(['p0'])
    await storage.exposure.recordShown(['p0'])
    expect(await storage.exposure.impressions()).toEqual(new Map([['p0', 1]]))
  })

  it('rolls back a failing migration and keeps the previous version readable', async () => {
    const v1 = await openWithEvents(2)
    v1.close()
    const failing: Migration = async (_db, tx) => {
      await tx.objectStore('events').clear()
      throw new Error('bug in the next version')
    }
    await expect(openDatabase({ migrations: [...MIGRATIONS, failing] })).rejects.toMatchObject({
      name: 'StorageError',
      code: 'E_STORAGE_OPEN',
      message: expect.stringContaining('bug in the next version'),
    })
    const again = await openStorage({ now })
    opened.push(again)
    expect(await again.events.recentlyViewed(5)).toEqual(['p1', 'p0'])
    expect(await listDatabases()).toEqual([{ name: DB_NAME, version: MIGRATIONS.length }])
  })

  it('refuses a database from a newer build with E_STORAGE_VERSION', async () => {
    const newer = await openDatabase({ migrations: [...MIGRATIONS, () => undefined] })
    newer.db.close()
    await expect(openStorage()).rejects.toMatchObject({
      name: 'StorageError',
      code: 'E_STORAGE_VERSION',
    })
  })
})

describe('connections', () => {
  it('closes when another tab deletes the database, then fails with E_STORAGE_CLOSED', async () => {
    const onClose = vi.fn()
    const storage = await openStorage({ now, onClose })
    opened.push(storage)
    await storage.events.append(viewed('a'))
    await deleteDatabase()
    expect(onClose).toHaveBeenCalledWith('versionchange')
    expect(await listDatabases()).toEqual([])
    await expect(storage.events.currentSession()).rejects.toMatchObject({
      code: 'E_STORAGE_CLOSED',
    })
  })

  /** A connection at the current version that ignores `versionchange`: a worker that hangs. */
  async function openHung(): Promise<IDBDatabase> {
    const created = await openDatabase({ now })
    created.db.close()
    return new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, MIGRATIONS.length)
      request.onsuccess = () => resolve(request.result)
      request.onerror = () => reject(request.error)
    })
  }

  it('fails an upgrade with E_STORAGE_OPEN when an old connection never closes, instead of waiting forever', async () => {
    const hung = await openHung()
    const next = [...MIGRATIONS, () => undefined]
    await expect(openDatabase({ migrations: next, blockedTimeoutMs: 20 })).rejects.toMatchObject({
      name: 'StorageError',
      code: 'E_STORAGE_OPEN',
      message: expect.stringContaining(`version ${MIGRATIONS.length} did not close within 20 ms`),
    })
    // Once the hung one is gone (its worker terminated), the late open goes through and closes;
    // the next open is not blocked by it.
    hung.close()
    const context = await openDatabase({ migrations: next, blockedTimeoutMs: 20 })
    opened.push(context)
    expect(await listDatabases()).toEqual([{ name: DB_NAME, version: next.length }])
  })

  it('waits for an old connection that closes in time', async () => {
    const slow = await openHung()
    slow.onversionchange = () => setTimeout(() => slow.close(), 10)
    const context = await openDatabase({
      migrations: [...MIGRATIONS, () => undefined],
      blockedTimeoutMs: 5_000,
    })
    opened.push(context)
    expect(context.closed).toBe(false)
  })

  it('fails with E_STORAGE_UNAVAILABLE where there is no IndexedDB', async () => {
    vi.stubGlobal('indexedDB', undefined)
    try {
      await expect(openStorage()).rejects.toMatchObject({ code: 'E_STORAGE_UNAVAILABLE' })
    } finally {
      vi.unstubAllGlobals()
    }
  })
})
