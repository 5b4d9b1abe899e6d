// recommend = encode-session → recall → rank → rerank, one file per stage, composed here
// top-down. A scenario only decides which recall runs and what the candidates are scored against.
import { own } from '../../../shared/own'
import * as tf from '@tensorflow/tfjs-core'
import type {
  CandidatePools,
  DeviceCatalogue,
  RecallIndexStatus,
  RecommendRequest,
  RecommendResponse,
  RerankRules,
  Scenario,
} from '../../../shared/protocol'
import type { GruModel } from '../../../model/gru-model'
import { indexCatalogue } from './catalogue-lookup'
import { encodeSession } from './encode-session'
import { readItemTable, type ItemTable } from './item-table'
import {
  buildNeighbourIndex,
  MIN_INDEXED_ITEMS,
  type NeighbourIndex,
  type NeighbourIndexOptions,
} from './neighbour-index'
import { rankCandidates, scoreByOrder, toProbabilities, type RankQuery } from './rank'
import {
  coVisitationOf,
  DEFAULT_RECALL_SIZES,
  recallForYou,
  recallFrequentlyBoughtTogether,
  recallHistory,
  recallSimilar,
  recallTrending,
  type Candidate,
  type RecallDeps,
  type RecallSizes,
} from './recall'
import { planExploration, type ExploreRequest } from './explore'
import { rerankOnPage, type PageViews } from './page-views'
import { createAttributionId, toRecommendedItems } from './response'
import { validateRecommendRequest } from './validate-request'
import { PocketrecError } from '../../../shared/errors'

/** What the event store knows about the shopper; every list is oldest first, as stored. */
export interface RecommendContext {
  /** Product ids of this visit's viewed, clicked and added events. */
  sessionProductIds: readonly string[]
  /** Product ids viewed across visits. */
  recentlyViewed: readonly string[]
  cartProductIds: readonly string[]
  purchases: ReadonlyArray<{ productId: string; timestamp: number }>
  /** What the page views' shelves show, for requests that name a page view (de-duplication). */
  pageViews?: PageViews
  /** Per product id, how often it was shown since the shopper last clicked it (demotion). */
  impressions?: ReadonlyMap<string, number>
  /** The device's arm explores (P30e): a share of the list's slots for new items. */
  explore?: ExploreRequest
  /** P30d: this visit's products by the strongest thing the shopper did with them (rerank.ts). */
  engaged?: ReadonlyMap<string, number>
}

export interface RecommenderOptions {
  model: GruModel
  /** The version the weights belong to, echoed in every response. */
  modelVersion: string
  catalogue: DeviceCatalogue
  pools: CandidatePools
  rules: RerankRules
  /** Milliseconds since the epoch; injectable for tests of "bought within N days". */
  now?: () => number
  recallSizes?: Partial<RecallSizes>
  /** Weight of the product's own similarity in a `similar` list; the session gets the rest. */
  similarAnchorWeight?: number
  /**
   * The neighbour index's settings, or false for exact neighbour recall at any catalogue size.
   * Built only for catalogues of at least MIN_INDEXED_ITEMS items.
   */
  neighbourIndex?: NeighbourIndexOptions | false
}

export interface Recommender {
  /** Validates the request (throws InvalidRequestError) and returns the top-K list. */
  recommend(request: RecommendRequest, context: RecommendContext): Promise<RecommendResponse>
  /**
   * Drops the cached item table so the next call reads the model's current weights. The neighbour
   * index is kept: its clusters hold for small local changes, and members are scored fresh.
   */
  refresh(): void
  /** Whether embedding-neighbour recall is exact or served by the index, and how it was built. */
  recallIndex(): RecallIndexStatus
  /** Releases the cached tensors; the model stays with its owner. */
  dispose(): void
  /** The catalogue's item index of a product id (its lookup, built once), or undefined. */
  indexOf(productId: string): number | undefined
}

/** A scenario's recall and how its candidates are to be scored. */
interface Plan {
  candidates: Candidate[]
  /** Scored by the model against this query; without one, in recall order. */
  query?: RankQuery
  /** The product not to show back. */
  currentIndex: number | undefined
  coldStart: boolean
  /** False where the order is the point (recently viewed): no boosts, no diversity caps. */
  reorder: boolean
}

function createDisposedError(): Error {
  const message = 'expected a live recommender, got one already disposed'
  return new PocketrecError('ModelUnavailableError', 'E_MODEL_DISPOSED', message)
}

/** Pinned items join the candidates, so that the model scores them like everything else. */
function addPins(candidates: Candidate[], pinned: readonly number[]): Candidate[] {
  const present = new Set(candidates.map((c) => c.index))
  const extra = [...new Set(pinned)].filter((index) => !present.has(index))
  return [...candidates, ...extra.map((index) => ({ index, source: 'pinned' as const }))]
}

/**
 * A recommender over one model, catalogue, pools and rules.
 * @example
 * const recommender = createRecommender({ model, modelVersion: 'v3', catalogue, pools, rules })
 * const list = await recommender.recommend({ scenario: 'for-you', limit: 8 }, context)
 */
export function createRecommender(options: RecommenderOptions): Recommender {
  const { model, modelVersion, pools, rules } = options
  const now = options.now ?? Date.now
  const similarAnchorWeight = options.similarAnchorWeight ?? 0.7
  const lookup = indexCatalogue(options.catalogue.items, model.config.nItems)
  const sizes: RecallSizes = { ...DEFAULT_RECALL_SIZES, ...options.recallSizes }
  let table: Promise<ItemTable> | undefined
  let disposed = false
  let index: NeighbourIndex | undefined
  const indexing =
    options.neighbourIndex !== false && model.config.nItems >= MIN_INDEXED_ITEMS
      ? { ...options.neighbourIndex }
      : undefined
  let indexStatus: RecallIndexStatus = { state: indexing ? 'pending' : 'exact' }

  /** Builds the index from the first table (the build lets the current request finish first). */
  function startIndex(first: Promise<ItemTable>) {
    if (!indexing || indexStatus.state !== 'pending') return
    indexStatus = { state: 'building' }
    void first
      .then(({ values, nItems, dim }) =>
        buildNeighbourIndex(values, nItems, dim, { ...indexing, cancelled: () => disposed }),
      )
      .then(
        (built) => {
          index = built
          indexStatus = { state: 'ready', clusters: built.clusters, buildMs: built.buildMs }
        },
        (error: unknown) => {
          // Recall stays exact: slower, never wrong.
          indexStatus = { state: 'failed', error: String(error) }
        },
      )
  }

  // Checked on every use: a disposed recommender's model may be gone, so no read-back starts.
  const getTable = () => {
    if (disposed) return Promise.reject(createDisposedError())
    if (!table) {
      table = readItemTable(model)
      startIndex(table)
    }
    return table
  }
  const deps: RecallDeps = { pools, lookup, table: getTable, index: () => index, sizes }

  async function planScenario(
    scenario: Scenario,
    session: Int32Array,
    product: number | undefined,
    recentlyViewed: readonly string[],
  ): Promise<Plan> {
    switch (scenario) {
      case 'for-you': {
        // The product on screen, else the last one looked at, is no news to the shopper.
        const currentIndex = product ?? session[session.length - 1]
        if (session.length === 0) {
          const candidates = recallTrending(deps, sizes.total)
          return { candidates, currentIndex, coldStart: true, reorder: true }
        }
        const candidates = await recallForYou(deps, session, currentIndex)
        return { candidates, query: { session }, currentIndex, coldStart: false, reorder: true }
      }
      case 'similar': {
        const candidates = await recallSimilar(deps, product!)
        const query = { session, anchor: { index: product!, weight: similarAnchorWeight } }
        return { candidates, query, currentIndex: product, coldStart: false, reorder: true }
      }
      case 'frequently-bought-together': {
        // "What goes with this": the session as if this product were its latest step.
        const last = session[session.length - 1]
        const withProduct = last === product ? session : Int32Array.from([...session, product!])
        const candidates = await recallFrequentlyBoughtTogether(deps, product!)
        const query = { session: withProduct.slice(-model.config.maxLen) }
        return { candidates, query, currentIndex: product, coldStart: false, reorder: true }
      }
      case 'trending': {
        const candidates = recallTrending(deps, sizes.total)
        return { candidates, currentIndex: product, coldStart: false, reorder: true }
      }
      case 'recently-viewed': {
        const candidates = recallHistory(deps, recentlyViewed, sizes.total)
        return { candidates, currentIndex: product, coldStart: false, reorder: false }
      }
    }
  }

  async function recommend(
    request: RecommendRequest,
    context: RecommendContext,
  ): Promise<RecommendResponse> {
    const started = performance.now()
    if (disposed) throw createDisposedError()
    const { scenario, productId, limit, pageView } = validateRecommendRequest(request, lookup)
    const session = encodeSession(context.sessionProductIds, lookup, model.config.maxLen)
    const product = productId === undefined ? undefined : lookup.byId.get(productId)?.index

    const plan = await planScenario(scenario, session, product, context.recentlyViewed)
    const pinned = (own(rules.pins, scenario) ?? []).flatMap(
      ({ productId: id }) => lookup.byId.get(id)?.index ?? [],
    )
    const candidates = addPins(plan.candidates, pinned)
    const query = plan.query && {
      ...plan.query,
      coVisited: coVisitationOf(pools, plan.query.session[plan.query.session.length - 1] ?? -1),
    }
    const scores = query
      ? toProbabilities(rankCandidates(model, await getTable(), query, candidates))
      : scoreByOrder(candidates.length)
    // No await from here to the end of the re-ranking: concurrent lists of one page view
    // cannot overlap (page-views.ts).
    const ranked = rerankOnPage(
      {
        candidates,
        scores,
        scenario,
        limit,
        rules,
        lookup,
        reorder: plan.reorder,
        impressions: context.impressions,
        engaged: context.engaged,
        exclusions: {
          currentIndex: plan.currentIndex,
          cartProductIds: context.cartProductIds,
          purchases: context.purchases,
          nowMs: now(),
        },
      },
      { pageViews: context.pageViews, pageView, productId },
      planExploration(context.explore, { scenario, limit }, pools, lookup, context.impressions),
    )

    return {
      attributionId: createAttributionId(),
      scenario,
      items: toRecommendedItems(ranked, lookup),
      modelVersion,
      backend: tf.getBackend(),
      latencyMs: performance.now() - started,
      coldStart: plan.coldStart,
    }
  }

  function releaseTable() {
    table = undefined
  }

  return {
    recommend,
    refresh: releaseTable,
    recallIndex: () => indexStatus,
    indexOf: (productId) => lookup.byId.get(productId)?.index,
    dispose() {
      disposed = true
      releaseTable()
    },
  }
}
