// The helper's store for several replicas: PostgreSQL, every write one transaction. Two replicas
// committing the same batch at once: the batch id's primary key lets one win, and the other
// answers from the winner's record (aggregate.ts).
import pg from 'pg'
import { SCHEMA_NAME, transaction } from '../storage/postgres-store'
import {
  BatchConflict,
  KEEP_BATCH_ANSWERS,
  type BatchRecord,
  type HelperStore,
} from './helper-store'

function schemaSql(schema: string): string {
  return `
CREATE SCHEMA IF NOT EXISTS ${schema};
CREATE TABLE IF NOT EXISTS ${schema}.shares (
  key TEXT PRIMARY KEY,
  body BYTEA NOT NULL,
  received_at_ms BIGINT NOT NULL,
  batch TEXT
);
CREATE INDEX IF NOT EXISTS shares_waiting ON ${schema}.shares (batch, received_at_ms);
CREATE TABLE IF NOT EXISTS ${schema}.batches (
  id TEXT PRIMARY KEY,
  request_sha256 TEXT NOT NULL,
  answer BYTEA NOT NULL,
  created_at_ms BIGINT NOT NULL,
  seq BIGSERIAL NOT NULL
);`
}

export async function openPostgresHelperStore(options: {
  connectionString: string
  schema?: string
}): Promise<HelperStore> {
  const schema = options.schema ?? 'pocketrec_helper'
  if (!SCHEMA_NAME.test(schema)) throw new Error(`expected a plain schema name, got ${schema}`)
  const pool = new pg.Pool({ connectionString: options.connectionString, max: 4 })
  // No DDL on a schema that has its tables: even `… IF NOT EXISTS` locks the tables, and the
  // aggregation thread opens its own store while devices' bodies are being inserted.
  await transaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`${schema}:schema`])
    const { rows } = await client.query('SELECT to_regclass($1) IS NOT NULL AS made', [
      `${schema}.batches`,
    ])
    if (!rows[0].made) await client.query(schemaSql(schema))
  })
  const t = (name: string) => `${schema}.${name}`
  return {
    kind: 'postgres',
    async putShare(key, body, receivedAtMs, maxWaiting) {
      const { rowCount } = await pool.query(
        `INSERT INTO ${t('shares')} (key, body, received_at_ms)
         SELECT $1, $2, $3 WHERE (SELECT COUNT(*) FROM ${t('shares')} WHERE batch IS NULL) < $4
         ON CONFLICT (key) DO NOTHING`,
        [key, body, receivedAtMs, maxWaiting],
      )
      if (rowCount === 1) return 'accepted'
      const known = await pool.query(`SELECT 1 FROM ${t('shares')} WHERE key = $1`, [key])
      return known.rowCount === 1 ? 'duplicate' : 'full'
    },
    async shares(keys) {
      const { rows } = await pool.query(`SELECT * FROM ${t('shares')} WHERE key = ANY($1)`, [
        [...keys],
      ])
      return rows.map((row) => ({
        key: row.key as string,
        body: new Uint8Array(row.body as Buffer),
        receivedAtMs: Number(row.received_at_ms),
        batch: row.batch as string | null,
      }))
    },
    async batch(id) {
      const { rows } = await pool.query(`SELECT * FROM ${t('batches')} WHERE id = $1`, [id])
      const row = rows[0]
      return row
        ? {
            id: row.id as string,
            requestSha256: row.request_sha256 as string,
            answer: new Uint8Array(row.answer as Buffer),
            createdAtMs: Number(row.created_at_ms),
          }
        : null
    },
    async commitBatch(record: BatchRecord, included) {
      const commit = transaction(pool, async (client) => {
        const inserted = await client.query(
          `INSERT INTO ${t('batches')} (id, request_sha256, answer, created_at_ms)
           VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING`,
          [record.id, record.requestSha256, record.answer, record.createdAtMs],
        )
        if (inserted.rowCount !== 1) throw new BatchConflict()
        const consumed = await client.query(
          `UPDATE ${t('shares')} SET batch = $1, body = '\\x'::bytea
           WHERE key = ANY($2) AND batch IS NULL`,
          [record.id, [...included]],
        )
        if (consumed.rowCount !== new Set(included).size) throw new BatchConflict()
        await client.query(
          `UPDATE ${t('batches')} SET answer = '\\x'::bytea
           WHERE seq <= (SELECT MAX(seq) FROM ${t('batches')}) - $1`,
          [KEEP_BATCH_ANSWERS],
        )
        return 'committed' as const
      })
      return commit.catch((error: unknown) => {
        if (error instanceof BatchConflict) return 'conflict' as const
        throw error
      })
    },
    async dropWaiting(beforeMs) {
      const { rowCount } = await pool.query(
        `DELETE FROM ${t('shares')} WHERE batch IS NULL AND received_at_ms < $1`,
        [beforeMs],
      )
      return rowCount ?? 0
    },
    async counts() {
      const { rows } = await pool.query(
        `SELECT (SELECT COUNT(*) FROM ${t('shares')} WHERE batch IS NULL) AS waiting,
                (SELECT COUNT(*) FROM ${t('shares')} WHERE batch IS NOT NULL) AS consumed,
                (SELECT COUNT(*) FROM ${t('batches')}) AS batches`,
      )
      return {
        waiting: Number(rows[0].waiting),
        consumed: Number(rows[0].consumed),
        batches: Number(rows[0].batches),
      }
    },
    close: () => pool.end(),
  }
}
