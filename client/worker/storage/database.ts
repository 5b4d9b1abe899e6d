// Opening, migrating and deleting the database, and the transaction discipline every store
// follows: one transaction per operation, awaiting nothing but IndexedDB inside it, aborted on any
// error so nothing is half-written, with one prune-and-retry when the quota runs out.
import { deleteDB, openDB, type IDBPTransaction, type StoreKey } from 'idb'
import {
  DB_NAME,
  MIGRATIONS,
  type Migration,
  type PocketrecDb,
  type PocketrecSchema,
  type StoreName,
  type UpgradeTransaction,
} from './schema'
import { isStoredMeta } from './stored-records'
import { StorageError, getErrorName, isQuotaError, toStorageError } from './storage-error'

/** Share of the events dropped, oldest first, before retrying a write that ran out of quota. */
export const QUOTA_PRUNE_FRACTION = 0.25

export type CloseReason = 'versionchange' | 'terminated'

/**
 * How long an upgrade waits for older connections to close. Ours close on `versionchange`; one
 * that does not is held by a tab or worker that stopped answering, and the browser frees it only
 * when that one ends. Past this the open fails (E_STORAGE_OPEN) rather than wait unseen: the
 * worker's start would otherwise never answer, and the loader could neither replace nor report it.
 */
export const OPEN_BLOCKED_MS = 10_000

/** One open connection and what every store built on it shares. */
export interface StorageContext {
  readonly db: PocketrecDb
  readonly name: string
  readonly now: () => number
  closed: boolean
  /** Corrupt records found and deleted since this connection opened. */
  corruptRecords: number
}

export interface OpenDatabaseOptions {
  /** Database name; tests use their own. */
  name?: string
  /** The migration list; tests append one to exercise an upgrade. */
  migrations?: readonly Migration[]
  now?: () => number
  /** Another tab upgrades or deletes the database (consent withdrawn there), or the browser closed it. */
  onClose?: (reason: CloseReason) => void
  /** OPEN_BLOCKED_MS; tests use a short one. */
  blockedTimeoutMs?: number
}

export type ReadTx = IDBPTransaction<PocketrecSchema, StoreName[], 'readonly'>
export type WriteTx = IDBPTransaction<PocketrecSchema, StoreName[], 'readwrite'>

/** Counts what a write transaction found corrupt; added to the stats only if it commits. */
export interface Tally {
  corrupt: number
}

function runMigrations(
  db: PocketrecDb,
  tx: UpgradeTransaction,
  migrations: readonly Migration[],
  fromVersion: number,
  nowMs: number,
  onFailure: (error: unknown) => void,
): void {
  const migrate = async () => {
    for (let version = fromVersion; version < migrations.length; version++) {
      await migrations[version]!(db, tx)
    }
    const meta = tx.objectStore('meta')
    const previous = await meta.get('schema')
    const createdAtMs = isStoredMeta(previous, 'schema') ? previous.createdAtMs : nowMs
    await meta.put({ key: 'schema', version: migrations.length, createdAtMs, migratedAtMs: nowMs })
  }
  // Aborting the upgrade keeps the previous version intact; the open then fails with E_STORAGE_OPEN,
  // which is where the failure is reported (not as an unhandled rejection of `done`).
  tx.done.catch(() => undefined)
  migrate().catch((error: unknown) => {
    onFailure(error)
    abortQuietly(tx)
  })
}

/** Opens (creating or migrating) the database. */
export async function openDatabase(options: OpenDatabaseOptions = {}): Promise<StorageContext> {
  if (typeof indexedDB === 'undefined') {
    throw new StorageError('E_STORAGE_UNAVAILABLE', 'IndexedDB is not available in this context')
  }
  const name = options.name ?? DB_NAME
  const migrations = options.migrations ?? MIGRATIONS
  const now = options.now ?? Date.now
  // Filled once open resolves; the close callbacks cannot fire before that.
  const opened: { context?: StorageContext; migrationError?: unknown } = {}
  const closeFor = (reason: CloseReason) => {
    const { context } = opened
    if (!context || context.closed) return
    closeDatabase(context)
    options.onClose?.(reason)
  }
  let db: PocketrecDb
  try {
    db = await waitUnlessBlocked(name, options.blockedTimeoutMs ?? OPEN_BLOCKED_MS, (blocked) =>
      openDB<PocketrecSchema>(name, migrations.length, {
        upgrade: (upgradeDb, oldVersion, _newVersion, tx) =>
          runMigrations(upgradeDb, tx, migrations, oldVersion, now(), (error) => {
            opened.migrationError = error
          }),
        blocked,
        // Closing at once lets the other tab's upgrade or deletion proceed instead of hanging.
        blocking: () => closeFor('versionchange'),
        terminated: () => closeFor('terminated'),
      }),
    )
  } catch (error) {
    if (error instanceof StorageError) throw error
    if (getErrorName(error) === 'VersionError') {
      throw new StorageError(
        'E_STORAGE_VERSION',
        `expected database "${name}" at version ${migrations.length} or older, found a newer one`,
        { cause: error },
      )
    }
    const cause = opened.migrationError ?? error
    const detail =
      opened.migrationError === undefined ? '' : ' (a migration failed and was rolled back)'
    const message = `could not open database "${name}"${detail}: ${String(cause)}`
    throw new StorageError('E_STORAGE_OPEN', message, { cause })
  }
  opened.context = { db, name, now, closed: false, corruptRecords: 0 }
  return opened.context
}

/**
 * Settles as `open` does, unless the open is still blocked `timeoutMs` after its `blocked` event:
 * then it fails with E_STORAGE_OPEN, and the connection, should it open later, is closed at once.
 */
function waitUnlessBlocked(
  name: string,
  timeoutMs: number,
  open: (blocked: (currentVersion: number) => void) => Promise<PocketrecDb>,
): Promise<PocketrecDb> {
  return new Promise((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined
    let gaveUp = false
    const blocked = (currentVersion: number) => {
      timer ??= setTimeout(() => {
        gaveUp = true
        reject(
          new StorageError(
            'E_STORAGE_OPEN',
            `could not open database "${name}": a connection at version ${currentVersion} did ` +
              `not close within ${timeoutMs} ms (a tab or worker that stopped answering holds it)`,
          ),
        )
      }, timeoutMs)
    }
    open(blocked).then(
      (db) => {
        clearTimeout(timer)
        if (gaveUp) db.close()
        else resolve(db)
      },
      (error: unknown) => {
        clearTimeout(timer)
        reject(error)
      },
    )
  })
}

/** Deletes the database; resolves once no database of that name remains. */
export async function deleteDatabase(name: string = DB_NAME): Promise<void> {
  if (typeof indexedDB === 'undefined') return
  try {
    // Our other connections close on `versionchange` (see openDatabase), so this is not blocked
    // for long.
    await deleteDB(name)
  } catch (error) {
    throw toStorageError(error, `deleting database "${name}"`)
  }
}

export function closeDatabase(context: StorageContext): void {
  if (context.closed) return
  context.closed = true
  context.db.close()
}

function abortQuietly(tx: { abort(): void }): void {
  try {
    tx.abort()
  } catch {
    // Already committed or aborted: nothing left to undo.
  }
}

function beginTransaction<Mode extends IDBTransactionMode>(
  context: StorageContext,
  stores: StoreName[],
  mode: Mode,
): IDBPTransaction<PocketrecSchema, StoreName[], Mode> {
  if (context.closed) {
    throw new StorageError('E_STORAGE_CLOSED', `database "${context.name}" is closed`)
  }
  const tx = context.db.transaction(stores, mode)
  // An aborted transaction rejects `done`; callers that care await it, the rest must not see an
  // unhandled rejection.
  tx.done.catch(() => undefined)
  return tx
}

/** Runs `body` in one read-only transaction; IndexedDB failures become StorageError. */
export async function runRead<T>(
  context: StorageContext,
  stores: StoreName[],
  action: string,
  body: (tx: ReadTx) => Promise<T>,
): Promise<T> {
  try {
    const tx = beginTransaction(context, stores, 'readonly')
    return await body(tx)
  } catch (error) {
    throw toStorageError(error, action)
  }
}

async function commitWrite<T>(
  context: StorageContext,
  stores: StoreName[],
  body: (tx: WriteTx, tally: Tally) => Promise<T>,
): Promise<T> {
  const tally: Tally = { corrupt: 0 }
  const tx = beginTransaction(context, stores, 'readwrite')
  let result: T
  try {
    result = await body(tx, tally)
    await tx.done
  } catch (error) {
    abortQuietly(tx)
    // A quota failure at commit shows up as the transaction's error, the requests only see AbortError.
    throw tx.error ?? error
  }
  context.corruptRecords += tally.corrupt
  return result
}

/** Deletes the first `count` records of a store in key order (insertion order: oldest first). */
export async function deleteFirst(
  tx: WriteTx,
  storeName: 'events' | 'sessions' | 'outbox',
  count: number,
): Promise<number> {
  let deleted = 0
  let cursor = count > 0 ? await tx.objectStore(storeName).openCursor() : null
  while (cursor && deleted < count) {
    await cursor.delete()
    deleted++
    cursor = await cursor.continue()
  }
  return deleted
}

/**
 * Runs `body` in one read-write transaction. On a quota error it drops the oldest events and runs
 * `body` again in one transaction with that pruning, so a second failure rolls both back.
 */
export async function runWrite<T>(
  context: StorageContext,
  stores: StoreName[],
  action: string,
  body: (tx: WriteTx, tally: Tally) => Promise<T>,
): Promise<T> {
  try {
    return await commitWrite(context, stores, body)
  } catch (error) {
    if (!isQuotaError(error)) throw toStorageError(error, action)
  }
  const retryStores: StoreName[] = stores.includes('events') ? stores : [...stores, 'events']
  try {
    return await commitWrite(context, retryStores, async (tx, tally) => {
      const events = await tx.objectStore('events').count()
      await deleteFirst(tx, 'events', Math.ceil(events * QUOTA_PRUNE_FRACTION))
      return body(tx, tally)
    })
  } catch (error) {
    if (!isQuotaError(error)) throw toStorageError(error, action)
    throw new StorageError(
      'E_STORAGE_QUOTA',
      `${action}: storage quota exceeded even after dropping the oldest events; nothing was written`,
      { cause: error },
    )
  }
}

/**
 * Deletes records a read found corrupt, re-checking each first (another tab may have written a
 * good one under the same key since). Never throws: a failed clean-up is retried by the next read.
 */
export async function removeCorrupt<N extends StoreName>(
  context: StorageContext,
  storeName: N,
  keys: StoreKey<PocketrecSchema, N>[],
  isValid: (raw: unknown) => boolean,
): Promise<void> {
  if (keys.length === 0 || context.closed) return
  try {
    await commitWrite(context, [storeName], async (tx, tally) => {
      const store = tx.objectStore(storeName)
      for (const key of keys) {
        const raw: unknown = await store.get(key)
        if (raw === undefined || isValid(raw)) continue
        await store.delete(key)
        tally.corrupt++
      }
    })
  } catch {
    // Skipping the corrupt records already kept the read correct.
  }
}

/** The part of an idb cursor a scan needs; store and index cursors both fit. */
export interface ScanCursor<K> {
  readonly value: unknown
  readonly primaryKey: K
  continue(): Promise<ScanCursor<K> | null>
}

/**
 * Walks a cursor, handing valid records to `visit` until it returns false; the keys of records
 * that fail `isValid` go to `corrupt` for removeCorrupt once the transaction is over.
 */
export async function scanRecords<T, K>(
  start: Promise<ScanCursor<K> | null>,
  isValid: (raw: unknown) => raw is T,
  corrupt: K[],
  visit: (record: T) => boolean,
): Promise<void> {
  let cursor = await start
  while (cursor) {
    if (!isValid(cursor.value)) corrupt.push(cursor.primaryKey)
    else if (!visit(cursor.value)) return
    cursor = await cursor.continue()
  }
}
