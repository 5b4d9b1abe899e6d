// Outcome reports (PROTOCOL.md P30c) in SQLite: the leader's shares wait in outcome_reports until
// a batch consumes them, and each batch's noised totals stay in outcome_batches. sqlite-store.ts
// appends the tables to its schema and spreads these methods into its store.
import type Database from 'better-sqlite3'
import {
  Conflict,
  type OutcomeAcceptOutcome,
  type OutcomeBatchRecord,
  type OutcomeMethods,
  type StoredOutcomeReport,
} from './store'

export const OUTCOME_SCHEMA = `
-- Outcome reports (P30c). consumed_by is the batch that summed the report, '' when it was
-- discarded unsummed, NULL while it waits.
CREATE TABLE IF NOT EXISTS outcome_reports (
  key TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  experiment TEXT NOT NULL,
  period INTEGER NOT NULL,
  body BLOB NOT NULL,
  received_at_ms INTEGER NOT NULL,
  consumed_by TEXT,
  seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outcome_reports_waiting ON outcome_reports (experiment, consumed_by, seq);
CREATE UNIQUE INDEX IF NOT EXISTS outcome_reports_one_per_period
  ON outcome_reports (experiment, client_id, period);
CREATE TABLE IF NOT EXISTS outcome_batches (
  id TEXT PRIMARY KEY,
  experiment TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  reports INTEGER NOT NULL,
  sigma REAL NOT NULL,
  totals BLOB NOT NULL
);
`

interface OutcomeReportRow {
  key: string
  client_id: string
  experiment: string
  period: number
  body: Buffer
  received_at_ms: number
}

interface OutcomeBatchRow {
  id: string
  experiment: string
  created_at_ms: number
  reports: number
  sigma: number
  totals: Buffer
}

const toOutcomeReport = (row: OutcomeReportRow): StoredOutcomeReport => ({
  key: row.key,
  clientId: row.client_id,
  experiment: row.experiment,
  period: row.period,
  body: new Uint8Array(row.body),
  receivedAtMs: row.received_at_ms,
})

const toOutcomeBatch = (row: OutcomeBatchRow): OutcomeBatchRecord => ({
  id: row.id,
  experiment: row.experiment,
  createdAtMs: row.created_at_ms,
  reports: row.reports,
  sigma: row.sigma,
  totals: new Uint8Array(row.totals),
})

/** The outcome-report methods on `db`, whose schema has OUTCOME_SCHEMA's tables. */
export function sqliteOutcomes(db: Database.Database): OutcomeMethods {
  const acceptOutcome = db.transaction((r: StoredOutcomeReport): OutcomeAcceptOutcome => {
    if (db.prepare('SELECT 1 FROM outcome_reports WHERE key = ?').get(r.key)) return 'duplicate'
    // One report per client, experiment and period, summed or waiting.
    const reported = db
      .prepare(
        'SELECT 1 FROM outcome_reports WHERE experiment = ? AND client_id = ? AND period = ?',
      )
      .get(r.experiment, r.clientId, r.period)
    if (reported) return 'client-limit'
    // Only an experiment's waiting reports need an order: their MAX comes from the waiting
    // index alone, where one over the whole table would read every report ever accepted.
    const seq = (
      db
        .prepare(
          'SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM outcome_reports WHERE experiment = ? AND consumed_by IS NULL',
        )
        .get(r.experiment) as { next: number }
    ).next
    db.prepare(
      `INSERT INTO outcome_reports (key, client_id, experiment, period, body, received_at_ms, consumed_by, seq)
       VALUES (?, ?, ?, ?, ?, ?, NULL, ?)`,
    ).run(r.key, r.clientId, r.experiment, r.period, Buffer.from(r.body), r.receivedAtMs, seq)
    return 'accepted'
  })

  const commitOutcomeBatch = db.transaction(
    (record: OutcomeBatchRecord, summed: readonly string[], discarded: readonly string[]) => {
      if (db.prepare('SELECT 1 FROM outcome_batches WHERE id = ?').get(record.id))
        return 'conflict' as const
      // Bodies go with the mark, as in publish: the batch's totals hold their sum now. A report
      // consumed already, unknown or of another experiment would be counted wrongly: undo all.
      const mark = db.prepare(
        "UPDATE outcome_reports SET consumed_by = ?, body = x'' WHERE key = ? AND consumed_by IS NULL AND experiment = ?",
      )
      for (const key of summed)
        if (mark.run(record.id, key, record.experiment).changes !== 1) throw new Conflict()
      for (const key of discarded)
        if (mark.run('', key, record.experiment).changes !== 1) throw new Conflict()
      db.prepare(
        'INSERT INTO outcome_batches (id, experiment, created_at_ms, reports, sigma, totals) VALUES (?, ?, ?, ?, ?, ?)',
      ).run(
        record.id,
        record.experiment,
        record.createdAtMs,
        record.reports,
        record.sigma,
        Buffer.from(record.totals),
      )
      return 'committed' as const
    },
  )

  return {
    acceptOutcome: async (report) => acceptOutcome.immediate(report),
    waitingOutcomes: async (experiment, limit) =>
      (
        db
          .prepare(
            'SELECT * FROM outcome_reports WHERE experiment = ? AND consumed_by IS NULL ORDER BY seq LIMIT ?',
          )
          .all(experiment, limit) as OutcomeReportRow[]
      ).map(toOutcomeReport),
    outcomeWaiting: async () =>
      new Map(
        (
          db
            .prepare(
              'SELECT experiment, COUNT(*) AS n FROM outcome_reports WHERE consumed_by IS NULL GROUP BY experiment',
            )
            .all() as Array<{ experiment: string; n: number }>
        ).map((r) => [r.experiment, r.n]),
      ),
    commitOutcomeBatch: async (record, summed, discarded) => {
      try {
        return commitOutcomeBatch.immediate(record, summed, discarded)
      } catch (error) {
        if (error instanceof Conflict) return 'conflict'
        throw error
      }
    },
    discardOutcomes: async (keys) => {
      const discard = db.prepare(
        "UPDATE outcome_reports SET consumed_by = '', body = x'' WHERE key = ? AND consumed_by IS NULL",
      )
      db.transaction(() => keys.forEach((key) => discard.run(key)))()
    },
    outcomeBatches: async (experiment) =>
      (
        (experiment === undefined
          ? db.prepare('SELECT * FROM outcome_batches ORDER BY created_at_ms, id').all()
          : db
              .prepare(
                'SELECT * FROM outcome_batches WHERE experiment = ? ORDER BY created_at_ms, id',
              )
              .all(experiment)) as OutcomeBatchRow[]
      ).map(toOutcomeBatch),
  }
}
