import type { RerankRules } from '../../shared/protocol'

/**
 * The rules shipped until a shop sets its own: hide what was bought in the last month and keep a
 * list of ten from being one category or one brand. No boosts or pins: those are merchandising.
 */
export const DEFAULT_RERANK_RULES: RerankRules = {
  type: 'pocketrec-rules',
  excludePurchasedDays: 30,
  maxPerCategory: 4,
  maxPerBrand: 3,
  boosts: {},
  pins: {},
}

/** A fresh copy, so a caller that edits its rules never changes the defaults. */
export function createDefaultRules(): RerankRules {
  return structuredClone(DEFAULT_RERANK_RULES)
}
