import pg from 'pg'
import { afterAll, beforeAll } from 'vitest'
import { dropSchemas, ensurePostgres, POSTGRES_URL } from '../../test/fixtures/postgres'
import { openPostgresStore } from './postgres-store'
import { storeContract } from './store.contract'

const schemas = new Set<string>()
beforeAll(async () => {
  await ensurePostgres()
}, 60_000)
afterAll(async () => {
  await dropSchemas([...schemas])
})

storeContract(
  'PostgreSQL',
  async (id) => {
    schemas.add(id)
    return openPostgresStore({ connectionString: POSTGRES_URL, schema: id })
  },
  async (id) => {
    const client = new pg.Client({ connectionString: POSTGRES_URL })
    await client.connect()
    try {
      const { rows } = await client.query(
        `SELECT (SELECT COALESCE(SUM(length(body)), 0) FROM ${id}.updates)
              + (SELECT COALESCE(SUM(length(body)), 0) FROM ${id}.outcome_reports) AS n`,
      )
      return Number(rows[0].n)
    } finally {
      await client.end()
    }
  },
)
