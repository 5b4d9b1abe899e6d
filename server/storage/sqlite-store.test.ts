import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll } from 'vitest'
import { openSqliteStore } from './sqlite-store'
import { storeContract } from './store.contract'

const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-sqlite-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

storeContract('SQLite', async (id) => openSqliteStore(path.join(dir, `${id}.db`)))
