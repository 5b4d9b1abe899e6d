import 'fake-indexeddb/auto'
import { IDBFactory } from 'fake-indexeddb'
import { openDB } from 'idb'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openDatabase, closeDatabase, type StorageContext } from './database'
import { createExposureStore } from './exposure-store'
import { DB_NAME } from './schema'
import { openStorage } from './storage'

const T0 = 1_700_000_000_000
let clock = T0
let context: StorageContext | undefined

async function open(maxRecords?: number) {
  context = await openDatabase({ now: () => clock })
  return createExposureStore(context, maxRecords)
}

beforeEach(() => {
  globalThis.indexedDB = new IDBFactory()
  clock = T0
})

afterEach(() => {
  if (context) closeDatabase(context)
  context = undefined
})

describe('exposure store', () => {
  it('counts the lists each product was shown in, once per list', async () => {
    const exposure = await open()
    await exposure.recordShown(['p1', 'p2', 'p1'])
    await exposure.recordShown(['p1'])
    expect(await exposure.impressions()).toEqual(
      new Map([
        ['p1', 2],
        ['p2', 1],
      ]),
    )
  })

  it('starts a clicked product from zero again', async () => {
    const exposure = await open()
    for (let i = 0; i < 5; i++) await exposure.recordShown(['p1', 'p2'])
    await exposure.recordClicked('p1')
    expect((await exposure.impressions()).has('p1')).toBe(false)
    expect((await exposure.impressions()).get('p2')).toBe(5)
    await exposure.recordShown(['p1'])
    expect((await exposure.impressions()).get('p1')).toBe(1)
  })

  it('keeps at most maxRecords products, dropping the least recently shown', async () => {
    const exposure = await open(3)
    for (const productId of ['a', 'b', 'c', 'd']) {
      clock += 1000
      await exposure.recordShown([productId])
    }
    clock += 1000
    await exposure.recordShown(['b'])
    clock += 1000
    await exposure.recordShown(['e'])
    expect([...(await exposure.impressions()).keys()].sort()).toEqual(['b', 'd', 'e'])
  })

  it('drops a corrupt record on read and counts a fresh impression over one', async () => {
    await open()
    closeDatabase(context!)
    // Written past every guard, as another build or a devtools user could.
    const db = await openDB(DB_NAME)
    await db.put('exposure', { productId: 'p1', shown: -3, lastShownMs: T0 })
    await db.put('exposure', { productId: 'p2', shown: 'many', lastShownMs: T0 })
    db.close()
    const exposure = await open()
    await exposure.recordShown(['p1'])
    expect(await exposure.impressions()).toEqual(new Map([['p1', 1]]))
    expect(await context!.db.count('exposure')).toBe(1)
  })

  it('is deleted with everything else by forget()', async () => {
    const storage = await openStorage({ now: () => clock })
    await storage.exposure.recordShown(['p1'])
    await storage.forget()
    const again = await openStorage({ now: () => clock })
    expect(await again.exposure.impressions()).toEqual(new Map())
    again.close()
  })
})
