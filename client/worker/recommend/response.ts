// What every list answers with, whichever recommender made it (the model's, or the pools' while
// the model is on its way or where no worker may run): its attribution id and the items as the
// page shows them. No TF.js here: the page's pools-only bundle imports it.
import type { RecommendedItem } from '../../../shared/protocol'
import type { CatalogueLookup } from './catalogue-lookup'
import type { RankedItem } from './rerank'

/** 128 random bits as hex; getRandomValues, unlike randomUUID, also works on http:// pages. */
export function createAttributionId(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16))
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}

/** A ranked row as the page sees it: the catalogue's fields, its score and recall source. */
export function toRecommendedItems(
  ranked: readonly RankedItem[],
  lookup: CatalogueLookup,
): RecommendedItem[] {
  return ranked.map(({ index, source, score }) => {
    const { id, name, category, price, imageUrl } = lookup.byIndex[index]!
    const item: RecommendedItem = { productId: id, name, category, price, score, source }
    if (imageUrl !== undefined) item.imageUrl = imageUrl
    return item
  })
}
