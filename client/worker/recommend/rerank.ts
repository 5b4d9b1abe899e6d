// Stage 4, re-ranking: the shop's business rules over the ranked candidates. Pure and
// deterministic: the same candidates, scores and rules always give the same list.
import { own } from '../../../shared/own'
import type { RecallSource, RerankRules, Scenario } from '../../../shared/protocol'
import type { CatalogueLookup } from './catalogue-lookup'
import type { Candidate } from './recall'

const DAY_MS = 86_400_000

export interface RankedItem {
  index: number
  source: RecallSource
  score: number
}

/** What the shopper already has or is looking at: never recommended back. */
export interface Exclusions {
  /** The product on screen. */
  currentIndex?: number
  /** Product ids the page's other shelves already show (page-view de-duplication). */
  onPage?: ReadonlySet<string>
  cartProductIds: readonly string[]
  purchases: ReadonlyArray<{ productId: string; timestamp: number }>
  nowMs: number
}

export interface RerankInput {
  candidates: readonly Candidate[]
  /** Positive scores, in candidate order. */
  scores: Float32Array
  scenario: Scenario
  limit: number
  rules: RerankRules
  lookup: CatalogueLookup
  exclusions: Exclusions
  /** Off for lists whose order is the point (recently viewed): boosts, demotion and caps. */
  reorder?: boolean
  /** Per product id, how often it was shown since the shopper last clicked it (demotion). */
  impressions?: ReadonlyMap<string, number>
  /**
   * P30d: per product id of this visit, its weight under the shop's event weights relative to a
   * view (shared/events.ts engagementWeight: what the shopper did with it, how long they stayed):
   * a multiplier of its score. Absent for a product: 1.
   */
  engaged?: ReadonlyMap<string, number>
}

/** Impressions without a click an item may have before it is demoted. */
export const FREE_IMPRESSIONS = 3
/** Each unclicked impression beyond the free ones multiplies the item's score by this… */
export const DEMOTION_STEP = 0.8
/** …down to this floor, so a demoted item can still come back on a strong enough score. */
export const DEMOTION_FLOOR = 0.25

/**
 * The score factor of an item shown `impressions` times since its last click (or ever, never
 * clicked): 1 up to FREE_IMPRESSIONS, then DEMOTION_STEP per impression, never below
 * DEMOTION_FLOOR. A click resets the count, so the item is back at full score.
 */
export function demotionFactor(impressions: number): number {
  const beyond = impressions - FREE_IMPRESSIONS
  return beyond > 0 ? Math.max(DEMOTION_FLOOR, DEMOTION_STEP ** beyond) : 1
}

/** Product ids the rules drop: the cart, and purchases within `excludePurchasedDays`. */
function collectExcludedIds(exclusions: Exclusions, days: number): Set<string> {
  const excluded = new Set(exclusions.cartProductIds)
  for (const { productId, timestamp } of exclusions.purchases) {
    // A timestamp ahead of the clock (a skewed device) counts as recent.
    if (days > 0 && exclusions.nowMs - timestamp < days * DAY_MS) excluded.add(productId)
  }
  return excluded
}

/** A cap ≤ 0 or not finite means "no cap": a rule of 0 per category would empty every list. */
function capOf(value: number): number {
  return Number.isFinite(value) && value > 0 ? value : Infinity
}

/**
 * In stock only; drops the current item, the cart, recent purchases and what the page's other
 * shelves show; multiplies boosts, the demotion of items shown often and never clicked, and the
 * shop's event weight of what the shopper did with an item this visit (P30d);
 * sorts by score (ties keep recall order); keeps at most `maxPerCategory`/`maxPerBrand` per
 * list; then puts the scenario's pins at their exact 0-based positions. Pins obey the
 * eligibility rules (a pinned item out of stock or in the cart is not shown) but not the caps,
 * though they count towards them. A pin not among the candidates is shown with source 'pinned'.
 *
 * The caps are soft: they decide who comes first, never how many. When the capped list is
 * shorter than `limit`, the items a cap held back follow it in rank order, so a `similar` list
 * whose neighbours share one category still has `limit` items. Only caps refill a list: one with
 * fewer eligible candidates than `limit` (a thin recall) stays short.
 */
export function rerankCandidates(input: RerankInput): RankedItem[] {
  const { candidates, scores, rules, lookup, exclusions, limit } = input
  const reorder = input.reorder ?? true
  const excludedIds = collectExcludedIds(exclusions, rules.excludePurchasedDays)
  const isEligible = (index: number) => {
    const item = lookup.byIndex[index]
    return (
      item !== undefined &&
      item.inStock &&
      index !== exclusions.currentIndex &&
      !excludedIds.has(item.id) &&
      !exclusions.onPage?.has(item.id)
    )
  }

  const ranked: RankedItem[] = []
  candidates.forEach(({ index, source }, i) => {
    if (!isEligible(index)) return
    const { id } = lookup.byIndex[index]!
    const boost = reorder
      ? (own(rules.boosts, id) ?? 1) *
        demotionFactor(input.impressions?.get(id) ?? 0) *
        (input.engaged?.get(id) ?? 1)
      : 1
    ranked.push({ index, source, score: scores[i]! * boost })
  })
  // Array.prototype.sort is stable: equal scores keep recall order.
  if (reorder) ranked.sort((a, b) => b.score - a.score)

  // Pins first, so the caps count them.
  const pinnedAt = new Map<number, RankedItem>()
  const pinnedRows = new Set<number>()
  for (const { productId, position } of own(rules.pins, input.scenario) ?? []) {
    const item = lookup.byId.get(productId)
    if (item === undefined || !Number.isInteger(position) || position < 0 || position >= limit)
      continue
    if (pinnedAt.has(position) || pinnedRows.has(item.index) || !isEligible(item.index)) continue
    const organic = ranked.find((r) => r.index === item.index)
    pinnedAt.set(position, organic ?? { index: item.index, source: 'pinned', score: 0 })
    pinnedRows.add(item.index)
  }

  const maxPerCategory = reorder ? capOf(rules.maxPerCategory) : Infinity
  const maxPerBrand = reorder ? capOf(rules.maxPerBrand) : Infinity
  const perCategory = new Map<string, number>()
  const perBrand = new Map<string, number>()
  const count = (index: number) => {
    const { category, brand } = lookup.byIndex[index]!
    perCategory.set(category, (perCategory.get(category) ?? 0) + 1)
    perBrand.set(brand, (perBrand.get(brand) ?? 0) + 1)
  }
  for (const row of pinnedRows) count(row)

  const organic: RankedItem[] = []
  const heldBack: RankedItem[] = []
  const wanted = limit - pinnedAt.size
  for (const item of ranked) {
    if (organic.length >= wanted) break
    if (pinnedRows.has(item.index)) continue
    const { category, brand } = lookup.byIndex[item.index]!
    if (
      (perCategory.get(category) ?? 0) >= maxPerCategory ||
      (perBrand.get(brand) ?? 0) >= maxPerBrand
    ) {
      heldBack.push(item)
      continue
    }
    count(item.index)
    organic.push(item)
  }
  // Soft caps: what they held back fills the rest, best first.
  organic.push(...heldBack.slice(0, wanted - organic.length))

  // Pins beyond the end of a short list close up behind it rather than leave holes.
  const result: RankedItem[] = []
  let next = 0
  for (let position = 0; position < limit; position++) {
    const pin = pinnedAt.get(position)
    if (pin !== undefined) result.push(pin)
    else if (next < organic.length) result.push(organic[next++]!)
  }
  return result
}
