// Exposure de-duplication within one page view: the shelves of one page (similar, frequently
// bought together, for you…) never show the same item twice. The tag names the page view (its
// URL) in every recommend of a page; this remembers, per page view, what each shelf was given.
// Memory only, and only for the last few page views: it is about the page on screen.
import { placeExplored } from './explore'
import type { Candidate } from './recall'
import { rerankCandidates, type RankedItem, type RerankInput } from './rerank'

/** Page views remembered; an older one's shelves are forgotten (they are off screen). */
export const PAGE_VIEWS_KEPT = 8

/** One shelf of one page view. */
export interface PageShelf {
  /** Product ids the page's other shelves already show. */
  taken(): ReadonlySet<string>
  /** Records what this shelf now shows, replacing what it showed before (a re-render). */
  claim(productIds: readonly string[]): void
}

export interface PageViews {
  /**
   * The shelf `shelfKey` of page view `pageViewId`. Call `taken` and `claim` in one synchronous
   * step (no await between): then concurrent requests of one page can never overlap.
   */
  shelf(pageViewId: string, shelfKey: string): PageShelf
  /** Forgets every page view (consent withdrawn). */
  clear(): void
}

export function createPageViews(kept = PAGE_VIEWS_KEPT): PageViews {
  // Insertion order is recency: a page view is moved to the end whenever it is used.
  const views = new Map<string, Map<string, readonly string[]>>()

  function shelvesOf(pageViewId: string): Map<string, readonly string[]> {
    const shelves = views.get(pageViewId) ?? new Map<string, readonly string[]>()
    views.delete(pageViewId)
    views.set(pageViewId, shelves)
    for (const oldest of views.keys()) {
      if (views.size <= kept) break
      views.delete(oldest)
    }
    return shelves
  }

  return {
    shelf(pageViewId, shelfKey) {
      return {
        taken() {
          const taken = new Set<string>()
          for (const [key, productIds] of shelvesOf(pageViewId)) {
            if (key !== shelfKey) for (const productId of productIds) taken.add(productId)
          }
          return taken
        },
        claim(productIds) {
          shelvesOf(pageViewId).set(shelfKey, [...productIds])
        },
      }
    },
    clear: () => views.clear(),
  }
}

/** Which page view and shelf a list is for, and where page views are remembered. */
export interface ShelfOfPage {
  pageViews?: PageViews
  pageView?: string
  productId?: string
}

/**
 * rerankCandidates for one shelf of a page view, the one way both recommenders (the model's and
 * the pools') make a list: what the page's other shelves show is left out, and this shelf's items
 * are claimed, in one synchronous step, so concurrent lists of one page view cannot overlap.
 * Recently viewed is the shopper's own history, so it is never cut (a history with holes would be
 * wrong), but it claims its items: shelves answered after it (the usual order, as it needs no
 * model) leave them out.
 */
export function rerankOnPage(
  input: RerankInput,
  page: ShelfOfPage,
  explore?: Exploration,
): RankedItem[] {
  const { scenario, lookup } = input
  const shelf =
    page.pageView === undefined
      ? undefined
      : page.pageViews?.shelf(page.pageView, `${scenario} ${page.productId ?? ''}`)
  const history = scenario === 'recently-viewed'
  const onPage = history ? undefined : shelf?.taken()
  let ranked = rerankCandidates({ ...input, exclusions: { ...input.exclusions, onPage } })
  const slots = explore?.slots ?? 0
  if (explore && slots > 0) {
    // The same rules (eligibility, boosts, caps) over the drawn scores, nothing the page or the
    // model's part of the list has already, no pins a second time, and no demotion: the draw has
    // counted impressions. Slots no eligible new item takes stay the model's.
    const kept = ranked.slice(0, input.limit - slots)
    const taken = new Set([...(onPage ?? []), ...kept.map(({ index }) => lookup.byIndex[index]!.id)]) // prettier-ignore
    const explored = rerankCandidates({
      ...input,
      candidates: explore.candidates,
      scores: explore.scores,
      limit: slots,
      rules: { ...input.rules, pins: {} },
      impressions: undefined,
      exclusions: { ...input.exclusions, onPage: taken },
    })
    const drawn = new Set(explored.map(({ index }) => index))
    const model = ranked.filter(({ index }) => !drawn.has(index))
    ranked = placeExplored(model.slice(0, input.limit - explored.length), explored, input.limit)
  }
  shelf?.claim(ranked.map(({ index }) => lookup.byIndex[index]!.id))
  return ranked
}

/** A list's exploration (explore.ts): its slots and the candidates' Thompson draws. */
export interface Exploration {
  slots: number
  candidates: readonly Candidate[]
  scores: Float32Array
}
