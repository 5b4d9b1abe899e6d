// The candidate pools that follow from the catalogue alone: "new" (in stock, newest first) and
// one pool per category (most popular first). The trainer builds them at export from its log's
// counts; the aggregation server rebuilds them when the shop uploads a changed catalogue
// (PROTOCOL.md P25), ranking by the popularity order of the release it replaces.
import type { CandidatePools, Catalogue, DeviceCatalogue } from './protocol'

export const CATALOGUE_POOL_SIZES = { newItems: 200, perCategory: 200 }
/** The pools that popularity fills: the trainer's from its log, the server's from reports (P28). */
export const LOG_POOL_SIZES = { popular: 500, trending: 500 }

/**
 * `popularity` lists item indices, most popular first; items absent from it have no evidence of
 * popularity and join no category pool (they can still be new, or found by other recall).
 */
export function cataloguePools(
  catalogue: Catalogue,
  popularity: readonly number[],
  sizes: Partial<typeof CATALOGUE_POOL_SIZES> = {},
): Pick<CandidatePools, 'new' | 'byCategory'> {
  const { newItems, perCategory } = { ...CATALOGUE_POOL_SIZES, ...sizes }
  const items = catalogue.items
  const addedMs = new Map(items.map((item) => [item.index, Date.parse(item.addedAt)]))
  const newest = items
    .filter((item) => item.inStock)
    .map((item) => item.index)
    .sort((a, b) => addedMs.get(b)! - addedMs.get(a)! || b - a)
    .slice(0, newItems)

  return { new: newest, byCategory: categoryPools(catalogue, popularity, perCategory) }
}

/** One pool per category, most popular first: what needs no dates (the devices' catalogue). */
export function categoryPools(
  catalogue: DeviceCatalogue,
  popularity: readonly number[],
  perCategory = CATALOGUE_POOL_SIZES.perCategory,
): CandidatePools['byCategory'] {
  const items = catalogue.items
  const byIndex = new Map(items.map((item) => [item.index, item]))
  // Categories are the shop's strings ("constructor" among them): a Map, then own properties.
  const byCategory = new Map<string, number[]>()
  for (const name of [...new Set(items.map((item) => item.category))].sort())
    byCategory.set(name, [])
  for (const i of popularity) {
    const item = byIndex.get(i)
    if (!item) continue
    const pool = byCategory.get(item.category)!
    if (pool.length < perCategory) pool.push(i)
  }
  return Object.fromEntries(byCategory)
}

/**
 * The popularity order a release implies without its counts: its `popular` list, then its
 * category pools merged rank by rank (each is sorted by popularity within its category).
 */
export function popularityOrder(pools: Pick<CandidatePools, 'popular' | 'byCategory'>): number[] {
  const seen = new Set<number>()
  const order: number[] = []
  const add = (i: number) => {
    if (!seen.has(i)) {
      seen.add(i)
      order.push(i)
    }
  }
  pools.popular.forEach(add)
  const lists = Object.values(pools.byCategory)
  const longest = Math.max(0, ...lists.map((list) => list.length))
  for (let rank = 0; rank < longest; rank++) {
    for (const list of lists) if (rank < list.length) add(list[rank]!)
  }
  return order
}
