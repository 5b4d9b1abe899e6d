// The worker's runtime: the release synced from the configured endpoint (sync-release.ts), the
// backend chosen by measurement on this device (backend-probe.ts), and the model and recommender
// built on them. It starts on first use; when the backend's device is lost, the work on the model
// stops and the same release is loaded again on the next backend. On a first visit the lists come
// from the pools while the rest arrives (progressive start): the first ones from the pools' own
// items, then from the catalogue; TF.js and the model (model-part.ts, a dynamic import) come last.
import type {
  BackendName,
  BackendProbe,
  ManifestExperiment,
  RecommendRequest,
  RerankRules,
  StatusError,
  WorkerStatus,
} from '../../shared/protocol'
import type { GruModel } from '../../model/gru-model'
import type { WorkerConfig } from './api'
import { BACKEND_NAMES, isBackendName } from './backend-names'
import { explainFetchFailures } from './fetch-failure'
import type { Recommender } from './recommend/recommend'
import type { Release, Storage } from './storage'
import { syncRelease, type IndexedShop } from './sync-release'
import {
  answersFromFirstItems,
  createPoolsRecommender,
  type PoolsRecommender,
} from './recommend/pools-only'
import { createCoVisitationLoader, type CoVisitationLoader } from './co-visitation-shards'
import type { WorkerEnvironment } from './worker-environment'
import { InvalidRequestError } from './recommend/validate-request'
import { PocketrecError } from '../../shared/errors'

/** The model part (model-part.ts), loaded on demand: TF.js, the model, training. */
export type ModelPart = typeof import('./model-part')

export interface Runtime {
  /** Where the release came from; the federation routes are /v1/… on its origin. */
  manifestUrl: URL
  release: Release
  model: GruModel
  recommender: Recommender
  /** Co-visitation shards, fetched when a recommendation first needs one (P2b). */
  coVisitation: CoVisitationLoader
  /** The model part's functions (fine-tuning, the federated update) for the training schedule. */
  part: ModelPart
  /** The release's lists without the model (an experiment's `pools` arm, P30), built once. */
  poolsLists(): PoolsRecommender
}

/** What the runtime reads of the worker's state (at the moment it needs it) and tells it. */
export interface RuntimeDeps {
  /** The configuration from init(), or null before it. */
  config(): WorkerConfig | null
  /** The open storage, or null: the release is then downloaded without being kept. */
  storage(): Storage | null
  /** Fine-tuned weights of this release were loaded: the training steps they hold. */
  onLocalWeights(steps: number): void
  /** The device was lost: stop all other work on the model before the runtime drops it. */
  onDeviceLost(): void
}

/** Lists from the pools while the model of a first visit downloads (progressive start). */
export interface EarlyLists {
  recommender: PoolsRecommender
  coVisitation: CoVisitationLoader
  rules: RerankRules
  /** The release's A/B experiments (P30). */
  experiments: readonly ManifestExperiment[]
  /**
   * False while only the pools' first-list items are in (no catalogue yet): then only the lists
   * answersFromFirstItems allows are served from here.
   */
  complete: boolean
}

export interface WorkerRuntime {
  /** The runtime, started if none runs (one start, shared by concurrent callers). */
  ready(): Promise<Runtime>
  /**
   * Whatever can answer `request` (for a session of `sessionLength` items) first, starting the
   * runtime if none runs: the runtime, or the pools while a first download's model is still on
   * its way (before the catalogue, only for the lists answersFromFirstItems allows).
   */
  serving(request: RecommendRequest, sessionLength: number): Promise<Runtime | EarlyLists>
  /** What answers now: the model, the pools only, or nothing yet (status()). */
  stage(): 'model' | 'pools' | null
  /** The running runtime, or null; never starts one. */
  current(): Runtime | null
  /** Frees the model and forgets the runtime: the next ready() starts again. */
  stop(): void
  /** The backend in use and why, and what keeps the runtime from its best, as status() reports. */
  backendStatus(): Pick<WorkerStatus, 'backend' | 'backendReason' | 'probes' | 'error'>
}

export function createWorkerRuntime(
  env: Pick<
    WorkerEnvironment,
    'loaders' | 'precheck' | 'fetch' | 'watchDeviceLoss' | 'policyEvents' | 'wasmRefused'
  >,
  deps: RuntimeDeps,
): WorkerRuntime {
  let running: Runtime | null = null
  let starting: Promise<Runtime> | null = null
  let early: EarlyLists | null = null
  /** Requests waiting for early lists that can answer them (see serving). */
  let waiting: Array<{ complete: boolean; resolve(lists: EarlyLists): void }> = []
  let backend: BackendName | null = null
  let backendReason = 'not chosen yet'
  let probes: BackendProbe[] = []
  /** Backends that failed at run time (device lost): never probed again in this worker. */
  const lost = new Set<BackendName>()
  /** Why the last start failed (null once one succeeds), and a limit that stands (no wasm). */
  let failure: StatusError | null = null
  let limit: StatusError | null = null
  // Listening from the first moment: a violation is reported once, when it happens.
  const http = explainFetchFailures(env.policyEvents)(env.fetch ?? fetch.bind(globalThis))
  /** The model part, imported once: after the first lists on a first visit, else at once. */
  let part: Promise<ModelPart> | null = null
  const loadPart = () => (part ??= import('./model-part'))

  function announce(lists: EarlyLists): void {
    early = lists
    // The release is arriving: an earlier start's failure no longer stands.
    failure = null
    const served = waiting.filter((w) => lists.complete || !w.complete)
    waiting = waiting.filter((w) => !served.includes(w))
    for (const w of served) w.resolve(lists)
  }

  async function start(): Promise<Runtime> {
    const config = deps.config()
    if (!config) throw new InvalidRequestError('E_CONFIG', 'expected init() before use')
    const page = typeof location !== 'undefined' ? location.href : undefined
    const manifestUrl = new URL('artifacts/manifest.json', new URL(config.endpoint, page))
    let shopLoader: CoVisitationLoader | null = null
    const noShards = { ensure: async () => {}, loaded: () => 0 }
    const release = await syncRelease(manifestUrl, deps.storage(), http, {
      onFirstLists(first) {
        const version = first.manifest.version
        const recommender = createPoolsRecommender({ ...first, catalogue: first.items, version })
        // Only lists without anchors are served before the catalogue: no shard is needed.
        const experiments = first.manifest.experiments ?? []
        announce({
          recommender,
          coVisitation: noShards,
          rules: first.rules,
          experiments,
          complete: false,
        })
      },
      onShop(shop: IndexedShop) {
        shopLoader = createCoVisitationLoader({
          shards: shop.manifest.coVisitation,
          pools: shop.pools,
          // Without the model its row count is unknown: the catalogue's (ids are unique).
          nItems: shop.catalogue.items.length,
          manifestUrl,
          fetch: http,
        })
        const version = shop.manifest.version
        const recommender = createPoolsRecommender({ ...shop, version })
        const experiments = shop.manifest.experiments ?? []
        announce({
          recommender,
          coVisitation: shopLoader,
          rules: shop.rules,
          experiments,
          complete: true,
        })
        // Lists no longer wait for anything but the model: its code travels beside it.
        void loadPart().catch(() => {})
      },
    })
    const modelPart = await loadPart()
    const nItems = modelPart.modelItems(release.modelBytes)
    // Read after the download: a later init() decides the backend.
    const forced = deps.config()?.backend
    const chosen = isBackendName(forced) ? [forced] : BACKEND_NAMES
    let candidates = chosen.filter((b) => !lost.has(b))
    const wasmRefused = env.wasmRefused?.()
    if (wasmRefused) {
      // Still off the page's thread: cpu in this worker, even where the page forced wasm.
      limit = { code: 'E_WASM_BLOCKED', message: wasmRefused }
      candidates = candidates.filter((b) => b !== 'wasm')
      if (candidates.length === 0) candidates = ['cpu']
    }
    const local = await deps.storage()?.artifacts.loadLocalWeights()
    const loaded = await modelPart.loadModel(release, local, {
      candidates,
      loaders: env.loaders,
      precheck: forced ? undefined : env.precheck,
    })
    backend = loaded.probe.backend
    backendReason = loaded.probe.reason
    probes = loaded.probe.probes
    if (loaded.localSteps !== null) deps.onLocalWeights(loaded.localSteps)
    const { model, recommender } = loaded
    // The early lists' loader fills the same pools: shards it fetched are not fetched again.
    const coVisitation =
      shopLoader ??
      createCoVisitationLoader({
        shards: release.manifest.coVisitation,
        pools: release.pools,
        nItems,
        manifestUrl,
        fetch: http,
      })
    let pools: PoolsRecommender | null = null
    const poolsLists = () =>
      (pools ??= createPoolsRecommender({ ...release, version: release.manifest.version }))
    running = {
      manifestUrl,
      release,
      model,
      recommender,
      coVisitation,
      part: modelPart,
      poolsLists,
    }
    early = null
    // Who still waits for early lists has its answer from ready() (serving's race).
    waiting = []
    watchDeviceLoss(loaded.probe.backend, model)
    return running
  }

  function watchDeviceLoss(chosen: BackendName, model: GruModel): void {
    env.watchDeviceLoss?.(chosen)?.then((reason) => {
      if (running?.model !== model) return
      lost.add(chosen)
      deps.onDeviceLost()
      stop()
      backend = null
      backendReason = `${chosen} device lost (${reason}): choosing again`
      // The release is in IndexedDB (or downloads again): weights come back on the next backend.
      void ready()
        .then(() => {
          backendReason = `${chosen} device lost (${reason}); ${backendReason}`
        })
        .catch(() => {})
    })
  }

  function ready(): Promise<Runtime> {
    if (running) return Promise.resolve(running)
    starting ??= start().then(
      (started) => {
        failure = null
        return started
      },
      (error: unknown) => {
        starting = null
        failure = {
          code: error instanceof PocketrecError ? error.code : 'E_RELEASE',
          message: error instanceof Error ? error.message : String(error),
        }
        throw error
      },
    )
    return starting
  }

  function serving(request: RecommendRequest, sessionLength: number) {
    const complete = !answersFromFirstItems(request, sessionLength)
    if (running) return Promise.resolve(running)
    if (early && (early.complete || !complete)) return Promise.resolve(early)
    const lists = new Promise<EarlyLists>((resolve) => waiting.push({ complete, resolve }))
    return Promise.race([ready(), lists])
  }

  function stop(): void {
    try {
      running?.recommender.dispose()
      running?.model.dispose()
    } catch {
      // A lost device cannot free its buffers; dropping the references is all that is left.
    }
    running = null
    starting = null
    early = null
  }

  return {
    ready,
    serving,
    stage: () => (running ? 'model' : early ? 'pools' : null),
    current: () => running,
    stop,
    backendStatus: () => ({ backend, backendReason, probes, error: failure ?? limit }),
  }
}
