// The first lists of a first visit, before the model has arrived (progressive start): the same
// validation, recall sources and re-ranking as recommend.ts without the model's stages, so every
// candidate comes from the pools (co-visitation of the shopper's items, their category, trending,
// new, popular) in the pools' own order. The worker answers with it while the model downloads;
// once the model is in, lists are personalised and this one is dropped.
import type {
  CandidatePools,
  DeviceCatalogue,
  RecommendRequest,
  RecommendResponse,
  RerankRules,
} from '../../../shared/protocol'
import { indexCatalogue, type CatalogueLookup } from './catalogue-lookup'
import { encodeSession } from './encode-session'
import { scoreByOrder } from './rank'
import {
  DEFAULT_RECALL_SIZES,
  mergeForYou,
  recallHistory,
  recallTrending,
  recentAnchors,
  type RecallDeps,
} from './recall'
import type { RecommendContext } from './recommend'
import { createAttributionId, toRecommendedItems } from './response'
import { planExploration } from './explore'
import { rerankOnPage } from './page-views'
import { validateRecommendRequest } from './validate-request'
import { PocketrecError } from '../../../shared/errors'

/** What a list with no model reports as its model version: the release's, marked. */
export const POOLS_ONLY_SUFFIX = '+pools'
const MAX_SESSION = 50

/**
 * Whether the list for `request` (a session of `sessionLength` items) comes from trending, popular
 * and new alone, as `recommend` below builds it: a for-you list without a session or a trending
 * list, for no product. The pools carry those items' catalogue entries (P2b), so a first visit's
 * first list is served before the catalogue arrives; every other list waits for it.
 */
export function answersFromFirstItems(request: RecommendRequest, sessionLength: number): boolean {
  const scenario = (request as Partial<RecommendRequest> | null)?.scenario
  return (
    sessionLength === 0 &&
    request?.productId === undefined &&
    (scenario === 'for-you' || scenario === 'trending')
  )
}

export interface PoolsRecommender {
  recommend(request: RecommendRequest, context: RecommendContext): RecommendResponse
  /** The catalogue's item index of a product id (its lookup, built once), or undefined. */
  indexOf(productId: string): number | undefined
}

export function createPoolsRecommender(options: {
  catalogue: DeviceCatalogue
  pools: CandidatePools
  rules: RerankRules
  version: string
  /** The catalogue's lookup when the caller built it already (in slices, on a page). */
  lookup?: CatalogueLookup
  now?: () => number
}): PoolsRecommender {
  const { pools, rules } = options
  const now = options.now ?? Date.now
  const rows = () => options.catalogue.items.reduce((max, item) => Math.max(max, item.index + 1), 0)
  const lookup = options.lookup ?? indexCatalogue(options.catalogue.items, rows())
  const sizes = DEFAULT_RECALL_SIZES
  const deps: RecallDeps = {
    pools,
    lookup,
    sizes,
    table: () => {
      throw new PocketrecError('ModelUnavailableError', 'E_RELEASE', 'the model has not arrived')
    },
  }
  return {
    indexOf: (productId) => lookup.byId.get(productId)?.index,
    recommend(request, context) {
      const started = performance.now()
      const { scenario, productId, limit, pageView } = validateRecommendRequest(request, lookup)
      const session = encodeSession(context.sessionProductIds, lookup, MAX_SESSION)
      const product = productId === undefined ? undefined : lookup.byId.get(productId)?.index
      const { rows } = recentAnchors(session, sizes.recentItems)
      const coldStart = scenario === 'for-you' && session.length === 0
      const candidates =
        scenario === 'recently-viewed'
          ? recallHistory(deps, context.recentlyViewed, sizes.total)
          : scenario === 'trending' || coldStart
            ? recallTrending(deps, sizes.total)
            : mergeForYou(deps, product === undefined ? rows : [product], product ?? rows[0])
      const ranked = rerankOnPage(
        {
          candidates,
          scores: scoreByOrder(candidates.length),
          scenario,
          limit,
          rules,
          lookup,
          reorder: scenario !== 'recently-viewed',
          impressions: context.impressions,
          engaged: context.engaged,
          exclusions: {
            currentIndex: product ?? (scenario === 'for-you' ? session.at(-1) : undefined),
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
        modelVersion: options.version + POOLS_ONLY_SUFFIX,
        backend: 'none',
        latencyMs: performance.now() - started,
        coldStart,
      }
    },
  }
}
