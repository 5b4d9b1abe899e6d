// Stage 2, recall: cut the catalogue to a few hundred candidates, each labelled with the source
// that found it. Lists are taken most specific first and deduplicated keeping the first source,
// so an item found through the shopper's own items is not credited to "trending".
import { own } from '../../../shared/own'
import type { CandidatePools, RecallSource } from '../../../shared/protocol'
import type { CatalogueLookup } from './catalogue-lookup'
import { dot } from './dot'
import type { ItemTable } from './item-table'
import type { NeighbourIndex } from './neighbour-index'
import { selectTopIndices } from './top-indices'

export interface Candidate {
  /** Model row. */
  index: number
  source: RecallSource
}

/** How many new candidates each source may add; `total` caps the merged list. */
export interface RecallSizes {
  /** Per anchor item. */
  coVisitation: number
  embedding: number
  category: number
  trending: number
  new: number
  popular: number
  /** Recent session items whose co-visitations and embedding neighbours are recalled. */
  recentItems: number
  total: number
}

export const DEFAULT_RECALL_SIZES: RecallSizes = {
  coVisitation: 40,
  embedding: 100,
  category: 40,
  trending: 40,
  new: 20,
  popular: 40,
  recentItems: 3,
  total: 300,
}

/** Inputs every recall shares; built once per recommender. */
export interface RecallDeps {
  pools: CandidatePools
  lookup: CatalogueLookup
  table: () => Promise<ItemTable>
  /** The neighbour index once built (large catalogues only); exact recall without it. */
  index?: () => NeighbourIndex | undefined
  sizes: RecallSizes
}

interface RecallList {
  source: RecallSource
  indices: readonly number[]
  /** New (not yet recalled) candidates this list may add. */
  quota: number
}

/**
 * Concatenates lists in order, keeping an item's first source, skipping rows without a
 * catalogue entry (pools may be newer or older than the catalogue), until `total`.
 */
export function mergeCandidates(
  lists: readonly RecallList[],
  lookup: CatalogueLookup,
  total: number,
): Candidate[] {
  const seen = new Set<number>()
  const candidates: Candidate[] = []
  for (const { source, indices, quota } of lists) {
    let added = 0
    for (const index of indices) {
      if (added >= quota || candidates.length >= total) break
      if (seen.has(index) || lookup.byIndex[index] === undefined) continue
      seen.add(index)
      candidates.push({ index, source })
      added++
    }
  }
  return candidates
}

/**
 * The `count` items nearest (cosine, on the normalised item table) to a weighted sum of anchor
 * items, anchors excluded. Summing cosines equals one dot product with the summed anchors. With
 * an index (large catalogues, once built) the sum is scored against the best clusters only;
 * without, exactly: one dot product per item of the table.
 */
export function findNeighbours(
  table: ItemTable,
  anchors: readonly number[],
  weights: readonly number[],
  count: number,
  index?: NeighbourIndex,
): number[] {
  if (anchors.length === 0 || count <= 0) return []
  const { values, dim, nItems } = table
  const query = anchorQuery(values, dim, anchors, weights)
  if (index) return index.search(values, query, count, new Set(anchors))
  const similarity = new Float32Array(nItems)
  for (let i = 0; i < nItems; i++) similarity[i] = dot(values, i * dim, query, 0, dim)
  return selectTopIndices(similarity, count, new Set(anchors))
}

/** The items most often viewed next to `index`, most first (the pools' list; empty if none). */
export function coVisitationOf(pools: CandidatePools, index: number): readonly number[] {
  return own(pools.coVisitation, String(index)) ?? []
}

/** Σ weight · vector of the anchor rows of `values` (row-major [nItems, dim]). */
export function anchorQuery(
  values: Float32Array,
  dim: number,
  anchors: readonly number[],
  weights: readonly number[],
): Float32Array {
  const query = new Float32Array(dim)
  anchors.forEach((row, a) => {
    for (let k = 0; k < dim; k++) query[k]! += weights[a]! * values[row * dim + k]!
  })
  return query
}

/** The most recent distinct session items, newest first, with halving recency weights. */
export function recentAnchors(
  session: Int32Array,
  count: number,
): { rows: number[]; weights: number[] } {
  const rows: number[] = []
  for (let i = session.length - 1; i >= 0 && rows.length < count; i--) {
    if (!rows.includes(session[i]!)) rows.push(session[i]!)
  }
  return { rows, weights: rows.map((_, k) => 0.5 ** k) }
}

/**
 * for-you: co-visitations and embedding neighbours of the session's recent items, then the pool
 * of the current (or last) item's category, then trending, new and popular to fill.
 */
export async function recallForYou(
  deps: RecallDeps,
  session: Int32Array,
  current: number | undefined,
): Promise<Candidate[]> {
  const { sizes } = deps
  const { rows, weights } = recentAnchors(session, sizes.recentItems)
  const neighbours = findNeighbours(
    await deps.table(),
    rows,
    weights,
    sizes.embedding,
    deps.index?.(),
  )
  return mergeForYou(deps, rows, current ?? rows[0], neighbours)
}

/**
 * for-you's lists in order, each item once: the co-visitations of `rows`, their embedding
 * `neighbours` (none before the model has arrived), the `focus` item's category, then trending,
 * new and popular to fill.
 */
export function mergeForYou(
  deps: Pick<RecallDeps, 'pools' | 'lookup' | 'sizes'>,
  rows: readonly number[],
  focus: number | undefined,
  neighbours: readonly number[] = [],
): Candidate[] {
  const { pools, sizes } = deps
  const category = focus === undefined ? undefined : deps.lookup.byIndex[focus]?.category
  return mergeCandidates(
    [
      ...rows.map((row) => ({
        source: 'co-visitation' as const,
        indices: coVisitationOf(pools, row),
        quota: sizes.coVisitation,
      })),
      { source: 'embedding', indices: neighbours, quota: sizes.embedding },
      {
        source: 'category',
        indices: (category !== undefined && own(pools.byCategory, category)) || [],
        quota: sizes.category,
      },
      { source: 'trending', indices: pools.trending, quota: sizes.trending },
      { source: 'new', indices: pools.new, quota: sizes.new },
      { source: 'popular', indices: pools.popular, quota: sizes.popular },
    ],
    deps.lookup,
    sizes.total,
  )
}

/** similar: the product's embedding neighbours, then the items viewed with it. */
export async function recallSimilar(deps: RecallDeps, product: number): Promise<Candidate[]> {
  const { pools, sizes } = deps
  const neighbours = findNeighbours(
    await deps.table(),
    [product],
    [1],
    sizes.embedding,
    deps.index?.(),
  )
  return mergeCandidates(
    [
      { source: 'embedding', indices: neighbours, quota: sizes.embedding },
      {
        source: 'co-visitation',
        indices: coVisitationOf(pools, product),
        quota: sizes.coVisitation * sizes.recentItems,
      },
    ],
    deps.lookup,
    sizes.total,
  )
}

/**
 * frequently-bought-together: the items viewed in the same sessions as the product; embedding
 * neighbours only fill up to `embedding` candidates when co-visitation is thin (a new or rare
 * product), as neighbours tend to be substitutes rather than complements.
 */
export async function recallFrequentlyBoughtTogether(
  deps: RecallDeps,
  product: number,
): Promise<Candidate[]> {
  const { pools, sizes } = deps
  const coVisited = mergeCandidates(
    [
      {
        source: 'co-visitation',
        indices: coVisitationOf(pools, product),
        quota: sizes.coVisitation * sizes.recentItems,
      },
    ],
    deps.lookup,
    sizes.total,
  )
  const fill = sizes.embedding - coVisited.length
  if (fill <= 0) return coVisited
  // Ask for extra neighbours: some may already be co-visited.
  const neighbours = findNeighbours(
    await deps.table(),
    [product],
    [1],
    fill + coVisited.length,
    deps.index?.(),
  )
  return mergeCandidates(
    [
      { source: 'co-visitation', indices: coVisited.map((c) => c.index), quota: Infinity },
      { source: 'embedding', indices: neighbours, quota: fill },
    ],
    deps.lookup,
    sizes.total,
  )
}

/**
 * trending, and every cold start: the trending pool in its order, then popular and new so a
 * short or empty trending pool still yields a list. Never random.
 */
export function recallTrending(deps: RecallDeps, count: number): Candidate[] {
  const { pools } = deps
  return mergeCandidates(
    [
      { source: 'trending', indices: pools.trending, quota: Infinity },
      { source: 'popular', indices: pools.popular, quota: Infinity },
      { source: 'new', indices: pools.new, quota: Infinity },
    ],
    deps.lookup,
    count,
  )
}

/** recently-viewed: the shopper's history (oldest first, as stored), newest first, deduplicated. */
export function recallHistory(
  deps: RecallDeps,
  recentlyViewed: readonly string[],
  count: number,
): Candidate[] {
  const newestFirst: number[] = []
  for (let i = recentlyViewed.length - 1; i >= 0; i--) {
    const item = deps.lookup.byId.get(recentlyViewed[i]!)
    if (item !== undefined) newestFirst.push(item.index)
  }
  return mergeCandidates(
    [{ source: 'history', indices: newestFirst, quota: Infinity }],
    deps.lookup,
    count,
  )
}
