// The helper's embedded store: one SQLite file, WAL mode, every write one transaction.
import Database from 'better-sqlite3'
import { SQLITE_BUSY_TIMEOUT_MS } from '../storage/sqlite-store'
import {
  BatchConflict,
  KEEP_BATCH_ANSWERS,
  type BatchRecord,
  type HelperStore,
} from './helper-store'

const SCHEMA = `
CREATE TABLE IF NOT EXISTS shares (
  key TEXT PRIMARY KEY,
  body BLOB NOT NULL,
  received_at_ms INTEGER NOT NULL,
  batch TEXT
);
CREATE INDEX IF NOT EXISTS shares_waiting ON shares (batch, received_at_ms);
CREATE TABLE IF NOT EXISTS batches (
  id TEXT PRIMARY KEY,
  request_sha256 TEXT NOT NULL,
  answer BLOB NOT NULL,
  created_at_ms INTEGER NOT NULL,
  seq INTEGER NOT NULL
);
`

export function openSqliteHelperStore(file: string): HelperStore {
  const db = new Database(file)
  db.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = FULL')
  db.exec(SCHEMA)
  const insertShare = db.prepare(
    `INSERT INTO shares (key, body, received_at_ms)
     SELECT ?, ?, ? WHERE (SELECT COUNT(*) FROM shares WHERE batch IS NULL) < ?
     ON CONFLICT (key) DO NOTHING`,
  )
  const selectShare = db.prepare('SELECT * FROM shares WHERE key = ?')
  const consume = db.prepare(
    "UPDATE shares SET batch = ?, body = x'' WHERE key = ? AND batch IS NULL",
  )
  const selectBatch = db.prepare('SELECT * FROM batches WHERE id = ?')
  const insertBatch = db.prepare(
    `INSERT INTO batches (id, request_sha256, answer, created_at_ms, seq)
     VALUES (?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM batches))`,
  )
  const pruneAnswers = db.prepare(
    `UPDATE batches SET answer = x'' WHERE seq <= (SELECT MAX(seq) FROM batches) - ?`,
  )
  const commit = db.transaction((record: BatchRecord, included: readonly string[]) => {
    if (selectBatch.get(record.id)) throw new BatchConflict()
    for (const key of included) {
      if (consume.run(record.id, key).changes !== 1) throw new BatchConflict()
    }
    insertBatch.run(record.id, record.requestSha256, record.answer, record.createdAtMs)
    pruneAnswers.run(KEEP_BATCH_ANSWERS)
    return 'committed' as const
  })
  return {
    kind: 'sqlite',
    async putShare(key, body, receivedAtMs, maxWaiting) {
      if (insertShare.run(key, body, receivedAtMs, maxWaiting).changes === 1) return 'accepted'
      return selectShare.get(key) ? 'duplicate' : 'full'
    },
    async shares(keys) {
      return keys.flatMap((key) => {
        const row = selectShare.get(key) as ShareRow | undefined
        return row ? [toShare(row)] : []
      })
    },
    async batch(id) {
      const row = selectBatch.get(id) as BatchRow | undefined
      return row ? toBatch(row) : null
    },
    async commitBatch(record, included) {
      try {
        return commit(record, included)
      } catch (error) {
        if (error instanceof BatchConflict) return 'conflict'
        throw error
      }
    },
    async dropWaiting(beforeMs) {
      return db
        .prepare('DELETE FROM shares WHERE batch IS NULL AND received_at_ms < ?')
        .run(beforeMs).changes
    },
    async counts() {
      const row = db
        .prepare(
          `SELECT (SELECT COUNT(*) FROM shares WHERE batch IS NULL) AS waiting,
                  (SELECT COUNT(*) FROM shares WHERE batch IS NOT NULL) AS consumed,
                  (SELECT COUNT(*) FROM batches) AS batches`,
        )
        .get() as { waiting: number; consumed: number; batches: number }
      return row
    },
    async close() {
      db.close()
    },
  }
}

interface ShareRow {
  key: string
  body: Buffer
  received_at_ms: number
  batch: string | null
}

interface BatchRow {
  id: string
  request_sha256: string
  answer: Buffer
  created_at_ms: number
}

const toShare = (row: ShareRow) => ({
  key: row.key,
  body: new Uint8Array(row.body),
  receivedAtMs: row.received_at_ms,
  batch: row.batch,
})

const toBatch = (row: BatchRow): BatchRecord => ({
  id: row.id,
  requestSha256: row.request_sha256,
  answer: new Uint8Array(row.answer),
  createdAtMs: row.created_at_ms,
})
