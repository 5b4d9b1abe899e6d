import { describe, expect, it } from 'vitest'
import { engagementWeight } from '../../../shared/events'
import type { RerankRules } from '../../../shared/protocol'
import type { Candidate } from './recall'
import { rerankCandidates, type RerankInput } from './rerank'
import { indexCatalogue } from './catalogue-lookup'
import { catalogue, lookup, N_ITEMS, noRules } from './test-fixtures'

const DAY_MS = 86_400_000
const NOW = Date.UTC(2026, 10, 27)

/** Candidates with strictly falling scores, so the expected order is the given one. */
function input(indices: number[], overrides: Partial<RerankInput> = {}): RerankInput {
  const candidates: Candidate[] = indices.map((index) => ({ index, source: 'embedding' }))
  return {
    candidates,
    scores: Float32Array.from(indices, (_, i) => 1 - i / 100),
    scenario: 'for-you',
    limit: 10,
    rules: noRules,
    lookup,
    exclusions: { cartProductIds: [], purchases: [], nowMs: NOW },
    ...overrides,
  }
}

const rows = (items: Array<{ index: number }>) => items.map((item) => item.index)
const rules = (overrides: Partial<RerankRules>): RerankRules => ({ ...noRules, ...overrides })

describe('rerankCandidates', () => {
  it('P30d: multiplies each item’s score by its weight under the shop’s event weights', () => {
    // What the worker passes (create-worker-api.ts engagedIn) for a clicked p2 and a p4 put in
    // the cart and taken out again, under weights view 1, click 1.02, add 1.05.
    const eventWeights = { view: 1, click: 1.02, add: 1.05, purchase: 2 }
    const engaged = new Map([
      ['p2', engagementWeight(eventWeights, 1)],
      ['p4', engagementWeight(eventWeights, 2)],
    ])
    const weighted = rerankCandidates(input([0, 1, 2, 4, 5], { engaged }))
    // Scores 1, .99, .98, .97, .96: the click lifts p2 past p1 (.98 · 1.02 = .9996), not past p0;
    // the add lifts p4 to the top (.97 · 1.05).
    expect(rows(weighted)).toEqual([4, 0, 2, 1, 5])
    // A list whose order is the point (recently viewed) is not reordered.
    expect(rows(rerankCandidates(input([0, 1, 2, 4, 5], { engaged, reorder: false })))).toEqual([0, 1, 2, 4, 5]) // prettier-ignore
  })

  it('issue 11, 6: a product id that names an Object property gets no boost from the prototype', () => {
    // `boosts["constructor"] ?? 1` read Object's constructor and made every score NaN.
    const items = catalogue.items.map((item, i) =>
      i < 2 ? { ...item, id: ['constructor', '__proto__'][i]! } : item,
    )
    const shop = indexCatalogue(items, N_ITEMS)
    const listed = rerankCandidates(input([0, 1, 2], { lookup: shop }))
    expect(listed.map((r) => r.index)).toEqual([0, 1, 2])
    expect(listed.every((r) => Number.isFinite(r.score))).toBe(true)
  })

  it('keeps the ranked order when no rule applies', () => {
    expect(rows(rerankCandidates(input([8, 2, 9, 14])))).toEqual([8, 2, 9, 14])
  })

  it('drops out-of-stock items', () => {
    expect(rows(rerankCandidates(input([3, 8, 11, 9, 26])))).toEqual([8, 9])
  })

  it('drops the current item and the items in the cart', () => {
    const exclusions = { currentIndex: 9, cartProductIds: ['p2'], purchases: [], nowMs: NOW }
    expect(rows(rerankCandidates(input([8, 2, 9, 14], { exclusions })))).toEqual([8, 14])
  })

  it('drops items bought within excludePurchasedDays but not older purchases', () => {
    const purchases = [
      { productId: 'p8', timestamp: NOW - 2 * DAY_MS },
      { productId: 'p2', timestamp: NOW - 40 * DAY_MS },
      { productId: 'p9', timestamp: NOW - 29.9 * DAY_MS },
    ]
    const exclusions = { cartProductIds: [], purchases, nowMs: NOW }
    expect(rows(rerankCandidates(input([8, 2, 9, 14], { exclusions })))).toEqual([2, 14])
    const off = rules({ excludePurchasedDays: 0 })
    expect(rows(rerankCandidates(input([8, 2, 9, 14], { exclusions, rules: off })))).toEqual([
      8, 2, 9, 14,
    ])
  })

  it('keeps at most maxPerCategory items of one category, next best filling in', () => {
    // Categories are index % 4: 0, 4, 8 and 12 are all c0.
    const capped = rules({ maxPerCategory: 2 })
    const list = input([0, 4, 8, 1, 12, 5], { rules: capped, limit: 4 })
    expect(rows(rerankCandidates(list))).toEqual([0, 4, 1, 5])
  })

  it('keeps at most maxPerBrand items of one brand', () => {
    // Brands are index % 5: 0, 5 and 10 are all b0.
    const capped = rules({ maxPerBrand: 1 })
    const list = input([0, 5, 1, 10, 2], { rules: capped, limit: 3 })
    expect(rows(rerankCandidates(list))).toEqual([0, 1, 2])
  })

  it('issue 14: a cap that leaves the list short refills it with what it held back, in rank order', () => {
    // Six candidates, five of them c0 (index % 4 === 0); a cap of 2 used to return 3 items.
    const capped = rules({ maxPerCategory: 2 })
    const list = input([0, 4, 8, 12, 1, 16], { rules: capped, limit: 6 })
    expect(rows(rerankCandidates(list))).toEqual([0, 4, 1, 8, 12, 16])
    // The brand cap refills the same way: b0 is 0, 5, 10.
    const brand = input([0, 5, 10, 1], { rules: rules({ maxPerBrand: 1 }), limit: 4 })
    expect(rows(rerankCandidates(brand))).toEqual([0, 1, 5, 10])
  })

  it('issue 14: only caps refill a list; fewer eligible candidates than the limit stay fewer', () => {
    // 3 is out of stock: 8 and 4 (both c0) are all there is, the cap's refill included.
    const list = input([8, 3, 4], { rules: rules({ maxPerCategory: 1 }), limit: 6 })
    expect(rows(rerankCandidates(list))).toEqual([8, 4])
  })

  it('multiplies scores by boosts', () => {
    const boosted = rules({ boosts: { p14: 2, p8: 0.5 } })
    const result = rerankCandidates(input([8, 2, 9, 14], { rules: boosted }))
    expect(rows(result)).toEqual([14, 2, 9, 8])
    expect(result[0]!.score).toBeCloseTo(0.97 * 2, 5)
  })

  it('puts pins at their exact positions, taking them out of their organic place', () => {
    const pinned = rules({
      pins: {
        'for-you': [
          { productId: 'p14', position: 0 },
          { productId: 'p30', position: 2 },
        ],
      },
    })
    const result = rerankCandidates(input([8, 2, 9, 14, 6], { rules: pinned, limit: 4 }))
    expect(rows(result)).toEqual([14, 8, 30, 2])
    // p14 was recalled, so it keeps its source; p30 was not.
    expect(result.map((r) => r.source)).toEqual(['embedding', 'embedding', 'pinned', 'embedding'])
  })

  it('pins only for their own scenario and only items that may be shown', () => {
    const pinned = rules({
      pins: {
        similar: [{ productId: 'p14', position: 0 }],
        'for-you': [
          { productId: 'p3', position: 0 }, // out of stock
          { productId: 'p30', position: 1 },
        ],
      },
    })
    const exclusions = { cartProductIds: ['p30'], purchases: [], nowMs: NOW }
    expect(rows(rerankCandidates(input([8, 2, 9, 14], { rules: pinned, exclusions })))).toEqual([
      8, 2, 9, 14,
    ])
  })

  it('counts pins towards the caps without dropping them', () => {
    const pinned = rules({
      maxPerCategory: 1,
      pins: { 'for-you': [{ productId: 'p4', position: 1 }] },
    })
    // p4 is c0, so the organic c0 items (0, 8) are capped out of a list of 3.
    const list = input([0, 1, 8, 2], { rules: pinned, limit: 3 })
    expect(rows(rerankCandidates(list))).toEqual([1, 4, 2])
  })

  it('closes a pin up behind a list shorter than its position', () => {
    const pinned = rules({ pins: { 'for-you': [{ productId: 'p30', position: 7 }] } })
    expect(rows(rerankCandidates(input([8, 2], { rules: pinned })))).toEqual([8, 2, 30])
  })

  it('ignores pins at or beyond the limit', () => {
    const pinned = rules({ pins: { 'for-you': [{ productId: 'p30', position: 3 }] } })
    expect(rows(rerankCandidates(input([8, 2, 9, 14], { rules: pinned, limit: 3 })))).toEqual([
      8, 2, 9,
    ])
  })

  it('is stable: equal scores keep recall order, and the same input gives the same list', () => {
    const tied = input([8, 2, 9, 14], { scores: new Float32Array([0.5, 0.5, 0.5, 0.5]) })
    expect(rows(rerankCandidates(tied))).toEqual([8, 2, 9, 14])
    expect(rerankCandidates(tied)).toEqual(rerankCandidates(tied))
  })

  it('leaves the order alone when reorder is off (recently viewed)', () => {
    const boosted = rules({ boosts: { p14: 10 }, maxPerCategory: 1 })
    const result = rerankCandidates(input([8, 4, 2, 14], { rules: boosted, reorder: false }))
    expect(rows(result)).toEqual([8, 4, 2, 14])
  })

  it('cuts the list at the limit', () => {
    expect(rows(rerankCandidates(input([8, 2, 9, 14], { limit: 2 })))).toEqual([8, 2])
  })
})
