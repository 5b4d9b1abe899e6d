// The embedded store: one SQLite file (better-sqlite3), WAL mode, every write one transaction.
// `npm start` needs nothing else. One process writes it; several replicas need PostgreSQL.
import Database from 'better-sqlite3'
import { OUTCOME_SCHEMA, sqliteOutcomes } from './sqlite-outcomes'
import {
  Conflict,
  type AcceptOutcome,
  type FederationStore,
  type LedgerEntry,
  type PublishOutcome,
  type PublishRequest,
  type StoredUpdate,
  type VersionRecord,
  type VersionScore,
} from './store'

const SCHEMA = `
CREATE TABLE IF NOT EXISTS versions (
  version INTEGER PRIMARY KEY,
  parent INTEGER,
  created_at TEXT NOT NULL,
  manifest TEXT NOT NULL,
  metrics TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pointer (
  name TEXT PRIMARY KEY,
  version INTEGER NOT NULL REFERENCES versions(version)
);
CREATE TABLE IF NOT EXISTS artifacts (
  sha256 TEXT PRIMARY KEY,
  bytes BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS updates (
  key TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  base_version INTEGER NOT NULL,
  accepted_at_version INTEGER NOT NULL,
  slice INTEGER NOT NULL,
  examples INTEGER NOT NULL,
  weight REAL NOT NULL,
  body BLOB NOT NULL,
  received_at_ms INTEGER NOT NULL,
  consumed_by INTEGER,
  seq INTEGER NOT NULL
);
-- P15 is one update per client in the buffer, checked in accept(); the rule it replaced (one per
-- client per version) let a shop change or rollback open a second place in the same release.
DROP INDEX IF EXISTS updates_one_per_client;
CREATE INDEX IF NOT EXISTS updates_by_client ON updates (client_id, consumed_by);
CREATE INDEX IF NOT EXISTS updates_buffer ON updates (consumed_by, seq);
CREATE TABLE IF NOT EXISTS ledger (
  version INTEGER PRIMARY KEY,
  noise_multiplier REAL NOT NULL,
  clip_norm REAL NOT NULL,
  updates INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL
);${OUTCOME_SCHEMA}`

interface VersionRow {
  version: number
  parent: number | null
  created_at: string
  manifest: string
  metrics: string
}

interface UpdateRow {
  key: string
  client_id: string
  base_version: number
  accepted_at_version: number
  slice: number
  body: Buffer
  received_at_ms: number
  scored_cases: number
  hits20: number
  rr20: number
}

const SCORE_COLUMNS = [
  ['scored_cases', 'INTEGER NOT NULL DEFAULT 0'],
  ['hits20', 'INTEGER NOT NULL DEFAULT 0'],
  ['rr20', 'REAL NOT NULL DEFAULT 0'],
] as const

/**
 * How long a write waits for another connection's to end instead of failing with SQLITE_BUSY.
 * The server has two connections to its file: the main thread's (intake) and the job thread's
 * (publishing, server/jobs/). The thread writes each artifact in a statement of its own, so the
 * main thread waits at most one of them: DIGINETICA's 18 MB float32 master took 140–155 ms here.
 */
export const SQLITE_BUSY_TIMEOUT_MS = 5_000

export function openSqliteStore(file: string): FederationStore {
  const db = new Database(file)
  // Before anything else: even switching to WAL mode needs a lock another connection may hold.
  db.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`)
  db.pragma('journal_mode = WAL')
  // FULL: a commit survives power loss, not only a killed process.
  db.pragma('synchronous = FULL')
  db.pragma('foreign_keys = ON')
  db.exec(SCHEMA)
  // Stores made before P27 lack the score columns: their updates count as unscored.
  const columns = new Set(
    (db.prepare('PRAGMA table_info(updates)').all() as Array<{ name: string }>).map((c) => c.name),
  )
  for (const [name, type] of SCORE_COLUMNS)
    if (!columns.has(name)) db.exec(`ALTER TABLE updates ADD COLUMN ${name} ${type}`)

  const toVersion = (row: VersionRow | undefined): VersionRecord | null =>
    row
      ? {
          version: row.version,
          parent: row.parent,
          createdAt: row.created_at,
          manifest: JSON.parse(row.manifest),
          metrics: JSON.parse(row.metrics),
        }
      : null
  const toUpdate = (row: UpdateRow): StoredUpdate => ({
    key: row.key,
    clientId: row.client_id,
    baseVersion: row.base_version,
    acceptedAtVersion: row.accepted_at_version,
    slice: row.slice,
    body: new Uint8Array(row.body),
    receivedAtMs: row.received_at_ms,
    score: { cases: row.scored_cases, hits20: row.hits20, reciprocalRank20: row.rr20 },
  })
  const insertVersion = db.prepare(
    'INSERT INTO versions (version, parent, created_at, manifest, metrics) VALUES (?, ?, ?, ?, ?)',
  )
  const addVersion = (r: VersionRecord) =>
    insertVersion.run(
      r.version,
      r.parent,
      r.createdAt,
      JSON.stringify(r.manifest),
      JSON.stringify(r.metrics),
    )
  const setPointer = db.prepare(
    "INSERT INTO pointer (name, version) VALUES ('current', ?) ON CONFLICT (name) DO UPDATE SET version = excluded.version",
  )
  const currentRow = db.prepare(
    "SELECT v.* FROM pointer p JOIN versions v ON v.version = p.version WHERE p.name = 'current'",
  )

  const accept = db.transaction((u: StoredUpdate): AcceptOutcome => {
    if (db.prepare('SELECT 1 FROM updates WHERE key = ?').get(u.key)) return 'duplicate'
    // P15: one update of a client in the buffer, whatever versions were published meanwhile.
    const buffered = db
      .prepare('SELECT 1 FROM updates WHERE client_id = ? AND consumed_by IS NULL')
      .get(u.clientId)
    if (buffered) return 'client-limit'
    const seq = (
      db.prepare('SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM updates').get() as { next: number }
    ).next
    db.prepare(
      `INSERT INTO updates (key, client_id, base_version, accepted_at_version, slice, examples, weight, body, received_at_ms, consumed_by, seq, scored_cases, hits20, rr20)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)`,
    ).run(
      u.key,
      u.clientId,
      u.baseVersion,
      u.acceptedAtVersion,
      u.slice,
      // The slice layout's example count and weight (P17), kept as columns for old stores.
      0,
      1,
      Buffer.from(u.body),
      u.receivedAtMs,
      seq,
      u.score.cases,
      u.score.hits20,
      u.score.reciprocalRank20,
    )
    return 'accepted'
  })

  const publish = db.transaction((request: PublishRequest): PublishOutcome => {
    const { record, consumed, ledger } = request
    if (db.prepare('SELECT 1 FROM versions WHERE version = ?').get(record.version))
      return 'conflict'
    const mark = db.prepare(
      // The body is dropped with it: the version holds its sum now, and the key, client and
      // score rows are all that idempotency, P15 and P27 need. Disk stays bounded by the buffer.
      "UPDATE updates SET consumed_by = ?, body = x'' WHERE key = ? AND consumed_by IS NULL",
    )
    for (const key of consumed) {
      // An update consumed already (or unknown) would be counted twice: undo everything.
      if (mark.run(record.version, key).changes !== 1) throw new Conflict()
    }
    addVersion(record)
    if (request.makeCurrent !== false) setPointer.run(record.version)
    if (ledger) {
      db.prepare(
        'INSERT INTO ledger (version, noise_multiplier, clip_norm, updates) VALUES (?, ?, ?, ?)',
      ).run(ledger.version, ledger.noiseMultiplier, ledger.clipNorm, ledger.updates)
    }
    return 'published'
  })

  return {
    kind: 'sqlite',
    config: { kind: 'sqlite', file },
    current: async () => toVersion(currentRow.get() as VersionRow | undefined),
    version: async (n) =>
      toVersion(
        db.prepare('SELECT * FROM versions WHERE version = ?').get(n) as VersionRow | undefined,
      ),
    versions: async () =>
      (db.prepare('SELECT * FROM versions ORDER BY version').all() as VersionRow[]).map((r) =>
        toVersion(r)!,
      ),
    addVersion: async (record) => {
      addVersion(record)
    },
    recordMetrics: async (n, metrics) => {
      const row = db.prepare('SELECT metrics FROM versions WHERE version = ?').get(n) as
        { metrics: string } | undefined
      if (!row) return false
      const merged = { ...JSON.parse(row.metrics), ...metrics }
      db.prepare('UPDATE versions SET metrics = ? WHERE version = ?').run(JSON.stringify(merged), n)
      return true
    },
    setCurrent: async (n) => {
      if (!db.prepare('SELECT 1 FROM versions WHERE version = ?').get(n)) return false
      setPointer.run(n)
      return true
    },
    setting: async (name) => {
      const row = db.prepare('SELECT value FROM settings WHERE name = ?').get(name) as
        { value: string } | undefined
      return row?.value ?? null
    },
    putSetting: async (name, value) => {
      db.prepare(
        'INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value',
      ).run(name, value)
    },
    settingOrInit: async (name, value) => {
      db.prepare('INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING').run(
        name,
        value,
      )
      return (
        db.prepare('SELECT value FROM settings WHERE name = ?').get(name) as {
          value: string
        }
      ).value
    },
    replaceSetting: async (name, expected, value) => {
      const changes =
        expected === null
          ? db
              .prepare('INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING')
              .run(name, value).changes
          : db
              .prepare('UPDATE settings SET value = ? WHERE name = ? AND value = ?')
              .run(value, name, expected).changes
      return changes === 1
    },
    putArtifact: async (sha256, bytes) => {
      db.prepare('INSERT INTO artifacts (sha256, bytes) VALUES (?, ?) ON CONFLICT DO NOTHING').run(
        sha256,
        Buffer.from(bytes),
      )
    },
    artifact: async (sha256) => {
      const row = db.prepare('SELECT bytes FROM artifacts WHERE sha256 = ?').get(sha256) as
        { bytes: Buffer } | undefined
      return row ? new Uint8Array(row.bytes) : null
    },
    deleteArtifacts: async (sha256s) => {
      const remove = db.prepare('DELETE FROM artifacts WHERE sha256 = ?')
      db.transaction(() => sha256s.forEach((sha256) => remove.run(sha256)))()
    },
    accept: async (update) => accept.immediate(update),
    hasUpdate: async (key) =>
      db.prepare('SELECT 1 FROM updates WHERE key = ?').get(key) !== undefined,
    buffered: async () =>
      (
        db
          .prepare('SELECT * FROM updates WHERE consumed_by IS NULL ORDER BY seq')
          .all() as UpdateRow[]
      ).map(toUpdate),
    bufferStats: async () => {
      const row = db
        .prepare(
          'SELECT COUNT(*) AS n, MIN(received_at_ms) AS first FROM updates WHERE consumed_by IS NULL',
        )
        .get() as { n: number; first: number | null }
      return { updates: row.n, firstAtMs: row.first }
    },
    acceptedCount: async () =>
      (db.prepare('SELECT COUNT(*) AS n FROM updates').get() as { n: number }).n,
    publish: async (request) => {
      try {
        return publish.immediate(request)
      } catch (error) {
        if (error instanceof Conflict) return 'conflict'
        throw error
      }
    },
    deviceScores: async () =>
      db
        .prepare(
          `SELECT base_version AS version, COUNT(*) AS updates, SUM(scored_cases) AS cases,
                  SUM(hits20) AS hits20, SUM(rr20) AS reciprocalRank20
           FROM updates GROUP BY base_version ORDER BY base_version`,
        )
        .all() as VersionScore[],
    ledger: async () =>
      (
        db.prepare('SELECT * FROM ledger ORDER BY version').all() as Array<{
          version: number
          noise_multiplier: number
          clip_norm: number
          updates: number
        }>
      ).map((r): LedgerEntry => ({
        version: r.version,
        noiseMultiplier: r.noise_multiplier,
        clipNorm: r.clip_norm,
        updates: r.updates,
      })),
    ...sqliteOutcomes(db),
    close: async () => {
      db.close()
    },
  }
}
