// A hand-made shop for the tests in this folder (not imported by the worker): 40 products whose
// category, brand and stock follow from the index, so expectations can be worked out by hand.
import type {
  CandidatePools,
  Catalogue,
  CatalogueItem,
  RerankRules,
} from '../../../shared/protocol'
import { DEFAULT_GRU_CONFIG, type GruModelConfig } from '../../../model/gru-model'
import { indexCatalogue } from './catalogue-lookup'

export const N_ITEMS = 40
export const OUT_OF_STOCK = new Set([3, 11, 26])

export const tinyConfig: GruModelConfig = {
  ...DEFAULT_GRU_CONFIG,
  nItems: N_ITEMS,
  embedDim: 16,
  hiddenDim: 16,
  maxLen: 5,
  dropout: 0,
}

export const id = (index: number) => `p${index}`

export function makeItem(index: number): CatalogueItem {
  return {
    id: id(index),
    index,
    name: `Product ${index}`,
    category: `c${index % 4}`,
    brand: `b${index % 5}`,
    price: 10 + index,
    inStock: !OUT_OF_STOCK.has(index),
    addedAt: '2026-01-01',
  }
}

export const catalogue: Catalogue = {
  type: 'pocketrec-catalogue',
  items: Array.from({ length: N_ITEMS }, (_, i) => makeItem(i)),
}

export const lookup = indexCatalogue(catalogue.items, N_ITEMS)

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

export const pools: CandidatePools = {
  type: 'pocketrec-pools',
  trending: [5, 3, 12, 7, 20, 1, 30, 9, 14, 22, 33, 2],
  popular: [0, 1, 2, 4, 6, 8, 10],
  new: [39, 38, 37],
  byCategory: Object.fromEntries(
    range(4).map((c) => [`c${c}`, range(N_ITEMS).filter((i) => i % 4 === c)]),
  ),
  coVisitation: Object.fromEntries(
    range(N_ITEMS).map((i) => [
      String(i),
      [(i + 1) % N_ITEMS, (i + 7) % N_ITEMS, (i + 13) % N_ITEMS],
    ]),
  ),
}

export const noRules: RerankRules = {
  type: 'pocketrec-rules',
  excludePurchasedDays: 30,
  maxPerCategory: 0,
  maxPerBrand: 0,
  boosts: {},
  pins: {},
}

export const emptyContext = {
  sessionProductIds: [],
  recentlyViewed: [],
  cartProductIds: [],
  purchases: [],
}
