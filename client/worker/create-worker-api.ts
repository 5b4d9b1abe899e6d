// The worker's behaviour behind the comlink surface (api.ts), wiring only: consent gates storage,
// the runtime (worker-runtime.ts) syncs the release and picks the backend, recommendations read
// the stored session, and the training schedule (training-schedule.ts) fine-tunes when the
// shopper pauses, then runs the federated round (federated/round.ts).
import { engagementWeight, validateTrackEvent } from '../../shared/events'
import type { EventWeights, RecommendRequest, RecommendResponse } from '../../shared/protocol'
import type { PocketrecWorkerApi, WorkerConfig } from './api'
import { createFederatedRound } from './federated/round'
import { deleteDatabase, openStorage, type Storage } from './storage'
import type { StoredSession } from './storage/schema'
import { createTrainingSchedule } from './training-schedule'
import type { WorkerEnvironment } from './worker-environment'
import { PocketrecError } from '../../shared/errors'
import { createPageViews } from './recommend/page-views'
import { InvalidRequestError } from './recommend/validate-request'
import { BACKEND_NAMES, isBackendName } from './backend-names'
import { createWorkerRuntime, type ModelPart, type Runtime } from './worker-runtime'
import { explainFetchFailures } from './fetch-failure'
import { watchUploadRefusals } from './federated/upload-refusals'
import { helperRoute } from '../../shared/helper-url'
import { armsSuffix, createExperimentPlacer, type Placed } from './experiment-arms'
import { countEvent, countList, rollPeriod, type ExploredSlots } from './experiment-outcomes'
import { outcomePeriod } from '../../shared/outcome-counts'

export type { WorkerEnvironment } from './worker-environment'

export function createWorkerApiWith(env: WorkerEnvironment): PocketrecWorkerApi {
  const now = env.now ?? (() => Date.now())
  let config: WorkerConfig | null = null
  let consent = false
  let storage: Storage | null = null
  /** What each shelf of the last few page views shows (memory only, cleared with consent). */
  const pageViews = createPageViews()
  /** Places the device in experiments (P30), one call at a time per opened storage. */
  const placers = new WeakMap<Storage, ReturnType<typeof createExperimentPlacer>>()
  const experimentPlacer = (store: Storage) => {
    let placer = placers.get(store)
    if (!placer) placers.set(store, (placer = createExperimentPlacer(store.meta)))
    return placer
  }
  /** The fleet's exploration counts (P30f), asked for while an arm explores: the model part's. */
  let exploration: ReturnType<ModelPart['createExplorationTotals']> | undefined
  /** The storage while consent holds: training and the round check it again after each wait. */
  const consented = () => (consent ? storage : null)

  /** Callers of nextError(), woken to look again when the error may have changed. */
  const errorWatchers: Array<() => void> = []
  const errorMayHaveChanged = () => {
    for (const wake of errorWatchers.splice(0)) wake()
  }
  // Its own listener for violations: the runtime's explains the release downloads.
  const uploads = watchUploadRefusals(
    explainFetchFailures(env.policyEvents)(env.fetch ?? fetch.bind(globalThis)),
    () => {
      const rt = runtime.current()
      const helper = rt?.release.manifest.federation?.helper
      return helper === undefined ? null : helperRoute(helper, 'shares', rt!.manifestUrl).origin
    },
    errorMayHaveChanged,
  )

  const training = createTrainingSchedule({
    locks: env.locks,
    consented,
    ready: () => runtime.ready(),
    round: createFederatedRound({
      fetch: uploads.fetch,
      siteKey: () => config?.site ?? null,
      consented,
    }),
  })
  const runtime = createWorkerRuntime(env, {
    config: () => config,
    storage: () => storage,
    onLocalWeights: (steps) => training.restoreSteps(steps),
    onDeviceLost: () => training.stop(),
  })

  /** Draws with the fleet's counts, from the federation's server a release without one lacks. */
  function fleetDrawOf(rt: Runtime) {
    if (!rt.release.manifest.federation) return undefined
    exploration ??= rt.part.createExplorationTotals({
      fetch: env.fetch ?? fetch.bind(globalThis),
      now,
    })
    const totals = exploration.current(rt.manifestUrl)
    return totals && rt.part.fleetDraw(totals)
  }

  function requireConsent(): Storage {
    const store = consented()
    if (!store) {
      throw new PocketrecError(
        'ConsentRequiredError',
        'E_CONSENT_REQUIRED',
        'expected consent before storing or reading shopper data',
      )
    }
    return store
  }

  function stopWork() {
    training.stop()
    runtime.stop()
    pageViews.clear()
  }

  return {
    async init(next) {
      if (typeof next?.site !== 'string' || typeof next.endpoint !== 'string') {
        throw new InvalidRequestError(
          'E_CONFIG',
          `expected { site, endpoint } strings, got ${JSON.stringify(next)}`,
        )
      }
      config = { ...next }
      // A typo on the shop's tag must not break it: the worker probes as if it were absent.
      if (next.backend !== undefined && !isBackendName(next.backend)) {
        console.warn(
          `pocketrec: ignored backend "${next.backend}"; expected one of ${BACKEND_NAMES.join(', ')}`,
        )
        delete config.backend
      }
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
      void runtime
        .ready()
        .catch(() => {
          // Reported through status(), nextError() and the next recommend call.
        })
        .then(errorMayHaveChanged)
    },

    async track(raw) {
      const store = requireConsent()
      const checked = validateTrackEvent(raw)
      if (!checked.ok) return { status: 'rejected', error: checked.error }
      await store.events.append(checked.event)
      // What the event credits to the lists of the device's experiments (P30). Best effort: the
      // event is stored either way.
      await store.meta
        .updateOutcomes((state) => {
          // A day ended since the last count: its counts are closed first (P30c).
          const rolled = rollPeriod(state, outcomePeriod(now()))
          return countEvent(state, checked.event) || rolled
        })
        .catch(() => {})
      if (checked.event.event === 'Product Clicked') {
        // The click ends the product's demotion. Best effort: the event itself is stored, and a
        // failed reset only leaves the product demoted a while longer.
        await store.exposure.recordClicked(checked.event.properties.product_id).catch(() => {})
      }
      training.schedule()
      return { status: 'stored' }
    },

    async recommend(request: RecommendRequest): Promise<RecommendResponse> {
      const store = requireConsent()
      const session = await store.events.currentSession()
      const sessionProductIds = session?.productIds ?? []
      // The model's lists once it is in; before, on a first visit, the pools' (progressive start).
      const rt = await runtime.serving(request, sessionProductIds.length)
      const model = 'release' in rt
      const rules = model ? rt.release.rules : rt.rules
      // The device's arms (P30): an arm that serves the pools' lists does so with the model in.
      const experiments = (model ? rt.release.manifest.experiments : rt.experiments) ?? []
      // A storage failure here costs the list its arms, never the list.
      const placed = await experimentPlacer(store)(experiments).catch(() => [])
      const explorer = exploringArm(placed)
      const draw = explorer && model ? fleetDrawOf(rt) : undefined
      const pools = model && placed.some(({ arm }) => arm.lists === 'pools')
      const lists = pools ? rt.poolsLists() : rt.recommender
      const days = rules.excludePurchasedDays
      const purchased = await store.events.purchasedSince(now() - days * 86_400_000)
      // The store answers newest first; the recommender reads every list oldest first.
      const recentlyViewed = (await store.events.recentlyViewed(20)).reverse()
      // Co-visitation of the items this list can start from (the product on screen, the
      // session, the recently viewed), fetched in shards the first time one is needed.
      const named = [request?.productId, ...sessionProductIds, ...recentlyViewed]
      const indices = named.map((id) => (typeof id === 'string' ? lists.indexOf(id) : undefined))
      await rt.coVisitation.ensure(indices.filter((i) => i !== undefined))
      const response = await lists.recommend(request, {
        sessionProductIds,
        recentlyViewed,
        cartProductIds: (await store.events.cartItems()).map((item) => item.productId),
        // purchasedSince already applied the rules' window: each of these counts as recent.
        purchases: purchased.map((productId) => ({ productId, timestamp: now() })),
        pageViews,
        impressions: await store.exposure.impressions(),
        engaged: engagedIn(session, rules.eventWeights),
        // P30e: an arm that explores gives its share of the slots to new items.
        // P30f: its draws take the fleet's counts as their prior once the device has them.
        ...(explorer ? { explore: { share: explorer.arm.explore!, ...(draw && { draw }) } } : {}),
      })
      response.attributionId += armsSuffix(placed)
      if (placed.length > 0) {
        // Counted before the page has the list, so that a click on it always finds it.
        await store.meta
          .updateOutcomes((state) => {
            rollPeriod(state, outcomePeriod(now()))
            countList(state, placed, response.attributionId, response.scenario, exploredSlots(explorer, response)) // prettier-ignore
            return true
          })
          .catch(() => {})
      }
      // Each list the page is given is one impression of each of its items; recently viewed is
      // the shopper's own history, not a recommendation. Not awaited: the write transaction
      // starts now, so the next request's read already sees it.
      if (response.scenario !== 'recently-viewed') {
        store.exposure.recordShown(response.items.map((item) => item.productId)).catch(() => {})
      }
      return response
    },

    async status() {
      const stats = storage ? await storage.stats().catch(() => null) : null
      const running = runtime.current()
      const progress = training.progress()
      const backend = runtime.backendStatus()
      // A failed start outranks all; a refused upload outranks the lasting wasm limit, which was
      // reported (pocketrec:error) when the worker started.
      const failed = backend.error && backend.error.code !== 'E_WASM_BLOCKED'
      return {
        consent,
        ...backend,
        error: failed ? backend.error : (uploads.blocked() ?? backend.error),
        modelVersion: running?.recommender ? running.release.manifest.version : null,
        lists: runtime.stage(),
        events: stats?.events ?? 0,
        sessions: stats?.sessions ?? 0,
        training: {
          state: consent ? progress.state : 'disabled',
          steps: progress.steps,
          losses: progress.losses,
        },
        recallIndex: running?.recommender.recallIndex() ?? null,
      }
    },

    async ready() {
      if (consent) await runtime.ready().catch(() => {})
      return this.status()
    },

    async nextError(seen) {
      for (;;) {
        const { error } = await this.status()
        if (error && error.message !== seen) return error
        await new Promise<void>((wake) => errorWatchers.push(wake))
      }
    },

    async forget() {
      consent = false
      stopWork()
      const store = storage
      storage = null
      await (store ? store.forget() : deleteDatabase())
      training.resetProgress()
    },
  }
}

/** The device's arm with the largest exploration share, whose share its lists explore. */
function exploringArm(placed: readonly Placed[]): Placed | undefined {
  let explorer: Placed | undefined
  for (const p of placed) if ((p.arm.explore ?? 0) > (explorer?.arm.explore ?? 0)) explorer = p
  return explorer
}

/** The items a list's exploration slots showed, for the exploring arm's counts (P30f). */
function exploredSlots(
  explorer: Placed | undefined,
  response: RecommendResponse,
): ExploredSlots | undefined {
  const productIds = response.items.filter((i) => i.source === 'explore').map((i) => i.productId)
  return explorer && productIds.length > 0
    ? { experiment: explorer.experiment.id, arm: explorer.arm.name, productIds }
    : undefined
}

/**
 * P30d: this visit's products by their weight under the shop's event weights (what the shopper
 * did with each, how long they stayed), for the re-ranker; none without weights.
 */
function engagedIn(session: StoredSession | null, weights: EventWeights | undefined) {
  const engaged = new Map<string, number>()
  if (!weights) return engaged
  session?.productIds.forEach((id, i) => {
    const weight = engagementWeight(weights, session.strengths?.[i], session.dwell?.[i])
    if (weight > (engaged.get(id) ?? 0)) engaged.set(id, weight)
  })
  return engaged
}
