// The worker's entry to its IndexedDB: one connection, the stores built on it, and the two ways
// out (close, and forget for consent withdrawal).
import {
  closeDatabase,
  deleteDatabase,
  openDatabase,
  runRead,
  type CloseReason,
  type StorageContext,
} from './database'
import { createArtifactStore, type ArtifactStore } from './artifact-store'
import { createEventStore, type EventStore, type EventStoreOptions } from './event-store'
import { createExposureStore, type ExposureStore } from './exposure-store'
import { createMetaStore, type MetaStore } from './meta-store'
import { createOutboxStore, type OutboxStore } from './outbox-store'

export interface StorageOptions extends EventStoreOptions {
  /** Database name (default 'pocketrec'). */
  name?: string
  /** The clock for timestamps, sessions and retention; injectable for tests. */
  now?: () => number
  /** The connection closed under us: another tab upgraded or deleted the database. */
  onClose?: (reason: CloseReason) => void
}

export interface StorageStats {
  events: number
  sessions: number
  pendingUploads: number
  /** Corrupt records found and deleted since this connection opened. */
  corruptRecords: number
}

export interface Storage {
  readonly events: EventStore
  readonly artifacts: ArtifactStore
  readonly outbox: OutboxStore
  readonly meta: MetaStore
  /** Impressions since the last click, per product (demotion). */
  readonly exposure: ExposureStore
  stats(): Promise<StorageStats>
  /** Closes the connection; later calls fail with StorageError E_STORAGE_CLOSED. */
  close(): void
  /** Closes and deletes the database: consent withdrawn, nothing of the shopper remains. */
  forget(): Promise<void>
}

/**
 * Opens the database (creating or migrating it) and the stores on it.
 *
 * @example
 * const storage = await openStorage({ maxEvents: 2000 })
 * await storage.events.append({ event: 'Product Viewed', properties: { product_id: 'sku-1' } })
 * const session = await storage.events.currentSession()
 */
export async function openStorage(options: StorageOptions = {}): Promise<Storage> {
  const context: StorageContext = await openDatabase(options)
  let events: EventStore
  try {
    events = createEventStore(context, options)
  } catch (error) {
    closeDatabase(context)
    throw error
  }
  return {
    events,
    artifacts: createArtifactStore(context),
    outbox: createOutboxStore(context),
    meta: createMetaStore(context),
    exposure: createExposureStore(context),
    async stats() {
      const counts = await runRead(
        context,
        ['events', 'sessions', 'outbox'],
        'counting records',
        async (tx) => ({
          events: await tx.objectStore('events').count(),
          sessions: await tx.objectStore('sessions').count(),
          pendingUploads: await tx.objectStore('outbox').count(),
        }),
      )
      return { ...counts, corruptRecords: context.corruptRecords }
    },
    close() {
      closeDatabase(context)
    },
    async forget() {
      closeDatabase(context)
      await deleteDatabase(context.name)
    },
  }
}
