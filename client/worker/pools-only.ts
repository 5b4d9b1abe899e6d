// The recommender for a page that lets no worker start (CSP worker-src): it runs on the page's
// own thread, so it runs no model and loads no tfjs or WebAssembly. It fetches the pools, the
// catalogue and the rules (verified like every artifact), answers from the pools in their order
// under the shop's rules, and stores nothing; status().error says why it is all there is.
// Built on its own (`pocketrec-pools.js`), a few KB, imported by the tag only when it needs it.
import { own } from '../../shared/own'
import type {
  CandidatePools,
  Catalogue,
  RecallSource,
  RecommendRequest,
  RecommendResponse,
  RerankRules,
  StatusError,
  WorkerStatus,
} from '../../shared/protocol'
import {
  validateCandidatePools,
  validateCatalogue,
  validateModelManifest,
  validateRerankRules,
} from '../../shared/artifacts'
import type { PocketrecWorkerApi, WorkerConfig } from './api'
import { explainFetchFailures, type ViolationScope } from './fetch-failure'
import { indexCatalogue, type CatalogueLookup } from './recommend/catalogue-lookup'
import { InvalidRequestError, validateRecommendRequest } from './recommend/validate-request'
import { scoreByOrder } from './recommend/rank'
import { rerankCandidates } from './recommend/rerank'
import type { Candidate } from './recommend/recall'
import { fetchArtifact, parseJson, ReleaseError } from './sync-release'
import { PocketrecError } from '../../shared/errors'

/** Every database the worker creates starts with this (client/worker/storage). */
const DATABASE_PREFIX = 'pocketrec'
/** Candidates drawn from the pools before the rules filter them (recall.ts's total). */
const CANDIDATES = 300

interface PoolsRelease {
  version: string
  lookup: CatalogueLookup
  pools: CandidatePools
  rules: RerankRules
}

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
  let loading: Promise<PoolsRelease> | null = null
  let release: PoolsRelease | null = null
  let failure: StatusError | null = null

  function load(): Promise<PoolsRelease> {
    if (!config) throw new InvalidRequestError('E_CONFIG', 'expected init() before use')
    const page = globalThis.location?.href
    const manifestUrl = new URL('artifacts/manifest.json', new URL(config.endpoint, page))
    loading ??= fetchPoolsRelease(manifestUrl, http).then(
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
    return loading
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
      return recommendFromPools(await load(), request)
    },
    async ready() {
      if (consent) await load().catch(() => {})
      return api.status()
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

/** The manifest, then the catalogue, pools and rules it names; never the model. */
async function fetchPoolsRelease(manifestUrl: URL, http: typeof fetch): Promise<PoolsRelease> {
  const response = await http(manifestUrl, { cache: 'no-cache' })
  if (!response.ok) {
    throw new ReleaseError(`expected 200 for ${manifestUrl.pathname}, got ${response.status}`)
  }
  const manifest = parseJson(new TextEncoder().encode(await response.text()), validateModelManifest)
  const [catalogueBytes, poolsBytes, rulesBytes] = await Promise.all(
    [manifest.catalogue, manifest.pools, manifest.rules].map((ref) =>
      fetchArtifact(ref, manifestUrl, http),
    ),
  )
  // Without the model its row count is unknown: rows past the catalogue are never shown.
  const catalogue: Catalogue = parseJson(catalogueBytes!, (raw) => validateCatalogue(raw))
  const nItems = catalogue.items.reduce((n, item) => Math.max(n, item.index + 1), 0)
  return {
    version: manifest.version,
    lookup: indexCatalogue(catalogue.items, nItems),
    pools: parseJson(poolsBytes!, (raw) => validateCandidatePools(raw)),
    rules: parseJson(rulesBytes!, validateRerankRules),
  }
}

/**
 * A list in pool order under the rules: trending, popular and new items for `for-you` and
 * `trending`; the product's co-visited items, then its category, for the product scenarios;
 * nothing for `recently-viewed` (no history is kept).
 */
export function recommendFromPools(
  release: PoolsRelease,
  request: RecommendRequest,
): RecommendResponse {
  const started = performance.now()
  const { lookup, pools, rules } = release
  const { scenario, productId, limit } = validateRecommendRequest(request, lookup)
  const product = productId === undefined ? undefined : lookup.byId.get(productId)
  const lists: Array<[RecallSource, readonly number[]]> =
    scenario === 'recently-viewed'
      ? []
      : scenario === 'similar' || scenario === 'frequently-bought-together'
        ? [
            ['co-visitation', (product && own(pools.coVisitation, String(product.index))) || []],
            ['category', (product && own(pools.byCategory, product.category)) || []],
          ]
        : [
            ['trending', pools.trending],
            ['popular', pools.popular],
            ['new', pools.new],
          ]
  const candidates = mergePools(lists, lookup)
  const ranked = rerankCandidates({
    candidates,
    scores: scoreByOrder(candidates.length),
    scenario,
    limit,
    rules,
    lookup,
    exclusions: {
      currentIndex: product?.index,
      cartProductIds: [],
      purchases: [],
      nowMs: Date.now(),
    },
  })
  return {
    attributionId: Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) =>
      b.toString(16).padStart(2, '0'),
    ).join(''),
    scenario,
    items: ranked.map(({ index, source, score }) => {
      const { id, name, category, price } = lookup.byIndex[index]!
      return { productId: id, name, category, price, score, source }
    }),
    modelVersion: `${release.version} (pools only)`,
    backend: 'none',
    latencyMs: performance.now() - started,
    coldStart: scenario === 'for-you',
  }
}

/** The lists in order, each item once (its first source), rows with a catalogue entry only. */
function mergePools(
  lists: Array<[RecallSource, readonly number[]]>,
  lookup: CatalogueLookup,
): Candidate[] {
  const seen = new Set<number>()
  const candidates: Candidate[] = []
  for (const [source, indices] of lists) {
    for (const index of indices) {
      if (candidates.length >= CANDIDATES) return candidates
      if (seen.has(index) || lookup.byIndex[index] === undefined) continue
      seen.add(index)
      candidates.push({ index, source })
    }
  }
  return candidates
}
