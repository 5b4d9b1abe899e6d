// The pools-only module's entry, built to pocketrec-pools.js: what the tag imports on the page
// when no worker can start (client/loader/start-worker.ts). Wiring only.
import {
  connectPoolsOnly,
  createPoolsOnlyApiWith,
  poolsOnlyReason,
  type PoolsOnlyModule,
} from './pools-only'

export const startPoolsOnly: PoolsOnlyModule['startPoolsOnly'] = (config, failures, refused) =>
  connectPoolsOnly(
    createPoolsOnlyApiWith(poolsOnlyReason(failures, refused), {
      policyEvents: window,
      indexedDB: window.indexedDB,
    }),
    config,
  )
