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

storeContract('PostgreSQL', async (id) => {
  schemas.add(id)
  return openPostgresStore({ connectionString: POSTGRES_URL, schema: id })
})
