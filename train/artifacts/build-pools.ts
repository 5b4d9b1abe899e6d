// The recall stage's candidate pools, computed once from the training log and shipped to every
// device: the same download for everyone, so it reveals nothing about any one shopper.
// Stock is left to re-ranking (it changes faster than pools are rebuilt), except for "new".
import { CATALOGUE_POOL_SIZES, cataloguePools, LOG_POOL_SIZES } from '../../shared/catalogue-pools'
import type { CandidatePools, Catalogue } from '../../shared/protocol'
import { countItems } from '../data/examples'
import type { SessionDataset } from '../data/types'
import { buildCoVisitation, topNeighbours, type CoVisitationGraph } from './co-visitation'

export interface PoolOptions {
  popular?: number
  trending?: number
  /** Trending counts the last this-fraction of the (time-ordered) training sessions. */
  trendingFraction?: number
  newItems?: number
  perCategory?: number
  coVisitationTopK?: number
  /** Above this many bytes of JSON, co-visitation lists are cut to `coVisitationFallbackK`. */
  coVisitationMaxBytes?: number
  coVisitationFallbackK?: number
  /** The co-visitation graph of `train`, when the caller has already built it. */
  graph?: CoVisitationGraph
}

export const DEFAULT_POOL_OPTIONS = {
  ...LOG_POOL_SIZES,
  trendingFraction: 0.1,
  ...CATALOGUE_POOL_SIZES,
  coVisitationTopK: 20,
  coVisitationMaxBytes: 8_000_000,
  coVisitationFallbackK: 10,
}

export interface BuiltPools {
  pools: CandidatePools
  /** Neighbours kept per item, after the size cut. */
  coVisitationTopK: number
  /** Bytes of `JSON.stringify(pools.coVisitation)` (ASCII, so characters = bytes). */
  coVisitationBytes: number
}

export function buildCandidatePools(
  dataset: Pick<SessionDataset, 'nItems' | 'train'>,
  catalogue: Catalogue,
  options: PoolOptions = {},
): BuiltPools {
  const o = { ...DEFAULT_POOL_OPTIONS, ...options }
  const { nItems, train } = dataset
  const items = catalogue.items
  if (items.length !== nItems || items.some((item, i) => item.index !== i)) {
    throw new RangeError(
      `expected a catalogue of ${nItems} items in index order, got ${items.length}`,
    )
  }
  const counts = countItems(train, nItems)
  const recentFrom = Math.floor(train.length * (1 - o.trendingFraction))
  const recent = countItems(train.slice(recentFrom), nItems)
  const all = Array.from({ length: nItems }, (_, i) => i)

  const popular = all.filter((i) => counts[i]! > 0).sort((a, b) => counts[b]! - counts[a]! || a - b)
  const trending = all
    .filter((i) => recent[i]! > 0)
    .sort((a, b) => recent[b]! - recent[a]! || counts[b]! - counts[a]! || a - b)
    .slice(0, o.trending)
  const fromCatalogue = cataloguePools(catalogue, popular, o)

  const graph = o.graph ?? buildCoVisitation(train, nItems)
  let topK = o.coVisitationTopK
  let coVisitation = collectNeighbours(graph, topK)
  let coVisitationBytes = JSON.stringify(coVisitation).length
  if (coVisitationBytes > o.coVisitationMaxBytes && o.coVisitationFallbackK < topK) {
    topK = o.coVisitationFallbackK
    coVisitation = collectNeighbours(graph, topK)
    coVisitationBytes = JSON.stringify(coVisitation).length
  }
  return {
    pools: {
      type: 'pocketrec-pools',
      trending,
      popular: popular.slice(0, o.popular),
      ...fromCatalogue,
      coVisitation,
    },
    coVisitationTopK: topK,
    coVisitationBytes,
  }
}

/** Keys in ascending item order (integer-like keys enumerate that way in JSON anyway). */
function collectNeighbours(graph: CoVisitationGraph, k: number): Record<string, number[]> {
  const out: Record<string, number[]> = {}
  for (let item = 0; item < graph.nItems; item++) {
    if (graph.offsets[item + 1]! > graph.offsets[item]!) out[item] = topNeighbours(graph, item, k)
  }
  return out
}
