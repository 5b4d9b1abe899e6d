// The worker's behaviour behind the comlink surface (api.ts): consent gates storage, a release
// is synced and the backend chosen by measurement, recommendations read the stored session, and
// local fine-tuning runs in time slices when the shopper pauses, in one tab at a time.
import * as tf from '@tensorflow/tfjs-core'
import { validateTrackEvent } from '../../shared/events'
import type {
  BackendName,
  BackendProbe,
  RecommendRequest,
  RecommendResponse,
  WorkerStatus,
} from '../../shared/protocol'
import { decodeWeights, encodeWeights } from '../../shared/weights-codec'
import type { PocketrecWorkerApi, WorkerConfig } from './api'
import { obtainClientId, type Solution } from './federated/client-id'
import { prepareUpload } from './federated/prepare-upload'
import { createLocalTrainer } from './federated/train-local'
import { drainOutbox, requestToken, type UploaderDeps } from './federated/uploader'
import { runWithTrainingLock, type TrainingLocks } from './federated/training-lock'
import { probeBackends, type BackendLoader } from './backend-probe'
import type { GruModel } from '../../model/gru-model'
import { exportModelWeights, importModelWeights } from '../../model/model-weights'
import { createRecommender, type Recommender } from './recommend/recommend'
import { deleteDatabase, openStorage, type Release, type Storage } from './storage'
import { syncRelease } from './sync-release'

const MAX_LOSSES = 300
/** The shopper paused this long after an event: a good moment to fine-tune. */
const TRAIN_AFTER_IDLE_MS = 1500
const ALL_BACKENDS: BackendName[] = ['webgpu', 'webgl', 'wasm', 'cpu']

function workerError(name: string, message: string): Error {
  return Object.assign(new Error(message), { name })
}

export interface WorkerEnvironment {
  /** Registers each backend on demand; the wasm loader also points tfjs at its .wasm files. */
  loaders: Partial<Record<BackendName, BackendLoader>>
  /** Why a backend is ruled out before loading it (software GPU adapters), or null. */
  precheck?: (name: BackendName) => Promise<string | null>
  fetch?: typeof fetch
  now?: () => number
  /** Web Locks for one trainer across tabs; defaults to `navigator.locks`, null for none. */
  locks?: TrainingLocks | null
  /**
   * Resolves with a reason if the active backend's device is lost (a WebGPU device can vanish
   * with a driver reset); the worker then drops that backend and reloads the weights elsewhere.
   */
  watchDeviceLoss?: (backend: BackendName) => Promise<string> | null
}

interface Runtime {
  /** Where the release came from; the federation routes are /v1/… on its origin. */
  manifestUrl: URL
  release: Release
  model: GruModel
  recommender: Recommender
}

export function createWorkerApiWith(env: WorkerEnvironment): PocketrecWorkerApi {
  const now = env.now ?? (() => Date.now())
  let config: WorkerConfig | null = null
  let consent = false
  let storage: Storage | null = null
  let runtime: Runtime | null = null
  let starting: Promise<Runtime> | null = null
  let backend: BackendName | null = null
  let backendReason = 'not chosen yet'
  let probes: BackendProbe[] = []
  const training = {
    state: 'idle' as WorkerStatus['training']['state'],
    steps: 0,
    losses: [] as number[],
  }
  let trainTimer: ReturnType<typeof setTimeout> | undefined
  let trainAbort: AbortController | null = null
  /** Stops a client id's proof of work (P21) when consent is withdrawn. */
  let shareAbort: AbortController | null = null
  /** A solved challenge the server could not take yet (new ids rationed): sent again later. */
  const keptSolution: { solution?: Solution } = {}
  /** Backends that failed at run time (device lost): never probed again in this worker. */
  const lost = new Set<BackendName>()

  function requireConsent(): Storage {
    if (!consent || !storage) {
      throw workerError(
        'ConsentRequiredError',
        'expected consent before storing or reading shopper data',
      )
    }
    return storage
  }

  async function start(): Promise<Runtime> {
    if (!config) throw workerError('InvalidRequestError', 'expected init() before use')
    const page = typeof location !== 'undefined' ? location.href : undefined
    const manifestUrl = new URL('artifacts/manifest.json', new URL(config.endpoint, page))
    const release = await syncRelease(manifestUrl, storage, env.fetch ?? fetch.bind(globalThis))
    const weights = decodeWeights(release.modelBytes)
    const nItems = Number(weights.meta.nItems)
    const dim = Number(weights.meta.embedDim)
    // The probe times what a recommendation costs: one session vector against every item.
    const table = tf.randomNormal([dim, nItems])
    const query = tf.randomNormal([1, dim])
    let result
    try {
      result = await probeBackends({
        candidates: (config.backend ? [config.backend] : ALL_BACKENDS).filter((b) => !lost.has(b)),
        loaders: env.loaders,
        precheck: config.backend ? undefined : env.precheck,
        benchmark: async () => {
          const scores = tf.tidy(() => tf.matMul(query, table))
          await scores.data()
          scores.dispose()
        },
      })
    } finally {
      table.dispose()
      query.dispose()
    }
    backend = result.backend
    backendReason = result.reason
    probes = result.probes
    // Fine-tuned weights are used only on top of the release they were derived from.
    const local = await storage?.artifacts.loadLocalWeights()
    const file =
      local && local.baseVersion === release.manifest.version ? decodeWeights(local.bytes) : weights
    if (local && file !== weights) training.steps = local.steps
    const model = importModelWeights(file)
    const recommender = createRecommender({
      model,
      modelVersion: release.manifest.version + (file !== weights ? '+local' : ''),
      catalogue: release.catalogue,
      pools: release.pools,
      rules: release.rules,
    })
    runtime = { manifestUrl, release, model, recommender }
    const chosen = result.backend
    env.watchDeviceLoss?.(chosen)?.then((reason) => {
      if (runtime?.model !== model) return
      lost.add(chosen)
      stopWork()
      backend = null
      backendReason = `${chosen} device lost (${reason}): choosing again`
      // The release is in IndexedDB (or downloads again): weights come back on the next backend.
      void ready()
        .then(() => {
          backendReason = `${chosen} device lost (${reason}); ${backendReason}`
        })
        .catch(() => {})
    })
    return runtime
  }

  function ready(): Promise<Runtime> {
    if (runtime) return Promise.resolve(runtime)
    starting ??= start().catch((error: unknown) => {
      starting = null
      throw error
    })
    return starting
  }

  /** The recent sessions as model rows, oldest first, with their stored ids. */
  async function sessionsAsIndices(
    rt: Runtime,
    store: Storage,
  ): Promise<Array<{ id: number; items: Int32Array }>> {
    const byId = new Map(rt.release.catalogue.items.map((item) => [item.id, item.index]))
    const sessions = await store.events.recentSessions(20)
    return sessions
      .reverse() // oldest first
      .map((s) => ({
        id: s.id,
        items: Int32Array.from(s.productIds.map((id) => byId.get(id) ?? -1).filter((i) => i >= 0)),
      }))
      .filter((s) => s.items.length >= 2)
  }

  async function trainNow(): Promise<void> {
    const store = storage
    if (!consent || !store) return
    const rt = await ready()
    const recent = await sessionsAsIndices(rt, store)
    const sessions = recent.map((s) => s.items)
    if (sessions.length === 0) return
    const run = async () => {
      training.state = 'training'
      trainAbort = new AbortController()
      // The shop's tuned rate when its manifest has one (an absent key keeps the default).
      const tuned = rt.release.manifest.localTraining
      const result = await createLocalTrainer(rt.model, { ...tuned }).train(sessions, {
        signal: trainAbort.signal,
        onStep: (progress) => {
          training.steps += 1
          training.losses.push(progress.loss)
          if (training.losses.length > MAX_LOSSES) training.losses.shift()
        },
      })
      trainAbort = null
      training.state = 'idle'
      if (result.changed && consent && storage === store) {
        rt.recommender.refresh()
        const bytes = encodeWeights(await exportModelWeights(rt.model), { dtype: 'float16' })
        await store.artifacts.saveLocalWeights({
          baseVersion: rt.release.manifest.version,
          bytes,
          steps: training.steps,
        })
      }
      // Federated learning is best effort: a failure here never costs the shopper anything.
      await shareUpdate(rt, store, recent).catch(() => {})
    }
    training.state = 'waiting-for-lock'
    // Another tab holding the lock trains on the same database: this one need not.
    const outcome = await runWithTrainingLock(run, { locks: env.locks })
    if (outcome.status === 'held-elsewhere') training.state = 'idle'
  }

  /**
   * When the release takes part in federated learning: an update trained from the global weights
   * on these sessions, queued in the outbox, then the outbox sent (PROTOCOL.md P7–P12).
   */
  async function shareUpdate(
    rt: Runtime,
    store: Storage,
    recent: Array<{ id: number; items: Int32Array }>,
  ): Promise<void> {
    const federation = rt.release.manifest.federation
    if (!federation || !config) return
    const http = env.fetch ?? fetch.bind(globalThis)
    shareAbort = new AbortController()
    const ids = {
      fetch: http,
      manifestUrl: rt.manifestUrl,
      siteKey: config.site,
      store: store.meta,
      // The work runs in this worker's slices, like training: recommend calls go on meanwhile.
      work: { signal: shareAbort.signal },
      kept: keptSolution,
    }
    const uploader: UploaderDeps = {
      fetch: http,
      manifestUrl: rt.manifestUrl,
      siteKey: config.site,
      clientId: (renew) => obtainClientId(ids, renew),
      outbox: store.outbox,
    }
    const baseVersion = Number(rt.release.manifest.version.replace(/^v/, ''))
    // The server takes one update per device per version (P15): a second one would be trained
    // for nothing. Later runs on this version only retry what the outbox still holds.
    const alreadySent = (await store.meta.loadLastUpdateVersion()) === rt.release.manifest.version
    const token = alreadySent ? null : await requestToken(uploader, baseVersion)
    if (token?.ok) {
      const queued = await prepareUpload({
        modelBytes: rt.release.modelBytes,
        manifestUrl: rt.manifestUrl,
        sessions: recent.map((s) => s.items),
        federation,
        token: token.answer,
        baseVersion,
      })
      if (!queued || !consent || storage !== store) return
      await store.meta.saveLastUpdateVersion(rt.release.manifest.version)
      await store.outbox.enqueue({ ...queued, baseVersion: rt.release.manifest.version })
    }
    // The token the update was trained for (its slice) is sent with it: one request less.
    await drainOutbox(uploader, token?.ok ? token.answer : undefined)
  }

  function scheduleTraining() {
    clearTimeout(trainTimer)
    trainTimer = setTimeout(() => {
      trainNow().catch(() => {
        training.state = 'idle'
      })
    }, TRAIN_AFTER_IDLE_MS)
  }

  function stopWork() {
    clearTimeout(trainTimer)
    trainAbort?.abort()
    shareAbort?.abort()
    delete keptSolution.solution
    try {
      runtime?.recommender.dispose()
      runtime?.model.dispose()
    } catch {
      // A lost device cannot free its buffers; dropping the references is all that is left.
    }
    runtime = null
    starting = null
  }

  return {
    async init(next) {
      if (typeof next?.site !== 'string' || typeof next.endpoint !== 'string') {
        throw workerError(
          'InvalidRequestError',
          `expected { site, endpoint } strings, got ${JSON.stringify(next)}`,
        )
      }
      config = { ...next }
      return this.status()
    },

    async setConsent(granted) {
      if (granted === consent) return
      if (!granted) {
        consent = false
        stopWork()
        const store = storage
        storage = null
        await (store ? store.forget() : deleteDatabase())
        return
      }
      storage = await openStorage({ now })
      await storage.meta.saveConsent(true)
      consent = true
      void ready().catch(() => {
        // Reported through status() and the next recommend call.
      })
    },

    async track(raw) {
      const store = requireConsent()
      const checked = validateTrackEvent(raw)
      if (!checked.ok) return { status: 'rejected', error: checked.error }
      await store.events.append(checked.event)
      scheduleTraining()
      return { status: 'stored' }
    },

    async recommend(request: RecommendRequest): Promise<RecommendResponse> {
      const store = requireConsent()
      const rt = await ready()
      const session = await store.events.currentSession()
      const days = rt.release.rules.excludePurchasedDays
      const purchased = await store.events.purchasedSince(now() - days * 86_400_000)
      return rt.recommender.recommend(request, {
        sessionProductIds: session?.productIds ?? [],
        // The store answers newest first; the recommender reads every list oldest first.
        recentlyViewed: (await store.events.recentlyViewed(20)).reverse(),
        cartProductIds: (await store.events.cartItems()).map((item) => item.productId),
        // purchasedSince already applied the rules' window: each of these counts as recent.
        purchases: purchased.map((productId) => ({ productId, timestamp: now() })),
      })
    },

    async status() {
      const stats = storage ? await storage.stats().catch(() => null) : null
      return {
        consent,
        backend,
        backendReason,
        probes,
        modelVersion: runtime?.recommender ? runtime.release.manifest.version : null,
        events: stats?.events ?? 0,
        sessions: stats?.sessions ?? 0,
        training: {
          state: consent ? training.state : 'disabled',
          steps: training.steps,
          losses: training.losses.slice(),
        },
        recallIndex: runtime?.recommender.recallIndex() ?? null,
      }
    },

    async forget() {
      consent = false
      stopWork()
      const store = storage
      storage = null
      await (store ? store.forget() : deleteDatabase())
      training.steps = 0
      training.losses = []
    },
  }
}
