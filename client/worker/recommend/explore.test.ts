import { describe, expect, it } from 'vitest'
import { createRandom } from '../../../shared/random'
import { exploreBucket } from '../../../shared/outcome-counts'
import { fleetTotals } from '../../../test/fixtures/exploration-totals'
import { explorePrior, fleetDraw } from '../exploration-totals'
import { exploreSlots, placeExplored, planExploration, thompsonScores } from './explore'
import { createPoolsRecommender } from './pools-only'
import type { RankedItem } from './rerank'
import { catalogue, emptyContext, id, lookup, noRules, pools } from './test-fixtures'

const item = (index: number): RankedItem => ({ index, source: 'embedding', score: 1 })

describe('exploration (P30e)', () => {
  it('gives a list its share of slots, the fraction drawn', () => {
    const random = createRandom(1)
    expect(exploreSlots(20, 0.1, random)).toBe(2)
    expect(exploreSlots(10, 0.5, random)).toBe(5)
    const draws = Array.from({ length: 4000 }, () => exploreSlots(4, 0.1, random))
    expect(draws.every((n) => n === 0 || n === 1)).toBe(true)
    expect(draws.filter((n) => n === 1).length / 4000).toBeCloseTo(0.4, 1)
    expect(() => exploreSlots(10, 0.6, random)).toThrow(RangeError)
    expect(() => exploreSlots(10, 0, random)).toThrow(RangeError)
  })

  it('draws an item shown often and never clicked less often than one never shown', () => {
    const random = createRandom(2)
    const candidates = [
      { index: 1, source: 'new' as const },
      { index: 2, source: 'new' as const },
    ]
    const shown = new Map([[1, 12]])
    let unseenWins = 0
    for (let i = 0; i < 2000; i++) {
      const [often, never] = thompsonScores(candidates, (index) => shown.get(index) ?? 0, random)
      expect(often).toBeGreaterThan(0)
      if (never! > often!) unseenWins++
    }
    // Beta(1, 1) against Beta(1, 13): the unseen one wins 13 draws in 14.
    expect(unseenWins / 2000).toBeCloseTo(13 / 14, 1)
  })

  it('follows the fleet’s counts (P30f): what others clicked is drawn more, what they ignored less', () => {
    const totals = fleetTotals(0)
    const set = (productId: string, shown: number, clicked: number) => {
      totals.shown[exploreBucket(productId)] = shown
      totals.clicked[exploreBucket(productId)] = clicked
    }
    set('p1', 200, 20) // clicked one time in ten
    set('p2', 200, 0) // ignored
    set('p3', -5, -2) // noise below zero: no evidence
    expect(explorePrior(totals, 'p1')).toEqual({ clicks: 20, misses: 180 })
    expect(explorePrior(totals, 'p3')).toEqual({ clicks: 0, misses: 0 })
    const ids = ['p1', 'p2', 'p3']
    const candidates = [1, 2, 3].map((index) => ({ index, source: 'new' as const }))
    const random = createRandom(5)
    const wins = [0, 0, 0]
    const draws: number[] = []
    const draw = fleetDraw(totals)
    for (let i = 0; i < 3000; i++) {
      const scores = thompsonScores(candidates, () => 0, random, (index, n, r) => draw(ids[index - 1]!, n, r)) // prettier-ignore
      wins[scores.indexOf(Math.max(...scores))]!++
      draws.push(scores[0]!)
    }
    // p1's draws are Beta(21, 181): mean 0.104; p3, unseen by the fleet, still wins most.
    expect(draws.reduce((a, b) => a + b, 0) / draws.length).toBeCloseTo(21 / 202, 2)
    expect(wins[0]! / 3000).toBeGreaterThan(0.05)
    expect(wins[1]! / 3000).toBeLessThan(0.01)
    expect(wins[2]!).toBeGreaterThan(wins[0]!)
    // A list request carries them: the new item the fleet clicked takes the one slot.
    for (const index of pools.new) set(id(index), 500, 0)
    set(id(pools.new[1]!), 500, 250)
    const explore = { share: 0.2, random: createRandom(7), draw: fleetDraw(totals) }
    const plan = planExploration(explore, { scenario: 'trending', limit: 5 }, pools, lookup, undefined) // prettier-ignore
    const best = plan!.scores.indexOf(Math.max(...plan!.scores))
    expect(plan!.candidates[best]!.index).toBe(pools.new[1])
    // The shopper's own impressions add to the fleet's misses.
    const shownHere = thompsonScores(candidates.slice(0, 1), () => 1000, createRandom(6), (_, n, r) => draw('p1', n, r)) // prettier-ignore
    expect(shownHere[0]).toBeLessThan(0.05)
  })

  it('puts the explored items at the end of equal blocks, marked, and keeps the list’s length', () => {
    const ranked = Array.from({ length: 18 }, (_, i) => item(i))
    const placed = placeExplored(ranked, [item(100), item(101)], 20)
    expect(placed).toHaveLength(20)
    expect(placed.map((r, i) => (r.source === 'explore' ? i : -1)).filter((i) => i >= 0)).toEqual([9, 19]) // prettier-ignore
    expect(placed.filter((r) => r.source !== 'explore').map((r) => r.index)).toEqual(ranked.map((r) => r.index)) // prettier-ignore
    // Fewer model items than their slots: the explored ones fill in.
    expect(placeExplored([item(0)], [item(100)], 10).map((r) => r.index)).toEqual([0, 100])
  })

  it('serves its share of slots from the new items, never one the list or the page shows already', () => {
    const recommender = createPoolsRecommender({ catalogue, pools, rules: noRules, version: 'v1' })
    const explore = { share: 0.5, random: createRandom(3) }
    const response = recommender.recommend(
      { scenario: 'trending', limit: 6 },
      { ...emptyContext, explore },
    )
    const explored = response.items.filter((r) => r.source === 'explore').map((r) => r.productId)
    expect(explored).toHaveLength(3)
    expect(explored.every((p) => pools.new.map(id).includes(p))).toBe(true)
    expect(new Set(response.items.map((r) => r.productId)).size).toBe(6)
    // Recently viewed is the shopper's own history: never explored.
    const history = recommender.recommend(
      { scenario: 'recently-viewed', limit: 6 },
      { ...emptyContext, recentlyViewed: ['p1', 'p2'], explore },
    )
    expect(history.items.some((r) => r.source === 'explore')).toBe(false)
    // No share: no exploration.
    expect(planExploration(undefined, { scenario: 'trending', limit: 6 }, pools, lookup, undefined)).toBeUndefined() // prettier-ignore
  })

  it('leaves the model the slots no eligible new item takes, so the list keeps its length', () => {
    const recommender = createPoolsRecommender({ catalogue, pools, rules: noRules, version: 'v1' })
    // Every new item is in the cart: none may be shown.
    const cart = pools.new.map(id)
    const response = recommender.recommend(
      { scenario: 'trending', limit: 6 },
      { ...emptyContext, cartProductIds: cart, explore: { share: 0.5, random: createRandom(4) } },
    )
    expect(response.items).toHaveLength(6)
    expect(response.items.some((r) => r.source === 'explore')).toBe(false)
  })
})
