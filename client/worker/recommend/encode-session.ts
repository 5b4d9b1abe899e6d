// Stage 1: the visit's product ids, as the event store hands them over, become the model rows
// the GRU reads.
import type { CatalogueLookup } from './catalogue-lookup'

/**
 * Model rows of the session's products, oldest first: ids the catalogue does not know are
 * dropped (a product added after the model was trained has no row), consecutive repeats are
 * collapsed (view → click → add of one product is one step, as in the click logs the model was
 * trained on), and only the last `maxLen` are kept, as the model reads no more.
 */
export function encodeSession(
  productIds: readonly string[],
  lookup: CatalogueLookup,
  maxLen: number,
): Int32Array {
  const rows: number[] = []
  for (const id of productIds) {
    const item = lookup.byId.get(id)
    if (item !== undefined && rows[rows.length - 1] !== item.index) rows.push(item.index)
  }
  return Int32Array.from(rows.slice(Math.max(0, rows.length - maxLen)))
}
