// The shared store for several replicas: PostgreSQL through node-postgres. Every write is one
// transaction; publishing also takes a transaction-scoped advisory lock, so one replica at a
// time publishes and a second one finds the lock (or the consumed updates) and backs off.
import pg from 'pg'
import { outcomeSchemaSql, postgresOutcomes } from './postgres-outcomes'
import {
  Conflict,
  type AcceptOutcome,
  type FederationStore,
  type LedgerEntry,
  type PublishOutcome,
  type StoredUpdate,
  type VersionRecord,
} from './store'

export interface PostgresStoreOptions {
  /** e.g. postgres://postgres@127.0.0.1:5432/test */
  connectionString: string
  /** Tables live in this schema (created if missing); tests use one schema each. */
  schema?: string
  poolSize?: number
}

export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/

function schemaSql(schema: string): string {
  return `
CREATE SCHEMA IF NOT EXISTS ${schema};
CREATE TABLE IF NOT EXISTS ${schema}.versions (
  version INTEGER PRIMARY KEY,
  parent INTEGER,
  created_at TEXT NOT NULL,
  manifest JSONB NOT NULL,
  metrics JSONB NOT NULL
);
CREATE TABLE IF NOT EXISTS ${schema}.pointer (
  name TEXT PRIMARY KEY,
  version INTEGER NOT NULL REFERENCES ${schema}.versions(version)
);
CREATE TABLE IF NOT EXISTS ${schema}.artifacts (
  sha256 TEXT PRIMARY KEY,
  bytes BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS ${schema}.updates (
  key TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  base_version INTEGER NOT NULL,
  accepted_at_version INTEGER NOT NULL,
  slice BIGINT NOT NULL,
  examples INTEGER NOT NULL,
  weight DOUBLE PRECISION NOT NULL,
  body BYTEA NOT NULL,
  received_at_ms BIGINT NOT NULL,
  consumed_by INTEGER,
  seq BIGSERIAL NOT NULL
);
CREATE INDEX IF NOT EXISTS updates_buffer ON ${schema}.updates (consumed_by, seq);
-- P15 is one update per client in the buffer, checked in accept() under a per-client lock; the
-- rule it replaced (one per client per version) let a shop change or rollback open a second
-- place in the same release.
ALTER TABLE ${schema}.updates DROP CONSTRAINT IF EXISTS updates_client_id_accepted_at_version_key;
CREATE INDEX IF NOT EXISTS updates_by_client ON ${schema}.updates (client_id, consumed_by);
-- P27; stores made before it gain the columns, their updates counting as unscored.
ALTER TABLE ${schema}.updates ADD COLUMN IF NOT EXISTS scored_cases INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ${schema}.updates ADD COLUMN IF NOT EXISTS hits20 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ${schema}.updates ADD COLUMN IF NOT EXISTS rr20 DOUBLE PRECISION NOT NULL DEFAULT 0;
CREATE TABLE IF NOT EXISTS ${schema}.ledger (
  version INTEGER PRIMARY KEY,
  noise_multiplier DOUBLE PRECISION NOT NULL,
  clip_norm DOUBLE PRECISION NOT NULL,
  updates INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ${schema}.settings (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL
);${outcomeSchemaSql(schema)}`
}

/**
 * Whether `schema` already has everything schemaSql makes: its last table (outcome_batches, from
 * postgres-outcomes.ts), P27's last column, and not the constraint that P15's change dropped.
 */
async function schemaIsCurrent(client: pg.PoolClient, schema: string): Promise<boolean> {
  const { rows } = await client.query(
    `SELECT to_regclass($1) IS NOT NULL AS last_table,
            EXISTS (SELECT 1 FROM information_schema.columns
                    WHERE table_schema = $2 AND table_name = 'updates' AND column_name = 'rr20') AS scores,
            EXISTS (SELECT 1 FROM information_schema.table_constraints
                    WHERE table_schema = $2 AND table_name = 'updates'
                      AND constraint_name = 'updates_client_id_accepted_at_version_key') AS old_rule`,
    [`${schema}.outcome_batches`, schema],
  )
  const r = rows[0] as { last_table: boolean; scores: boolean; old_rule: boolean }
  return r.last_table && r.scores && !r.old_rule
}

export async function openPostgresStore(options: PostgresStoreOptions): Promise<FederationStore> {
  const schema = options.schema ?? 'pocketrec'
  if (!SCHEMA_NAME.test(schema)) throw new Error(`expected a plain schema name, got ${schema}`)
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.poolSize ?? 4,
  })
  // Two replicas starting at once would race on CREATE … IF NOT EXISTS: serialise them. A schema
  // that is up to date gets no DDL at all: `ALTER TABLE … IF NOT EXISTS` takes an exclusive lock
  // on the table even when it changes nothing, and a replica's job thread opening the store
  // while another replica's intake was inserting deadlocked with it (seen in the replicas test).
  await transaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`${schema}:schema`])
    if (!(await schemaIsCurrent(client, schema))) await client.query(schemaSql(schema))
  })
  const t = (name: string) => `${schema}.${name}`

  const toVersion = (row: Record<string, unknown> | undefined): VersionRecord | null =>
    row
      ? {
          version: row.version as number,
          parent: row.parent as number | null,
          createdAt: row.created_at as string,
          manifest: row.manifest as VersionRecord['manifest'],
          metrics: row.metrics as Record<string, number>,
        }
      : null
  const toUpdate = (row: Record<string, unknown>): StoredUpdate => ({
    key: row.key as string,
    clientId: row.client_id as string,
    baseVersion: row.base_version as number,
    acceptedAtVersion: row.accepted_at_version as number,
    slice: Number(row.slice),
    body: new Uint8Array(row.body as Buffer),
    receivedAtMs: Number(row.received_at_ms),
    score: {
      cases: row.scored_cases as number,
      hits20: row.hits20 as number,
      reciprocalRank20: row.rr20 as number,
    },
  })
  const insertVersion = (client: pg.PoolClient | pg.Pool, r: VersionRecord) =>
    client.query(
      `INSERT INTO ${t('versions')} (version, parent, created_at, manifest, metrics) VALUES ($1, $2, $3, $4, $5)`,
      [r.version, r.parent, r.createdAt, JSON.stringify(r.manifest), JSON.stringify(r.metrics)],
    )
  const setPointer = (client: pg.PoolClient | pg.Pool, version: number) =>
    client.query(
      `INSERT INTO ${t('pointer')} (name, version) VALUES ('current', $1)
       ON CONFLICT (name) DO UPDATE SET version = excluded.version`,
      [version],
    )

  return {
    kind: 'postgres',
    config: { kind: 'postgres', connectionString: options.connectionString, schema },
    async current() {
      const { rows } = await pool.query(
        `SELECT v.* FROM ${t('pointer')} p JOIN ${t('versions')} v ON v.version = p.version WHERE p.name = 'current'`,
      )
      return toVersion(rows[0])
    },
    async version(n) {
      const { rows } = await pool.query(`SELECT * FROM ${t('versions')} WHERE version = $1`, [n])
      return toVersion(rows[0])
    },
    async versions() {
      const { rows } = await pool.query(`SELECT * FROM ${t('versions')} ORDER BY version`)
      return rows.map((r) => toVersion(r)!)
    },
    async addVersion(record) {
      await insertVersion(pool, record)
    },
    async recordMetrics(n, metrics) {
      const { rowCount } = await pool.query(
        `UPDATE ${t('versions')} SET metrics = metrics || $2::jsonb WHERE version = $1`,
        [n, JSON.stringify(metrics)],
      )
      return rowCount === 1
    },
    async setCurrent(n) {
      const { rowCount } = await pool.query(`SELECT 1 FROM ${t('versions')} WHERE version = $1`, [
        n,
      ])
      if (!rowCount) return false
      await setPointer(pool, n)
      return true
    },
    async setting(name) {
      const { rows } = await pool.query(`SELECT value FROM ${t('settings')} WHERE name = $1`, [
        name,
      ])
      return rows[0] ? (rows[0].value as string) : null
    },
    async putSetting(name, value) {
      await pool.query(
        `INSERT INTO ${t('settings')} (name, value) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value`,
        [name, value],
      )
    },
    async settingOrInit(name, value) {
      await pool.query(
        `INSERT INTO ${t('settings')} (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
        [name, value],
      )
      const { rows } = await pool.query(`SELECT value FROM ${t('settings')} WHERE name = $1`, [
        name,
      ])
      return rows[0].value as string
    },
    async replaceSetting(name, expected, value) {
      const { rowCount } =
        expected === null
          ? await pool.query(
              `INSERT INTO ${t('settings')} (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
              [name, value],
            )
          : await pool.query(
              `UPDATE ${t('settings')} SET value = $1 WHERE name = $2 AND value = $3`,
              [value, name, expected],
            )
      return rowCount === 1
    },
    async putArtifact(sha256, bytes) {
      await pool.query(
        `INSERT INTO ${t('artifacts')} (sha256, bytes) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
        [sha256, Buffer.from(bytes)],
      )
    },
    async artifact(sha256) {
      const { rows } = await pool.query(`SELECT bytes FROM ${t('artifacts')} WHERE sha256 = $1`, [
        sha256,
      ])
      return rows[0] ? new Uint8Array(rows[0].bytes as Buffer) : null
    },
    async deleteArtifacts(sha256s) {
      if (sha256s.length === 0) return
      await pool.query(`DELETE FROM ${t('artifacts')} WHERE sha256 = ANY($1::text[])`, [
        [...sha256s],
      ])
    },
    async accept(u): Promise<AcceptOutcome> {
      return transaction(pool, async (client) => {
        // Replicas accepting for one client at once take turns, so P15's check below holds.
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [
          `${schema}:client:${u.clientId}`,
        ])
        const known = await client.query(`SELECT 1 FROM ${t('updates')} WHERE key = $1`, [u.key])
        if (known.rowCount) return 'duplicate'
        // P15: one update of a client in the buffer, whatever versions were published meanwhile.
        const buffered = await client.query(
          `SELECT 1 FROM ${t('updates')} WHERE client_id = $1 AND consumed_by IS NULL`,
          [u.clientId],
        )
        if (buffered.rowCount) return 'client-limit'
        await client.query(
          `INSERT INTO ${t('updates')} (key, client_id, base_version, accepted_at_version, slice, examples, weight, body, received_at_ms, scored_cases, hits20, rr20)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
          [
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
            u.score.cases,
            u.score.hits20,
            u.score.reciprocalRank20,
          ],
        )
        return 'accepted'
      })
    },
    async hasUpdate(key) {
      const { rowCount } = await pool.query(`SELECT 1 FROM ${t('updates')} WHERE key = $1`, [key])
      return rowCount === 1
    },
    async buffered() {
      const { rows } = await pool.query(
        `SELECT * FROM ${t('updates')} WHERE consumed_by IS NULL ORDER BY seq`,
      )
      return rows.map(toUpdate)
    },
    async bufferStats() {
      const { rows } = await pool.query(
        `SELECT COUNT(*)::int AS n, MIN(received_at_ms) AS first FROM ${t('updates')} WHERE consumed_by IS NULL`,
      )
      return {
        updates: rows[0].n as number,
        firstAtMs: rows[0].first === null ? null : Number(rows[0].first),
      }
    },
    async acceptedCount() {
      const { rows } = await pool.query(`SELECT COUNT(*)::int AS n FROM ${t('updates')}`)
      return rows[0].n as number
    },
    async publish({ record, consumed, ledger, makeCurrent }): Promise<PublishOutcome> {
      try {
        return await transaction(pool, async (client) => {
          const { rows } = await client.query(
            'SELECT pg_try_advisory_xact_lock(hashtext($1)) AS got',
            [`${schema}:publisher`],
          )
          if (!rows[0].got) throw new Conflict()
          const exists = await client.query(`SELECT 1 FROM ${t('versions')} WHERE version = $1`, [
            record.version,
          ])
          if (exists.rowCount) throw new Conflict()
          const marked = await client.query(
            // Bodies go with it (as in sqlite-store.ts): the version holds their sum now.
            `UPDATE ${t('updates')} SET consumed_by = $1, body = ''::bytea WHERE key = ANY($2) AND consumed_by IS NULL`,
            [record.version, consumed],
          )
          // An update consumed already (or unknown) would be counted twice: undo everything.
          if (
            marked.rowCount !== new Set(consumed).size ||
            consumed.length !== new Set(consumed).size
          ) {
            throw new Conflict()
          }
          await insertVersion(client, record)
          if (makeCurrent !== false) await setPointer(client, record.version)
          if (ledger) {
            await client.query(
              `INSERT INTO ${t('ledger')} (version, noise_multiplier, clip_norm, updates) VALUES ($1, $2, $3, $4)`,
              [ledger.version, ledger.noiseMultiplier, ledger.clipNorm, ledger.updates],
            )
          }
          return 'published' as const
        })
      } catch (error) {
        if (error instanceof Conflict) return 'conflict'
        throw error
      }
    },
    async deviceScores() {
      const { rows } = await pool.query(
        `SELECT base_version, COUNT(*) AS updates, SUM(scored_cases) AS cases, SUM(hits20) AS hits20,
                SUM(rr20) AS rr20
         FROM ${t('updates')} GROUP BY base_version ORDER BY base_version`,
      )
      // COUNT and SUM of integers come back as bigint strings.
      return rows.map((r) => ({
        version: r.base_version as number,
        updates: Number(r.updates),
        cases: Number(r.cases),
        hits20: Number(r.hits20),
        reciprocalRank20: Number(r.rr20),
      }))
    },
    async ledger() {
      const { rows } = await pool.query(`SELECT * FROM ${t('ledger')} ORDER BY version`)
      return rows.map((r): LedgerEntry => ({
        version: r.version,
        noiseMultiplier: r.noise_multiplier,
        clipNorm: r.clip_norm,
        updates: r.updates,
      }))
    },
    ...postgresOutcomes(pool, schema, (work) => transaction(pool, work)),
    async close() {
      await pool.end()
    },
  }
}

export async function transaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    const result = await work(client)
    await client.query('COMMIT')
    return result
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw error
  } finally {
    client.release()
  }
}
