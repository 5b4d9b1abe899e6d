// Opens the store a StoreConfig names. The server's main thread and its job thread (server/jobs/)
// each open their own connection to the same SQLite file or PostgreSQL schema this way.
import { openPostgresStore } from './postgres-store'
import { openSqliteStore } from './sqlite-store'
import type { FederationStore, StoreConfig } from './store'

export async function openStore(config: StoreConfig): Promise<FederationStore> {
  return config.kind === 'sqlite'
    ? openSqliteStore(config.file)
    : openPostgresStore({ connectionString: config.connectionString, schema: config.schema })
}
