// The worker's one IndexedDB schema: every store, its records and indexes, and the migrations
// that build it. To change the layout, append a migration to MIGRATIONS (DB_VERSION follows);
// never edit one that has shipped, since browsers out there have already run it.
import type { OutcomeState } from '../experiment-outcomes'
import type { DBSchema, IDBPDatabase, IDBPTransaction, StoreNames } from 'idb'
import type { TrackEvent } from '../../../shared/events'
import type {
  CandidatePools,
  DeviceCatalogue,
  ModelManifest,
  RerankRules,
} from '../../../shared/protocol'

export const DB_NAME = 'pocketrec'

/** One shopper event as stored; `event.timestamp` is always set (stamped on arrival if absent). */
export interface StoredEvent {
  id: number
  timestamp: number
  sessionId: number
  event: TrackEvent
}

/** A visit: events with no gap of `sessionGapMs` or more between them. */
export interface StoredSession {
  id: number
  startMs: number
  endMs: number
  /** Products viewed, clicked or added, oldest first, consecutive repeats collapsed: the GRU's input. */
  productIds: string[]
  /**
   * Per product, the strongest thing the shopper did with it here (ENGAGEMENTS: 0 viewed,
   * 1 clicked, 2 added to the cart, 3 bought): how much it counts as a fine-tuning target under
   * the shop's event weights (P30d). Absent in sessions stored before it: all views.
   */
  strengths?: number[]
  /** Per product, the longest dwell (seconds) a Product Viewed reported for it here; absent: none. */
  dwell?: number[]
  eventCount: number
}

export interface StoredModel {
  key: 'global'
  version: string
  manifest: ModelManifest
  /** Weights codec bytes (shared/weights-codec.ts), exactly as downloaded. */
  bytes: Uint8Array
  savedAtMs: number
}

export interface StoredLocalWeights {
  key: 'local'
  /** The global model version these weights were fine-tuned from. */
  baseVersion: string
  /** Weights codec bytes. */
  bytes: Uint8Array
  steps: number
  savedAtMs: number
}

/** A downloaded artifact, keyed by the manifest version it belongs to. */
export interface StoredArtifact<T> {
  version: string
  data: T
}

/**
 * One artifact of a release still being downloaded, by its SHA-256: the whole verified file, or
 * the first bytes of one cut off while it arrived (a reload asks for the rest as a Range).
 * Cleared when the whole release is saved.
 */
export interface StoredDownload {
  sha256: string
  bytes: Uint8Array
  savedAtMs: number
}

/** A model update waiting to be uploaded; `idempotencyKey` makes a retried upload count once. */
export interface StoredUpload {
  id: number
  idempotencyKey: string
  baseVersion: string
  /** The body for the federation's own server (the leader's on the two-server channel). */
  body: Uint8Array
  /** P29c: the helper's body and where it goes (absolute), sent before `body` on each attempt. */
  helper?: { url: string; body: Uint8Array }
  attempts: number
  createdAtMs: number
  lastAttemptAtMs: number | null
}

/** How often a product was shown to this shopper since they last clicked it (demotion). */
export interface StoredExposure {
  productId: string
  /** Lists it was in since its last click (or ever, never clicked). */
  shown: number
  lastShownMs: number
}

export interface CartItem {
  productId: string
  quantity: number
  addedAtMs: number
}

export interface TrainingState {
  steps: number
  lastTrainedAtMs: number | null
  /** Sessions up to this id have been trained on. */
  trainedThroughSessionId: number | null
  /** Recent losses, oldest first. */
  losses: number[]
}

export type MetaRecord =
  | { key: 'schema'; version: number; createdAtMs: number; migratedAtMs: number }
  | { key: 'consent'; granted: boolean; updatedAtMs: number }
  | ({ key: 'training' } & TrainingState)
  | { key: 'cart'; items: CartItem[] }
  /**
   * This device's id for federated uploads (one update per client per version, P15), issued by
   * the server against a proof of work (P21); stores from before P21 hold a random one, which the
   * server refuses and the device then replaces.
   */
  | { key: 'client'; id: string; createdAtMs: number }
  /** The last release version this device sent an update for (one per version, P15). */
  | {
      key: 'federation'
      lastVersion: string
      updatedAtMs: number
    }
  /**
   * A/B experiments (P30): this device's random id, never sent, and the arm it keeps in each
   * experiment under the key it was placed with.
   */
  | { key: 'experiments'; deviceId: string; arms: KeptArm[] }
  /** What the device counted for its experiments' arms, not yet reported (P30). */
  | ({ key: 'outcomes' } & OutcomeState)

export interface KeptArm {
  experiment: string
  key: string
  arm: string
}

export type MetaKey = MetaRecord['key']

// Auto-increment stores receive their key on the first put.
type Unsaved<T extends { id: number }> = Omit<T, 'id'> & { id?: number }

export interface PocketrecSchema extends DBSchema {
  events: {
    key: number
    value: Unsaved<StoredEvent>
    indexes: { 'by-timestamp': number; 'by-session': number; 'by-name': [string, number] }
  }
  sessions: { key: number; value: Unsaved<StoredSession>; indexes: { 'by-end': number } }
  model: { key: 'global'; value: StoredModel }
  'local-weights': { key: 'local'; value: StoredLocalWeights }
  pools: { key: string; value: StoredArtifact<CandidatePools> }
  catalogue: { key: string; value: StoredArtifact<DeviceCatalogue> }
  rules: { key: string; value: StoredArtifact<RerankRules> }
  downloads: { key: string; value: StoredDownload }
  outbox: {
    key: number
    value: Unsaved<StoredUpload>
    indexes: { 'by-idempotency-key': string }
  }
  meta: { key: MetaKey; value: MetaRecord }
  exposure: { key: string; value: StoredExposure; indexes: { 'by-last-shown': number } }
}

export type StoreName = StoreNames<PocketrecSchema>
export type PocketrecDb = IDBPDatabase<PocketrecSchema>
export type UpgradeTransaction = IDBPTransaction<PocketrecSchema, StoreName[], 'versionchange'>

/**
 * Brings the database from version `index` to `index + 1`. It may await IndexedDB requests on
 * `tx` (to rewrite records) but nothing else, or the upgrade transaction commits under it.
 */
export type Migration = (db: PocketrecDb, tx: UpgradeTransaction) => void | Promise<void>

function createVersion1(db: PocketrecDb): void {
  const events = db.createObjectStore('events', { keyPath: 'id', autoIncrement: true })
  events.createIndex('by-timestamp', 'timestamp')
  events.createIndex('by-session', 'sessionId')
  // Event name first, so "latest views" and "purchases since" are one key range each.
  events.createIndex('by-name', ['event.event', 'timestamp'])
  const sessions = db.createObjectStore('sessions', { keyPath: 'id', autoIncrement: true })
  sessions.createIndex('by-end', 'endMs')
  db.createObjectStore('model', { keyPath: 'key' })
  db.createObjectStore('local-weights', { keyPath: 'key' })
  db.createObjectStore('pools', { keyPath: 'version' })
  db.createObjectStore('catalogue', { keyPath: 'version' })
  db.createObjectStore('rules', { keyPath: 'version' })
  const outbox = db.createObjectStore('outbox', { keyPath: 'id', autoIncrement: true })
  outbox.createIndex('by-idempotency-key', 'idempotencyKey', { unique: true })
  db.createObjectStore('meta', { keyPath: 'key' })
}

/** Version 2 (issue 14): impressions per product, for demoting items shown often and never clicked. */
function addExposure(db: PocketrecDb): void {
  const exposure = db.createObjectStore('exposure', { keyPath: 'productId' })
  exposure.createIndex('by-last-shown', 'lastShownMs')
}

/** Version 3: artifacts kept one by one as they arrive, so a reload does not fetch them again. */
function addDownloads(db: PocketrecDb): void {
  db.createObjectStore('downloads', { keyPath: 'sha256' })
}

/** MIGRATIONS[i] upgrades version i to i + 1; version 0 is "no database yet". */
export const MIGRATIONS: readonly Migration[] = [createVersion1, addExposure, addDownloads]

export const DB_VERSION = MIGRATIONS.length
