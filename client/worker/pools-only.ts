// The recommender for a page that lets no worker start (CSP worker-src): it runs on the page's
// own thread, so it runs no model and loads no tfjs or WebAssembly. It fetches the pools and the
// rules, then the catalogue (verified like every artifact), and answers with the lists a first
// visit gets before its model arrives (recommend/pools-only.ts), the first ones from the pools
// alone (P2c), co-visitation shards fetched as needed; it stores nothing, and status().error says
// why it is all there is.
// Built on its own (`pocketrec-pools.js`), a few KB, imported by the tag only when it needs it.
import type { StatusError, WorkerStatus } from '../../shared/protocol'
import type { PocketrecWorkerApi, WorkerConfig } from './api'
import { createCoVisitationLoader, type CoVisitationLoader } from './co-visitation-shards'
import { explainFetchFailures, type ViolationScope } from './fetch-failure'
import {
  answersFromFirstItems,
  createPoolsRecommender,
  type PoolsRecommender,
} from './recommend/pools-only'
import { InvalidRequestError } from './recommend/validate-request'
import { decodeFirstLists, fetchArtifact, fetchManifest, withCatalogue } from './sync-release'
import { PocketrecError } from '../../shared/errors'

/** Every database the worker creates starts with this (client/worker/storage). */
const DATABASE_PREFIX = 'pocketrec'
interface PoolsRelease {
  version: string
  recommender: PoolsRecommender
  coVisitation: CoVisitationLoader
}

/** The release as it arrives: `first` answers what answersFromFirstItems allows, `full` all. */
interface Loading {
  first: Promise<PoolsRelease>
  full: Promise<PoolsRelease>
}

/** Nothing is stored in this mode: every list is for a shopper without a history. */
const NO_HISTORY = { sessionProductIds: [], recentlyViewed: [], cartProductIds: [], purchases: [] }

/** What the module exports; the tag imports it as a type only (start-worker.ts). */
export interface PoolsOnlyModule {
  /**
   * Initialises the pools-only recommender with `config` and answers it as the tag's connection.
   * `failures`: how each worker failed to start; `refused`: the directives of the page's CSP
   * violations so far. Together they say why no worker runs (poolsOnlyReason).
   */
  startPoolsOnly(
    config: WorkerConfig,
    failures: string[],
    refused: string[],
  ): Promise<PoolsOnlyConnection>
}

/** The loader's WorkerConnection in pools-only mode. */
export interface PoolsOnlyConnection {
  api: PocketrecWorkerApi
  mode: 'pools-only'
  status: WorkerStatus
  /** Nothing runs between calls; what was loaded is dropped. */
  terminate(): void
}

/** Starts `api` as the tag's connection (start-worker.ts). */
export async function connectPoolsOnly(
  api: PocketrecWorkerApi,
  config: WorkerConfig,
): Promise<PoolsOnlyConnection> {
  const status = await api.init(config)
  return { api, mode: 'pools-only', status, terminate: () => void api.setConsent(false) }
}

/** E_WORKER_BLOCKED where the page's CSP refused a worker (worker-src), else E_WORKER_START. */
export function poolsOnlyReason(failures: string[], refused: string[]): StatusError {
  const blocked = refused.includes('worker-src')
  return {
    code: blocked ? 'E_WORKER_BLOCKED' : 'E_WORKER_START',
    message:
      `no worker could start (${failures.join('; ')})` +
      (blocked
        ? ": the page's CSP worker-src allows neither the worker's URL nor blob:"
        : // A blob worker's own import refused by the CSP it inherits is reported inside it only.
          "; under a CSP, worker-src must list the worker's origin as well as blob:") +
      ': lists come from the pools, without the model',
  }
}

/** The page's side: where CSP violations are reported, and fetch (injected in tests). */
export interface PoolsOnlyEnv {
  policyEvents?: ViolationScope
  fetch?: typeof fetch
  indexedDB?: Pick<IDBFactory, 'databases' | 'deleteDatabase'>
}

/** The pools-only recommender, behind the worker's API so the tag treats it alike. */
export function createPoolsOnlyApiWith(why: StatusError, env: PoolsOnlyEnv): PocketrecWorkerApi {
  const http = explainFetchFailures(env.policyEvents)(env.fetch ?? fetch.bind(globalThis))
  let config: WorkerConfig | null = null
  let consent = false
  let loading: Loading | null = null
  let release: PoolsRelease | null = null
  let failure: StatusError | null = null

  function start(manifestUrl: URL): Loading {
    let announce: (first: PoolsRelease) => void = () => {}
    const first = new Promise<PoolsRelease>((resolve) => (announce = resolve))
    const full = fetchPoolsRelease(manifestUrl, http, (lists) => {
      release ??= lists
      announce(lists)
    }).then(
      (loaded) => {
        failure = null
        return (release = loaded)
      },
      (error: unknown) => {
        loading = null
        failure = {
          code: error instanceof PocketrecError ? error.code : 'E_RELEASE',
          message: error instanceof Error ? error.message : String(error),
        }
        throw error
      },
    )
    const firstOrFull = Promise.race([first, full])
    // Its failure is full's, reported through status() and the calls that wait for it.
    firstOrFull.catch(() => {})
    return { first: firstOrFull, full }
  }

  /** The release, as far as `request` needs it (all of it when there is no request). */
  function load(request?: Parameters<PocketrecWorkerApi['recommend']>[0]): Promise<PoolsRelease> {
    if (!config) throw new InvalidRequestError('E_CONFIG', 'expected init() before use')
    const page = globalThis.location?.href
    const manifestUrl = new URL('artifacts/manifest.json', new URL(config.endpoint, page))
    loading ??= start(manifestUrl)
    // Nothing is stored in this mode: every list is for a shopper without a session.
    return request && answersFromFirstItems(request, 0) ? loading.first : loading.full
  }

  function requireConsent(): void {
    if (!consent) {
      const message = 'expected consent before recommending'
      throw new PocketrecError('ConsentRequiredError', 'E_CONSENT_REQUIRED', message)
    }
  }

  const api: PocketrecWorkerApi = {
    async init(next) {
      if (typeof next?.site !== 'string' || typeof next.endpoint !== 'string') {
        const got = JSON.stringify(next)
        throw new InvalidRequestError('E_CONFIG', `expected { site, endpoint } strings, got ${got}`)
      }
      config = { ...next }
      return api.status()
    },
    async setConsent(granted) {
      consent = granted
      if (!granted) loading = release = null
      else void load().catch(() => {})
    },
    async track() {
      requireConsent()
      return { status: 'rejected', error: `pools-only: nothing is stored (${why.code})` }
    },
    async recommend(request) {
      requireConsent()
      const loaded = await load(request)
      const product = typeof request?.productId === 'string' ? request.productId : undefined
      const index = product === undefined ? undefined : loaded.recommender.indexOf(product)
      if (index !== undefined) await loaded.coVisitation.ensure([index])
      return loaded.recommender.recommend(request, NO_HISTORY)
    },
    async ready() {
      if (consent) await load().catch(() => {})
      return api.status()
    },
    // The one later failure here is the pools' download (no uploads): known once it settled.
    async nextError(seen) {
      const { error } = await api.ready()
      return error!.message !== seen ? error! : new Promise<never>(() => {})
    },
    async status(): Promise<WorkerStatus> {
      return {
        consent,
        backend: null,
        backendReason: `pools-only, no model: ${why.message}`,
        probes: [],
        modelVersion: release && release.version,
        events: 0,
        sessions: 0,
        training: { state: 'disabled', steps: 0, losses: [] },
        recallIndex: null,
        lists: release && 'pools',
        error: failure ?? why,
      }
    },
    async forget() {
      consent = false
      loading = release = null
      const idb = env.indexedDB
      const names = idb ? (await idb.databases()).map((db) => db.name ?? '') : []
      for (const name of names.filter((n) => n.startsWith(DATABASE_PREFIX))) {
        idb!.deleteDatabase(name)
      }
    },
  }
  return api
}

/**
 * The manifest, the pools and rules it names (handed to `onFirst` when the pools carry their
 * first-list items, P2c), then its catalogue; never the model.
 */
async function fetchPoolsRelease(
  manifestUrl: URL,
  http: typeof fetch,
  onFirst: (first: PoolsRelease) => void,
): Promise<PoolsRelease> {
  const manifest = await fetchManifest(manifestUrl, http)
  const version = manifest.version
  const [pools, rules] = await Promise.all(
    [manifest.pools, manifest.rules].map((ref) => fetchArtifact(ref, manifestUrl, http)),
  )
  const first = await decodeFirstLists(manifest, pools!, rules!)
  if (first.items) {
    onFirst({
      version,
      recommender: createPoolsRecommender({ ...first, catalogue: first.items, version }),
      // Only lists without anchors are served before the catalogue: no shard is needed.
      coVisitation: { ensure: async () => {}, loaded: () => 0 },
    })
  }
  const shop = await withCatalogue(
    first,
    await fetchArtifact(manifest.catalogue, manifestUrl, http),
  )
  return {
    version,
    recommender: createPoolsRecommender({ ...shop, version }),
    // Without the model its row count is unknown: rows past the catalogue are never shown.
    coVisitation: createCoVisitationLoader({
      shards: manifest.coVisitation,
      pools: shop.pools,
      nItems: shop.catalogue.items.length,
      manifestUrl,
      fetch: http,
    }),
  }
}
