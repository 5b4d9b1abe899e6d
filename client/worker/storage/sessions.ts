// How events become sessions, the sequences the GRU consumes. Pure: the event store applies these
// inside its write transaction.
import type { TrackEvent } from '../../../shared/events'
import type { StoredSession } from './schema'

/** Inactivity that ends a visit, as in web analytics. */
export const DEFAULT_SESSION_GAP_MS = 30 * 60 * 1000

/** Longest sequence kept per session; older items fall off the front. */
export const MAX_SESSION_ITEMS = 200

export type NewSession = Omit<StoredSession, 'id'>

/** The product an event adds to the session sequence: views, clicks and cart adds only. */
export function getSessionProduct(event: TrackEvent): string | null {
  switch (event.event) {
    case 'Product Viewed':
    case 'Product Clicked':
    case 'Product Added':
      return event.properties.product_id
    default:
      return null
  }
}

/** A session ends after `gapMs` or more without events: an event exactly `gapMs` later starts a new one. */
export function isSessionOver(session: NewSession, timestampMs: number, gapMs: number): boolean {
  return timestampMs - session.endMs >= gapMs
}

function appendProduct(productIds: string[], productId: string | null): string[] {
  // Clicking a recommendation and then viewing its page is one interaction, not two.
  if (productId === null || productIds[productIds.length - 1] === productId) return productIds
  const next = [...productIds, productId]
  return next.length > MAX_SESSION_ITEMS ? next.slice(next.length - MAX_SESSION_ITEMS) : next
}

export function startSession(event: TrackEvent, timestampMs: number): NewSession {
  return {
    startMs: timestampMs,
    endMs: timestampMs,
    productIds: appendProduct([], getSessionProduct(event)),
    eventCount: 1,
  }
}

/** Adds an event to a session; a late (replayed) event widens the span instead of shrinking it. */
export function extendSession<S extends NewSession>(
  session: S,
  event: TrackEvent,
  timestampMs: number,
): S {
  return {
    ...session,
    startMs: Math.min(session.startMs, timestampMs),
    endMs: Math.max(session.endMs, timestampMs),
    productIds: appendProduct(session.productIds, getSessionProduct(event)),
    eventCount: session.eventCount + 1,
  }
}
