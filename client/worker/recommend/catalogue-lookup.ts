// Product ids (what the page and the event store speak) ↔ model rows (what the GRU and the pools
// speak). Built once per catalogue; every stage after encode-session works on rows.
import { ITEMS_PER_STEP } from '../../../shared/artifacts'
import type { DeviceCatalogueItem } from '../../../shared/protocol'
import { drain, type Steps } from '../../../shared/slices'

export interface CatalogueLookup {
  byId: ReadonlyMap<string, DeviceCatalogueItem>
  /** Indexed by model row; rows without a catalogue entry are undefined and never shown. */
  byIndex: ReadonlyArray<DeviceCatalogueItem | undefined>
}

/**
 * Indexes the catalogue against a model of `nItems` rows. A row outside the model means the
 * catalogue and the weights come from different versions, which no later stage can repair.
 */
export function indexCatalogue(
  items: readonly DeviceCatalogueItem[],
  nItems: number,
): CatalogueLookup {
  return drain(catalogueLookupSteps(items, nItems))
}

/** indexCatalogue in steps, for a page's thread (shared/slices.ts). */
export function* catalogueLookupSteps(
  items: readonly DeviceCatalogueItem[],
  nItems: number,
): Steps<CatalogueLookup> {
  const byId = new Map<string, DeviceCatalogueItem>()
  const byIndex = new Array<DeviceCatalogueItem | undefined>(nItems).fill(undefined)
  for (let i = 0; i < items.length; i++) {
    if (i % ITEMS_PER_STEP === ITEMS_PER_STEP - 1) yield
    const item = items[i]!
    if (!Number.isInteger(item.index) || item.index < 0 || item.index >= nItems) {
      throw new RangeError(
        `expected catalogue item "${item.id}" to have an index in 0..${nItems - 1} (the model's item rows), got ${item.index}`,
      )
    }
    byId.set(item.id, item)
    byIndex[item.index] = item
  }
  return { byId, byIndex }
}
