import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, describe, expect, it } from 'vitest'
import { openSqliteStore } from './sqlite-store'
import { storeContract, storedUpdate } from './store.contract'

const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-sqlite-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

storeContract(
  'SQLite',
  async (id) => openSqliteStore(path.join(dir, `${id}.db`)),
  async (id) => {
    const db = new Database(path.join(dir, `${id}.db`), { readonly: true })
    try {
      return (
        db
          .prepare(
            `SELECT (SELECT COALESCE(SUM(length(body)), 0) FROM updates)
                  + (SELECT COALESCE(SUM(length(body)), 0) FROM outcome_reports) AS n`,
          )
          .get() as { n: number }
      ).n
    } finally {
      db.close()
    }
  },
)

describe('an SQLite store written before device scores (P27)', () => {
  it('gains the score columns on open; its old updates count as unscored', async () => {
    const file = path.join(dir, 'before-p27.db')
    const old = new Database(file)
    old.exec(`CREATE TABLE updates (
      key TEXT PRIMARY KEY, client_id TEXT NOT NULL, base_version INTEGER NOT NULL,
      accepted_at_version INTEGER NOT NULL, slice INTEGER NOT NULL, examples INTEGER NOT NULL,
      weight REAL NOT NULL, body BLOB NOT NULL, received_at_ms INTEGER NOT NULL,
      consumed_by INTEGER, seq INTEGER NOT NULL)`)
    old
      .prepare('INSERT INTO updates VALUES (?, ?, 1, 1, 3, 12, 0.12, ?, 0, NULL, 1)')
      .run('old', 'client-old', Buffer.from([1]))
    old.close()
    const store = openSqliteStore(file)
    expect(await store.accept({ ...storedUpdate('new', 'client-new'), baseVersion: 1 })).toBe(
      'accepted',
    )
    expect(await store.deviceScores()).toEqual([
      { version: 1, updates: 2, cases: 3, hits20: 1, reciprocalRank20: 0.25 },
    ])
    await store.close()
  })
})
