import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll } from 'vitest'
import { dropSchemas, ensurePostgres, POSTGRES_URL } from '../../test/fixtures/postgres'
import { helperStoreContract } from './helper-store.contract'
import { openPostgresHelperStore } from './postgres-helper-store'
import { openSqliteHelperStore } from './sqlite-helper-store'

const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-helper-'))
const schemas = new Set<string>()
beforeAll(async () => {
  await ensurePostgres()
}, 60_000)
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true })
  await dropSchemas([...schemas])
})

helperStoreContract('SQLite', async (id) => openSqliteHelperStore(path.join(dir, `${id}.db`)))
helperStoreContract('PostgreSQL', async (id) => {
  const schema = `${id}_${process.pid}`
  schemas.add(schema)
  return openPostgresHelperStore({ connectionString: POSTGRES_URL, schema })
})
