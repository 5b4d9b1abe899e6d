// Model updates waiting to be uploaded. Each carries the idempotency key the server uses to count
// a retried upload once, so an entry is deleted only after the server acknowledged it.
import {
  deleteFirst,
  removeCorrupt,
  runRead,
  runWrite,
  scanRecords,
  type StorageContext,
} from './database'
import type { StoredUpload } from './schema'
import { isStoredUpload } from './stored-records'

/** Most pending uploads kept; older ones are stale against the global model anyway. */
export const MAX_PENDING_UPLOADS = 16

export interface PendingUpload {
  idempotencyKey: string
  baseVersion: string
  body: Uint8Array
  helper?: { url: string; body: Uint8Array }
}

export interface OutboxStore {
  /** Queues an upload; queuing the same idempotency key again returns the queued one. */
  enqueue(upload: PendingUpload): Promise<StoredUpload>
  /** Pending uploads, oldest first. */
  list(): Promise<StoredUpload[]>
  recordAttempt(id: number): Promise<void>
  /** Removes an upload the server acknowledged (or rejected for good). */
  remove(id: number): Promise<void>
}

export function createOutboxStore(context: StorageContext): OutboxStore {
  return {
    enqueue(upload) {
      return runWrite(context, ['outbox'], 'queuing an upload', async (tx, tally) => {
        const outbox = tx.objectStore('outbox')
        const existing: unknown = await outbox
          .index('by-idempotency-key')
          .get(upload.idempotencyKey)
        if (isStoredUpload(existing)) return existing
        // A corrupt record holding the key would make the unique index refuse the new one.
        if (existing !== undefined) {
          const key = await outbox.index('by-idempotency-key').getKey(upload.idempotencyKey)
          if (key !== undefined) await outbox.delete(key)
          tally.corrupt++
        }
        const record = { ...upload, attempts: 0, createdAtMs: context.now(), lastAttemptAtMs: null }
        const id = await outbox.put(record)
        await deleteFirst(tx, 'outbox', (await outbox.count()) - MAX_PENDING_UPLOADS)
        return { id, ...record }
      })
    },

    async list() {
      const corrupt: number[] = []
      const uploads: StoredUpload[] = []
      await runRead(context, ['outbox'], 'reading the outbox', (tx) =>
        scanRecords(tx.objectStore('outbox').openCursor(), isStoredUpload, corrupt, (upload) => {
          uploads.push(upload)
          return true
        }),
      )
      await removeCorrupt(context, 'outbox', corrupt, isStoredUpload)
      return uploads
    },

    recordAttempt(id) {
      return runWrite(context, ['outbox'], 'recording an upload attempt', async (tx, tally) => {
        const outbox = tx.objectStore('outbox')
        const raw: unknown = await outbox.get(id)
        if (raw === undefined) return
        if (!isStoredUpload(raw)) {
          await outbox.delete(id)
          tally.corrupt++
          return
        }
        await outbox.put({ ...raw, attempts: raw.attempts + 1, lastAttemptAtMs: context.now() })
      })
    },

    remove(id) {
      return runWrite(context, ['outbox'], 'removing an upload', async (tx) => {
        await tx.objectStore('outbox').delete(id)
      })
    },
  }
}
