import 'fake-indexeddb/auto'
import { IDBFactory } from 'fake-indexeddb'
import { openDB } from 'idb'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { TrackEvent } from '../../../shared/events'
import { DB_NAME } from './schema'
import { openStorage, type Storage, type StorageOptions } from './storage'

const MINUTE = 60_000
const T0 = 1_700_000_000_000
let clock = T0
let storage: Storage | undefined

function viewed(productId: string, timestamp = clock): TrackEvent {
  return { event: 'Product Viewed', properties: { product_id: productId }, timestamp }
}

async function open(options: StorageOptions = {}): Promise<Storage> {
  storage = await openStorage({ now: () => clock, ...options })
  return storage
}

/** Writes past every guard, as another build or a devtools user could. */
async function putRaw(storeName: string, value: unknown): Promise<void> {
  const db = await openDB(DB_NAME)
  await db.put(storeName, value)
  db.close()
}

beforeEach(() => {
  globalThis.indexedDB = new IDBFactory()
  clock = T0
})

afterEach(() => {
  storage?.close()
  storage = undefined
})

describe('event store', () => {
  it('splits sessions exactly at the inactivity gap', async () => {
    const { events } = await open({ sessionGapMs: 30 * MINUTE })
    await events.append(viewed('a', T0))
    clock = T0 + 30 * MINUTE - 1
    await events.append(viewed('b'))
    // Exactly one gap after the previous event: a new session.
    clock = T0 + 60 * MINUTE - 1
    const third = await events.append(viewed('c'))
    const sessions = await events.recentSessions(10)
    expect(sessions.map((s) => s.productIds)).toEqual([['c'], ['a', 'b']])
    expect(sessions[1]).toMatchObject({ startMs: T0, endMs: T0 + 30 * MINUTE - 1, eventCount: 2 })
    expect(third.sessionId).toBe(sessions[0]!.id)
  })

  it('reports no current session once the gap has passed since the last event', async () => {
    const { events } = await open()
    expect(await events.currentSession()).toBeNull()
    await events.append(viewed('a'))
    expect((await events.currentSession())?.productIds).toEqual(['a'])
    clock += 30 * MINUTE
    expect(await events.currentSession()).toBeNull()
  })

  it('stamps events without a timestamp and clamps future ones to the store clock', async () => {
    const { events } = await open()
    const stamped = await events.append({
      event: 'Product Viewed',
      properties: { product_id: 'a' },
    })
    const clamped = await events.append(viewed('b', T0 + 10 * MINUTE))
    expect([stamped.timestamp, stamped.event.timestamp, clamped.timestamp]).toEqual([T0, T0, T0])
  })

  it('drops the oldest events and sessions beyond the count limits', async () => {
    const { events } = await open({ maxEvents: 3, maxSessions: 2, sessionGapMs: MINUTE })
    for (let i = 0; i < 5; i++) {
      clock = T0 + i * MINUTE
      await events.append(viewed(`p${i}`))
    }
    expect(await events.countRecords()).toEqual({ events: 3, sessions: 2 })
    expect(await events.recentlyViewed(10)).toEqual(['p4', 'p3', 'p2'])
    expect((await events.recentSessions(10)).map((s) => s.productIds)).toEqual([['p4'], ['p3']])
  })

  it('drops events and sessions older than the age limit', async () => {
    const { events } = await open({ maxAgeMs: 60 * MINUTE })
    await events.append(viewed('old', T0))
    clock = T0 + 61 * MINUTE
    await events.append(viewed('new'))
    expect(await events.countRecords()).toEqual({ events: 1, sessions: 1 })
    clock = T0 + 200 * MINUTE
    expect(await events.prune()).toEqual({ events: 1, sessions: 1, corrupt: 0 })
    expect(await events.recentlyViewed(10)).toEqual([])
  })

  it('answers recently viewed, purchased and cart questions', async () => {
    const { events } = await open()
    await events.append(viewed('a', T0 - 3))
    await events.append(viewed('b', T0 - 2))
    await events.append(viewed('a', T0 - 1))
    await events.append({ event: 'Product Added', properties: { product_id: 'a', quantity: 2 } })
    await events.append({ event: 'Product Added', properties: { product_id: 'b' } })
    await events.append({ event: 'Product Removed', properties: { product_id: 'b' } })
    expect(await events.recentlyViewed(5)).toEqual(['a', 'b'])
    expect(await events.recentlyViewed(1)).toEqual(['a'])
    expect(await events.cartItems()).toEqual([{ productId: 'a', quantity: 2, addedAtMs: T0 }])

    clock = T0 + 10
    await events.append({
      event: 'Order Completed',
      properties: { order_id: 'o1', products: [{ product_id: 'a' }, { product_id: 'c' }] },
    })
    expect(await events.cartItems()).toEqual([])
    expect(await events.purchasedSince(T0 + 10)).toEqual(['a', 'c'])
    expect(await events.purchasedSince(T0 + 11)).toEqual([])
  })

  it('skips and deletes a corrupt event while returning the others', async () => {
    const { events } = await open()
    await events.append(viewed('a', T0 - 2))
    const good = await events.append(viewed('b', T0 - 1))
    // Indexed like a real view, but its event fails validation.
    await putRaw('events', {
      timestamp: T0,
      sessionId: good.sessionId,
      event: { event: 'Product Viewed', properties: { product_id: 42 }, timestamp: T0 },
    })
    expect(await events.countRecords()).toEqual({ events: 3, sessions: 1 })
    expect(await events.recentlyViewed(10)).toEqual(['b', 'a'])
    expect(await events.countRecords()).toEqual({ events: 2, sessions: 1 })
    expect((await storage!.stats()).corruptRecords).toBe(1)
  })

  it('skips and deletes a corrupt session, also while appending', async () => {
    const { events } = await open()
    await events.append(viewed('a'))
    await putRaw('sessions', { id: 99, startMs: 'yesterday' })
    expect((await events.recentSessions(5)).map((s) => s.productIds)).toEqual([['a']])
    expect(await events.countRecords()).toEqual({ events: 1, sessions: 1 })

    await putRaw('sessions', { id: 100, productIds: null })
    await events.append(viewed('b'))
    expect((await events.currentSession())?.productIds).toEqual(['a', 'b'])
    expect((await storage!.stats()).corruptRecords).toBe(2)
  })

  it('replaces a corrupt cart with the next cart event', async () => {
    const { events } = await open()
    await putRaw('meta', { key: 'cart', items: 'lots' })
    expect(await events.cartItems()).toEqual([])
    await putRaw('meta', { key: 'cart', items: [{ productId: '' }] })
    await events.append({ event: 'Product Added', properties: { product_id: 'a' } })
    expect(await events.cartItems()).toEqual([{ productId: 'a', quantity: 1, addedAtMs: T0 }])
    expect((await storage!.stats()).corruptRecords).toBe(2)
  })

  it('finds corrupt records no index lists when pruning', async () => {
    const { events } = await open()
    await events.append(viewed('a'))
    await putRaw('events', { note: 'no timestamp, so not in any index' })
    expect(await events.prune()).toEqual({ events: 1, sessions: 0, corrupt: 1 })
    expect(await events.countRecords()).toEqual({ events: 1, sessions: 1 })
  })

  it('keeps history across a reopen', async () => {
    const first = await open()
    await first.events.append(viewed('a'))
    await first.events.append(viewed('b'))
    first.close()
    clock += MINUTE
    const { events } = await open()
    await events.append(viewed('c'))
    expect((await events.currentSession())?.productIds).toEqual(['a', 'b', 'c'])
  })

  it('rejects non-positive limits when opening', async () => {
    await expect(openStorage({ maxEvents: 0 })).rejects.toThrow(/maxEvents/)
  })
})
