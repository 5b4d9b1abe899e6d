// The shopper's history: events as they arrive, the sessions they form, and the cheap questions
// recommendation asks of them (this visit, earlier visits, recently viewed, bought, in the cart).
// Retention is enforced in the same transaction as each write.
import type { TrackEvent } from '../../../shared/events'
import { applyCartEvent } from './cart'
import {
  deleteFirst,
  removeCorrupt,
  runRead,
  runWrite,
  scanRecords,
  type StorageContext,
  type Tally,
  type WriteTx,
} from './database'
import type { CartItem, StoredEvent, StoredSession } from './schema'
import { DEFAULT_SESSION_GAP_MS, extendSession, isSessionOver, startSession } from './sessions'
import { isStoredEvent, isStoredMeta, isStoredSession } from './stored-records'

export const DEFAULT_MAX_EVENTS = 5000
export const DEFAULT_MAX_SESSIONS = 1000
export const DEFAULT_MAX_AGE_MS = 30 * 24 * 60 * 60 * 1000

export interface EventStoreOptions {
  /** Inactivity that ends a session (default 30 minutes). */
  sessionGapMs?: number
  /** Most events kept; the oldest go first (default 5,000). */
  maxEvents?: number
  /** Most sessions kept; the oldest go first (default 1,000). */
  maxSessions?: number
  /** Events and sessions older than this are dropped (default 30 days). */
  maxAgeMs?: number
}

export interface PruneResult {
  events: number
  sessions: number
  /** Corrupt records among those removed. */
  corrupt: number
}

export interface EventStore {
  /** Stores an already validated event; stamps it with the store clock if it has no timestamp. */
  append(event: TrackEvent): Promise<StoredEvent>
  /** The latest session if it is still open (its last event less than the session gap ago). */
  currentSession(): Promise<StoredSession | null>
  /** The latest `limit` sessions, newest first, the current one included. */
  recentSessions(limit: number): Promise<StoredSession[]>
  /** Distinct product ids of the latest `Product Viewed` events, newest first. */
  recentlyViewed(limit: number): Promise<string[]>
  /** Distinct product ids of orders completed at or after `sinceMs`, newest first. */
  purchasedSince(sinceMs: number): Promise<string[]>
  /** Added minus removed since the last order, in the order first added. */
  cartItems(): Promise<CartItem[]>
  countRecords(): Promise<{ events: number; sessions: number }>
  /** Checks every event and session, deletes corrupt ones, and applies the retention limits. */
  prune(): Promise<PruneResult>
}

interface Limits {
  sessionGapMs: number
  maxEvents: number
  maxSessions: number
  maxAgeMs: number
}

function resolveLimits(options: EventStoreOptions): Limits {
  const limits = {
    sessionGapMs: options.sessionGapMs ?? DEFAULT_SESSION_GAP_MS,
    maxEvents: options.maxEvents ?? DEFAULT_MAX_EVENTS,
    maxSessions: options.maxSessions ?? DEFAULT_MAX_SESSIONS,
    maxAgeMs: options.maxAgeMs ?? DEFAULT_MAX_AGE_MS,
  }
  for (const [name, value] of Object.entries(limits)) {
    if (!(value > 0)) throw new RangeError(`expected ${name} to be a positive number, got ${value}`)
  }
  return limits
}

const PRODUCT_VIEWED = 'Product Viewed'
const ORDER_COMPLETED = 'Order Completed'

function listProductIds(event: TrackEvent): string[] {
  switch (event.event) {
    case 'Product List Viewed':
    case 'Order Completed':
      return event.properties.products.map((product) => product.product_id)
    case 'Products Searched':
      return []
    default:
      return [event.properties.product_id]
  }
}

function rangeOfName(name: string, fromMs: number): IDBKeyRange {
  return IDBKeyRange.bound([name, fromMs], [name, Infinity])
}

/** The newest valid session; corrupt ones met on the way are deleted in this transaction. */
async function findLatestSession(tx: WriteTx, tally: Tally): Promise<StoredSession | null> {
  let cursor = await tx.objectStore('sessions').openCursor(null, 'prev')
  while (cursor) {
    if (isStoredSession(cursor.value)) return cursor.value
    await cursor.delete()
    tally.corrupt++
    cursor = await cursor.continue()
  }
  return null
}

/** Applies a cart event; a corrupt cart record is replaced as if the cart were empty. */
async function updateCart(tx: WriteTx, tally: Tally, event: TrackEvent, timestamp: number) {
  if (applyCartEvent([], event, timestamp) === null) return
  const meta = tx.objectStore('meta')
  const raw: unknown = await meta.get('cart')
  const valid = isStoredMeta(raw, 'cart')
  if (raw !== undefined && !valid) tally.corrupt++
  const items = applyCartEvent(valid ? raw.items : [], event, timestamp)
  if (items) await meta.put({ key: 'cart', items })
}

async function deleteOlderThan(
  tx: WriteTx,
  storeName: 'events' | 'sessions',
  cutoffMs: number,
): Promise<number> {
  const range = IDBKeyRange.upperBound(cutoffMs, true)
  let deleted = 0
  let cursor =
    storeName === 'events'
      ? await tx.objectStore('events').index('by-timestamp').openCursor(range)
      : await tx.objectStore('sessions').index('by-end').openCursor(range)
  while (cursor) {
    await cursor.delete()
    deleted++
    cursor = await cursor.continue()
  }
  return deleted
}

async function enforceRetention(
  tx: WriteTx,
  nowMs: number,
  limits: Limits,
): Promise<{ events: number; sessions: number }> {
  const cutoffMs = nowMs - limits.maxAgeMs
  let events = await deleteOlderThan(tx, 'events', cutoffMs)
  let sessions = await deleteOlderThan(tx, 'sessions', cutoffMs)
  // Count limits go by key order, which also reaches corrupt records no index lists.
  const eventCount = await tx.objectStore('events').count()
  events += await deleteFirst(tx, 'events', eventCount - limits.maxEvents)
  const sessionCount = await tx.objectStore('sessions').count()
  sessions += await deleteFirst(tx, 'sessions', sessionCount - limits.maxSessions)
  return { events, sessions }
}

async function deleteInvalid(
  tx: WriteTx,
  storeName: 'events' | 'sessions',
  isValid: (raw: unknown) => boolean,
): Promise<number> {
  let deleted = 0
  let cursor = await tx.objectStore(storeName).openCursor()
  while (cursor) {
    if (!isValid(cursor.value)) {
      await cursor.delete()
      deleted++
    }
    cursor = await cursor.continue()
  }
  return deleted
}

export function createEventStore(
  context: StorageContext,
  options: EventStoreOptions = {},
): EventStore {
  const limits = resolveLimits(options)

  async function readSessions(limit: number): Promise<StoredSession[]> {
    const corrupt: number[] = []
    const sessions: StoredSession[] = []
    if (limit > 0) {
      await runRead(context, ['sessions'], 'reading sessions', (tx) =>
        scanRecords(
          tx.objectStore('sessions').openCursor(null, 'prev'),
          isStoredSession,
          corrupt,
          (s) => {
            sessions.push(s)
            return sessions.length < limit
          },
        ),
      )
    }
    await removeCorrupt(context, 'sessions', corrupt, isStoredSession)
    return sessions
  }

  async function readProductIds(name: string, fromMs: number, limit: number): Promise<string[]> {
    const corrupt: number[] = []
    const productIds = new Set<string>()
    if (limit > 0) {
      await runRead(context, ['events'], `reading ${name} events`, (tx) =>
        scanRecords(
          tx.objectStore('events').index('by-name').openCursor(rangeOfName(name, fromMs), 'prev'),
          isStoredEvent,
          corrupt,
          ({ event }) => {
            for (const productId of listProductIds(event)) productIds.add(productId)
            return productIds.size < limit
          },
        ),
      )
    }
    await removeCorrupt(context, 'events', corrupt, isStoredEvent)
    return [...productIds].slice(0, limit)
  }

  return {
    append(event) {
      return runWrite(
        context,
        ['events', 'sessions', 'meta'],
        'storing an event',
        async (tx, tally) => {
          const nowMs = context.now()
          // The page and the worker share a clock, so a future timestamp is a bug or abuse; past
          // ones are real (calls queued before the worker started are replayed with their time).
          const timestamp = Math.min(event.timestamp ?? nowMs, nowMs)
          const latest = await findLatestSession(tx, tally)
          let session: StoredSession
          if (latest && !isSessionOver(latest, timestamp, limits.sessionGapMs)) {
            session = extendSession(latest, event, timestamp)
            await tx.objectStore('sessions').put(session)
          } else {
            const fresh = startSession(event, timestamp)
            session = { ...fresh, id: await tx.objectStore('sessions').put(fresh) }
          }
          const record = { timestamp, sessionId: session.id, event: { ...event, timestamp } }
          const id = await tx.objectStore('events').put(record)
          await updateCart(tx, tally, event, timestamp)
          await enforceRetention(tx, nowMs, limits)
          return { id, ...record }
        },
      )
    },

    async currentSession() {
      const [latest] = await readSessions(1)
      if (!latest || isSessionOver(latest, context.now(), limits.sessionGapMs)) return null
      return latest
    },

    recentSessions: readSessions,

    recentlyViewed(limit) {
      return readProductIds(PRODUCT_VIEWED, -Infinity, limit)
    },

    purchasedSince(sinceMs) {
      return readProductIds(ORDER_COMPLETED, sinceMs, Infinity)
    },

    async cartItems() {
      const raw = await runRead(context, ['meta'], 'reading the cart', (tx) =>
        tx.objectStore('meta').get('cart'),
      )
      if (raw === undefined) return []
      if (isStoredMeta(raw, 'cart')) return raw.items
      await removeCorrupt(context, 'meta', ['cart'], (value) => isStoredMeta(value, 'cart'))
      return []
    },

    countRecords() {
      return runRead(context, ['events', 'sessions'], 'counting records', async (tx) => ({
        events: await tx.objectStore('events').count(),
        sessions: await tx.objectStore('sessions').count(),
      }))
    },

    prune() {
      return runWrite(context, ['events', 'sessions'], 'pruning', async (tx, tally) => {
        const corruptEvents = await deleteInvalid(tx, 'events', isStoredEvent)
        const corruptSessions = await deleteInvalid(tx, 'sessions', isStoredSession)
        tally.corrupt += corruptEvents + corruptSessions
        const retained = await enforceRetention(tx, context.now(), limits)
        return {
          events: corruptEvents + retained.events,
          sessions: corruptSessions + retained.sessions,
          corrupt: tally.corrupt,
        }
      })
    },
  }
}
