// Opens the helper store a HelperStoreConfig names (the routes' thread and the aggregation
// thread each open their own connection).
import type { HelperStore, HelperStoreConfig } from './helper-store'
import { openPostgresHelperStore } from './postgres-helper-store'
import { openSqliteHelperStore } from './sqlite-helper-store'

export async function openHelperStore(config: HelperStoreConfig): Promise<HelperStore> {
  return config.kind === 'sqlite'
    ? openSqliteHelperStore(config.file)
    : openPostgresHelperStore(config)
}
