// Exposure de-duplication within one page view: the shelves of one page (similar, frequently
// bought together, for you…) never show the same item twice. The tag names the page view (its
// URL) in every recommend of a page; this remembers, per page view, what each shelf was given.
// Memory only, and only for the last few page views: it is about the page on screen.

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
