// Exploration (issue 15, P30e): an arm may give a bounded share of a list's slots to items with
// little data, the release's new items, chosen by Thompson sampling, so that a new item gets
// shown before anyone has clicked it and stops being shown to a shopper who never does. Each
// candidate's click probability has the posterior Beta(1, 1 + n), n its impressions to this
// shopper since their last click of it (exposure-store.ts; a click resets n, so the posterior
// starts over from the uniform prior): one draw each, the highest win. Beta(1, b) has the
// closed-form draw 1 − U^(1/b). Where the device has the fleet's counts (P30f), the request
// brings their draw instead (exploration-totals.ts, loaded with the model).
import type { CandidatePools, Scenario } from '../../../shared/protocol'
import type { CatalogueLookup } from './catalogue-lookup'
import type { Exploration } from './page-views'
import type { Candidate } from './recall'
import type { RankedItem } from './rerank'

/** At most half of a list explores: the rest is the model's. */
export const MAX_EXPLORE_SHARE = 0.5

/**
 * Slots of a list of `limit` items given to exploration: `share · limit`, its fraction drawn, so
 * that short lists explore in the same share on average (a list of 4 at 0.1: one slot 40 % of
 * the time).
 */
export function exploreSlots(limit: number, share: number, random: () => number): number {
  if (!(share > 0 && share <= MAX_EXPLORE_SHARE))
    throw new RangeError(`expected an exploration share in (0, ${MAX_EXPLORE_SHARE}], got ${share}`)
  const exact = limit * share
  return Math.floor(exact) + (random() < exact - Math.floor(exact) ? 1 : 0)
}

/** A candidate's Thompson draw from its impressions to this shopper since their last click. */
export type ExploreDraw = (index: number, impressions: number, random: () => number) => number

/** The device's own counts alone: Beta(1, 1 + n), drawn in closed form. */
const ownDraw: ExploreDraw = (_, impressions, random) =>
  1 - (1 - random()) ** (1 / (1 + impressions))

/** One Thompson draw per candidate: Beta(1, 1 + its impressions since its last click) by default. */
export function thompsonScores(
  candidates: readonly Candidate[],
  impressionsOf: (index: number) => number,
  random: () => number,
  draw: ExploreDraw = ownDraw,
): Float32Array {
  return Float32Array.from(candidates, ({ index }) => {
    const value = draw(index, impressionsOf(index), random)
    // Scores must be positive for the re-ranker's multiplicative boosts.
    return Math.max(value, Number.MIN_VALUE)
  })
}

/**
 * The model's items with the explored ones placed at the end of each of equal blocks (1 in 10:
 * the 10th and 20th of 20), marked with the source `explore`; explored items beyond the list's
 * length, or that the model's items leave no room for, are dropped.
 */
export function placeExplored(
  ranked: readonly RankedItem[],
  explored: readonly RankedItem[],
  limit: number,
): RankedItem[] {
  const total = Math.min(limit, ranked.length + explored.length)
  const out: RankedItem[] = []
  const block = limit / Math.max(1, explored.length)
  let model = 0
  let next = 0
  for (let position = 0; position < total; position++) {
    const due = next < explored.length && position >= Math.round((next + 1) * block) - 1
    if ((due || model >= ranked.length) && next < explored.length) {
      out.push({ ...explored[next++]!, source: 'explore' })
    } else if (model < ranked.length) {
      out.push(ranked[model++]!)
    }
  }
  return out
}

/** What a list request asks of exploration: the arm's share, and the draws' source of randomness. */
export interface ExploreRequest {
  share: number
  random?: () => number
  /** A draw with the fleet's counts as the prior (P30f), by product id, when the device has them. */
  draw?: (productId: string, impressions: number, random: () => number) => number
}

/**
 * A list's exploration, or undefined when it has none (no share, or a list whose order is the
 * point: recently viewed): its slots, and the release's new items with their Thompson draws.
 */
export function planExploration(
  request: ExploreRequest | undefined,
  list: { scenario: Scenario; limit: number },
  pools: Pick<CandidatePools, 'new'>,
  lookup: CatalogueLookup,
  impressions: ReadonlyMap<string, number> | undefined,
): Exploration | undefined {
  if (!request || list.scenario === 'recently-viewed') return undefined
  const random = request.random ?? Math.random
  const slots = exploreSlots(list.limit, request.share, random)
  if (slots === 0) return undefined
  const candidates = pools.new.map((index): Candidate => ({ index, source: 'new' }))
  const idOf = (index: number) => lookup.byIndex[index]!.id
  const impressionsOf = (index: number) => impressions?.get(idOf(index)) ?? 0
  const { draw } = request
  const byIndex: ExploreDraw | undefined = draw && ((index, n, r) => draw(idOf(index), n, r))
  return { slots, candidates, scores: thompsonScores(candidates, impressionsOf, random, byIndex) }
}
