// Held-out cases for the worker's recommendation lists (bench:recall-index):
// one prefix per session, sessions evenly spread, the cut point cycling through each session's
// positions; and how often the for-you list holds a case's next item.
import type { Recommender } from '../client/worker/recommend/recommend'

export interface ListCase {
  prefix: Int32Array
  next: number
}

/** Up to `wanted` cases from the sessions with at least two items. */
export function listCases(sessions: readonly Int32Array[], wanted: number): ListCase[] {
  const usable = sessions.filter((s) => s.length >= 2)
  const count = Math.min(wanted, usable.length)
  return Array.from({ length: count }, (_, i) => {
    const session = usable[Math.floor((i * usable.length) / count)]!
    const cut = 1 + (i % (session.length - 1))
    return { prefix: session.subarray(0, cut), next: session[cut]! }
  })
}

/**
 * The for-you top 20 for each case's prefix (as the shopper's session; no history, cart or
 * purchases): how many hold the next item, and each call's latency (ms).
 */
export async function forYouHits(
  recommender: Recommender,
  cases: readonly ListCase[],
  idOf: readonly string[],
): Promise<{ hits: number; ms: number[] }> {
  let hits = 0
  const ms: number[] = []
  for (const c of cases) {
    const context = {
      sessionProductIds: Array.from(c.prefix, (i) => idOf[i]!),
      recentlyViewed: [],
      cartProductIds: [],
      purchases: [],
    }
    const response = await recommender.recommend({ scenario: 'for-you', limit: 20 }, context)
    ms.push(response.latencyMs)
    if (response.items.some((item) => item.productId === idOf[c.next])) hits++
  }
  return { hits, ms }
}
