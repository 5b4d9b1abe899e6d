// The worker's runtime: the release synced from the configured endpoint (sync-release.ts), the
// backend chosen by measurement on this device (backend-probe.ts), and the model and recommender
// built on them. It starts on first use; when the backend's device is lost, the work on the model
// stops and the same release is loaded again on the next backend.
import * as tf from '@tensorflow/tfjs-core'
import type {
  BackendName,
  BackendProbe,
  RerankRules,
  StatusError,
  WorkerStatus,
} from '../../shared/protocol'
import { decodeWeights, type WeightsFile } from '../../shared/weights-codec'
import type { GruModel } from '../../model/gru-model'
import { importModelWeights } from '../../model/model-weights'
import type { WorkerConfig } from './api'
import { DEFAULT_LOCAL_TRAINER_OPTIONS } from './federated/train-local'
import {
  BACKEND_NAMES,
  isBackendName,
  probeBackends,
  type ProbeOptions,
  type ProbeResult,
} from './backend-probe'
import { explainFetchFailures } from './fetch-failure'
import { createRecommender, type Recommender } from './recommend/recommend'
import type { Release, Storage } from './storage'
import { syncRelease, type ShopArtifacts } from './sync-release'
import { createPoolsRecommender, type PoolsRecommender } from './recommend/pools-only'
import { createCoVisitationLoader, type CoVisitationLoader } from './co-visitation-shards'
import type { WorkerEnvironment } from './worker-environment'
import { InvalidRequestError } from './recommend/validate-request'
import { PocketrecError } from '../../shared/errors'

export interface Runtime {
  /** Where the release came from; the federation routes are /v1/… on its origin. */
  manifestUrl: URL
  release: Release
  model: GruModel
  recommender: Recommender
  /** Co-visitation shards, fetched when a recommendation first needs one (P2b). */
  coVisitation: CoVisitationLoader
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
}

export interface WorkerRuntime {
  /** The runtime, started if none runs (one start, shared by concurrent callers). */
  ready(): Promise<Runtime>
  /**
   * Whatever can answer first, starting the runtime if none runs: the runtime, or the pools
   * while a first download's model is still on its way.
   */
  serving(): Promise<Runtime | EarlyLists>
  /** What answers now: the model, the pools only, or nothing yet (status()). */
  stage(): 'model' | 'pools' | null
  /** The running runtime, or null; never starts one. */
  current(): Runtime | null
  /** Frees the model and forgets the runtime: the next ready() starts again. */
  stop(): void
  /** The backend in use and why, and what keeps the runtime from its best, as status() reports. */
  backendStatus(): Pick<WorkerStatus, 'backend' | 'backendReason' | 'probes' | 'error'>
}

/**
 * Probes the candidates on what the backend still runs: fine-tuning (recommend is plain JS over
 * the item table, item-table.ts). One sampled-softmax step's logits: a batch of session vectors
 * against its negatives. Sized by the trainer, not the catalogue, so the probe no longer grows the
 * WASM heap by a whole table (WASM memory never shrinks).
 */
async function probeOnTrainingCost(
  weights: WeightsFile,
  options: Omit<ProbeOptions, 'benchmark'>,
): Promise<ProbeResult> {
  const dim = Number(weights.meta.embedDim)
  const { batchSize, negatives } = DEFAULT_LOCAL_TRAINER_OPTIONS
  const rows = tf.randomNormal([dim, negatives + batchSize])
  const sessions = tf.randomNormal([batchSize, dim])
  try {
    return await probeBackends({
      ...options,
      benchmark: async () => {
        const logits = tf.tidy(() => tf.matMul(sessions, rows)) // [batch, negatives + batch]
        await logits.data()
        logits.dispose()
      },
    })
  } finally {
    rows.dispose()
    sessions.dispose()
  }
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
  let announceEarly: (lists: EarlyLists) => void = () => {}
  let earlyReady = new Promise<EarlyLists>((resolve) => (announceEarly = resolve))
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

  async function start(): Promise<Runtime> {
    const config = deps.config()
    if (!config) throw new InvalidRequestError('E_CONFIG', 'expected init() before use')
    const page = typeof location !== 'undefined' ? location.href : undefined
    const manifestUrl = new URL('artifacts/manifest.json', new URL(config.endpoint, page))
    let shopLoader: CoVisitationLoader | null = null
    const onShop = (shop: ShopArtifacts) => {
      shopLoader = createCoVisitationLoader({
        shards: shop.manifest.coVisitation,
        pools: shop.pools,
        // Without the model its row count is unknown: the catalogue's (ids are unique).
        nItems: shop.catalogue.items.length,
        manifestUrl,
        fetch: http,
      })
      const version = shop.manifest.version
      early = {
        recommender: createPoolsRecommender({ ...shop, version }),
        coVisitation: shopLoader,
        rules: shop.rules,
      }
      // The release is arriving: an earlier start's failure no longer stands.
      failure = null
      announceEarly(early)
    }
    const release = await syncRelease(manifestUrl, deps.storage(), http, onShop)
    const weights = decodeWeights(release.modelBytes)
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
    const result = await probeOnTrainingCost(weights, {
      candidates,
      loaders: env.loaders,
      precheck: forced ? undefined : env.precheck,
    })
    backend = result.backend
    backendReason = result.reason
    probes = result.probes
    // Fine-tuned weights are used only on top of the release they were derived from.
    const local = await deps.storage()?.artifacts.loadLocalWeights()
    const file =
      local && local.baseVersion === release.manifest.version ? decodeWeights(local.bytes) : weights
    if (local && file !== weights) deps.onLocalWeights(local.steps)
    const model = importModelWeights(file)
    const recommender = createRecommender({
      model,
      modelVersion: release.manifest.version + (file !== weights ? '+local' : ''),
      catalogue: release.catalogue,
      pools: release.pools,
      rules: release.rules,
    })
    // The early lists' loader fills the same pools: shards it fetched are not fetched again.
    const coVisitation =
      shopLoader ??
      createCoVisitationLoader({
        shards: release.manifest.coVisitation,
        pools: release.pools,
        nItems: model.config.nItems,
        manifestUrl,
        fetch: http,
      })
    running = { manifestUrl, release, model, recommender, coVisitation }
    early = null
    watchDeviceLoss(result.backend, model)
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

  function serving(): Promise<Runtime | EarlyLists> {
    if (running) return Promise.resolve(running)
    if (early) return Promise.resolve(early)
    return Promise.race([ready(), earlyReady])
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
    earlyReady = new Promise<EarlyLists>((resolve) => (announceEarly = resolve))
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
