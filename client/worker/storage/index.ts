// The worker's IndexedDB layer: one schema (schema.ts), guarded reads, bounded retention.
export type { ArtifactStore, LocalWeights, Release } from './artifact-store'
export type { CloseReason, OpenDatabaseOptions, StorageContext } from './database'
export type { EventStore, EventStoreOptions, PruneResult } from './event-store'
export type { ExposureStore } from './exposure-store'
export type { MetaStore } from './meta-store'
export type { OutboxStore, PendingUpload } from './outbox-store'
export type {
  CartItem,
  MetaRecord,
  Migration,
  PocketrecSchema,
  StoredEvent,
  StoredExposure,
  StoredLocalWeights,
  StoredSession,
  StoredUpload,
  TrainingState,
} from './schema'
export type { Storage, StorageOptions, StorageStats } from './storage'
export type { StorageErrorCode } from '../../../shared/errors'

export { createArtifactStore } from './artifact-store'
export { deleteDatabase, openDatabase } from './database'
export {
  DEFAULT_MAX_AGE_MS,
  DEFAULT_MAX_EVENTS,
  DEFAULT_MAX_SESSIONS,
  createEventStore,
} from './event-store'
export { MAX_EXPOSURE_RECORDS, createExposureStore } from './exposure-store'
export { createMetaStore } from './meta-store'
export { createOutboxStore } from './outbox-store'
export { DB_NAME, DB_VERSION, MIGRATIONS } from './schema'
export { DEFAULT_SESSION_GAP_MS } from './sessions'
export { openStorage } from './storage'
export { StorageError, isStorageError } from './storage-error'
