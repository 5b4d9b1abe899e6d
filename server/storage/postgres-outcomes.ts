// Outcome reports (PROTOCOL.md P30c) in PostgreSQL: the leader's shares wait in outcome_reports
// until a batch consumes them, and each batch's noised totals stay in outcome_batches. Replicas
// need no lock: the tables' keys decide their races. postgres-store.ts appends the tables to its
// schema and spreads these methods into its store.
import type pg from 'pg'
import {
  Conflict,
  type OutcomeAcceptOutcome,
  type OutcomeBatchRecord,
  type OutcomeMethods,
  type StoredOutcomeReport,
} from './store'

/** The tables in `schema`; outcome_batches is the last (postgres-store.ts's schemaIsCurrent). */
export function outcomeSchemaSql(schema: string): string {
  return `
-- Outcome reports (P30c). consumed_by is the batch that summed the report, '' when it was
-- discarded unsummed, NULL while it waits. The unique index holds one report per client,
-- experiment and period across replicas, without a lock.
CREATE TABLE IF NOT EXISTS ${schema}.outcome_reports (
  key TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  experiment TEXT NOT NULL,
  period INTEGER NOT NULL,
  body BYTEA NOT NULL,
  received_at_ms BIGINT NOT NULL,
  consumed_by TEXT,
  seq BIGSERIAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outcome_reports_waiting
  ON ${schema}.outcome_reports (experiment, consumed_by, seq);
CREATE UNIQUE INDEX IF NOT EXISTS outcome_reports_one_per_period
  ON ${schema}.outcome_reports (experiment, client_id, period);
CREATE TABLE IF NOT EXISTS ${schema}.outcome_batches (
  id TEXT PRIMARY KEY,
  experiment TEXT NOT NULL,
  created_at_ms BIGINT NOT NULL,
  reports INTEGER NOT NULL,
  sigma DOUBLE PRECISION NOT NULL,
  totals BYTEA NOT NULL
);`
}

const toOutcomeReport = (row: Record<string, unknown>): StoredOutcomeReport => ({
  key: row.key as string,
  clientId: row.client_id as string,
  experiment: row.experiment as string,
  period: row.period as number,
  body: new Uint8Array(row.body as Buffer),
  receivedAtMs: Number(row.received_at_ms),
})

/**
 * The outcome-report methods on `pool`, whose `schema` has outcomeSchemaSql's tables;
 * `transaction` runs its work in one transaction of the pool (postgres-store.ts's).
 */
export function postgresOutcomes(
  pool: pg.Pool,
  schema: string,
  transaction: <T>(work: (client: pg.PoolClient) => Promise<T>) => Promise<T>,
): OutcomeMethods {
  const t = (name: string) => `${schema}.${name}`
  return {
    async acceptOutcome(r): Promise<OutcomeAcceptOutcome> {
      // The key and the unique index decide between replicas inserting at once: the one that
      // loses waits for the winner's commit, inserts nothing, and then finds out which it hit.
      const { rowCount } = await pool.query(
        `INSERT INTO ${t('outcome_reports')} (key, client_id, experiment, period, body, received_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
        [r.key, r.clientId, r.experiment, r.period, Buffer.from(r.body), r.receivedAtMs],
      )
      if (rowCount === 1) return 'accepted'
      const known = await pool.query(`SELECT 1 FROM ${t('outcome_reports')} WHERE key = $1`, [
        r.key,
      ])
      return known.rowCount ? 'duplicate' : 'client-limit'
    },
    async waitingOutcomes(experiment, limit) {
      const { rows } = await pool.query(
        `SELECT * FROM ${t('outcome_reports')} WHERE experiment = $1 AND consumed_by IS NULL
         ORDER BY seq LIMIT $2`,
        [experiment, limit],
      )
      return rows.map(toOutcomeReport)
    },
    async outcomeWaiting() {
      const { rows } = await pool.query(
        `SELECT experiment, COUNT(*)::int AS n FROM ${t('outcome_reports')}
         WHERE consumed_by IS NULL GROUP BY experiment`,
      )
      return new Map(rows.map((r) => [r.experiment as string, r.n as number]))
    },
    async commitOutcomeBatch(record, summed, discarded) {
      try {
        return await transaction(async (client) => {
          // First the id: a replica committing the same batch waits here for ours, then backs off.
          const inserted = await client.query(
            `INSERT INTO ${t('outcome_batches')} (id, experiment, created_at_ms, reports, sigma, totals)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`,
            [
              record.id,
              record.experiment,
              record.createdAtMs,
              record.reports,
              record.sigma,
              Buffer.from(record.totals),
            ],
          )
          if (inserted.rowCount !== 1) throw new Conflict()
          // One statement for both lists: two could lock another commit's rows in reverse order.
          // Bodies go with the mark, as in publish: the batch's totals hold their sum now.
          const keys = [...summed, ...discarded]
          const marked = await client.query(
            `UPDATE ${t('outcome_reports')}
             SET consumed_by = CASE WHEN key = ANY($2) THEN $1 ELSE '' END, body = ''::bytea
             WHERE key = ANY($3) AND consumed_by IS NULL AND experiment = $4`,
            [record.id, [...summed], keys, record.experiment],
          )
          // A report consumed already, unknown, of another experiment or named twice would be
          // counted wrongly: undo everything.
          if (marked.rowCount !== keys.length) throw new Conflict()
          return 'committed' as const
        })
      } catch (error) {
        if (error instanceof Conflict) return 'conflict'
        throw error
      }
    },
    async discardOutcomes(keys) {
      if (keys.length === 0) return
      await pool.query(
        `UPDATE ${t('outcome_reports')} SET consumed_by = '', body = ''::bytea
         WHERE key = ANY($1) AND consumed_by IS NULL`,
        [[...keys]],
      )
    },
    async outcomeBatches(experiment) {
      const { rows } = await pool.query(
        `SELECT * FROM ${t('outcome_batches')} WHERE $1::text IS NULL OR experiment = $1
         ORDER BY created_at_ms, id`,
        [experiment ?? null],
      )
      return rows.map((r): OutcomeBatchRecord => ({
        id: r.id,
        experiment: r.experiment,
        createdAtMs: Number(r.created_at_ms),
        reports: r.reports,
        sigma: r.sigma,
        totals: new Uint8Array(r.totals as Buffer),
      }))
    },
  }
}
