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

/** How strongly an event engages with its products: its index in ENGAGEMENTS (shared/events.ts). */
function strengthOf(event: TrackEvent): number {
  switch (event.event) {
    case 'Product Clicked':
      return 1
    case 'Product Added':
      return 2
    case 'Order Completed':
      return 3
    default:
      return 0
  }
}

/** A session ends after `gapMs` or more without events: an event exactly `gapMs` later starts a new one. */
export function isSessionOver(session: NewSession, timestampMs: number, gapMs: number): boolean {
  return timestampMs - session.endMs >= gapMs
}

/**
 * The event applied to the sequence, its strengths and dwell: its product appended (a consecutive
 * repeat collapsed, keeping the stronger event and the longer dwell), or, for an order, each
 * bought product of the session raised to "bought".
 */
function applyEvent(
  session: Pick<NewSession, 'productIds' | 'strengths' | 'dwell'>,
  event: TrackEvent,
): Pick<NewSession, 'productIds' | 'strengths' | 'dwell'> {
  const productIds = session.productIds
  const strengths = session.strengths?.slice() ?? productIds.map(() => 0)
  const dwell = session.dwell?.slice() ?? productIds.map(() => 0)
  const strength = strengthOf(event)
  const seconds = event.event === 'Product Viewed' ? (event.properties.dwell_seconds ?? 0) : 0
  if (event.event === 'Order Completed') {
    const bought = new Set(event.properties.products.map((p) => p.product_id))
    productIds.forEach((id, i) => bought.has(id) && (strengths[i] = Math.max(strengths[i]!, 3)))
    return { productIds, strengths, dwell }
  }
  const productId = getSessionProduct(event)
  if (productId === null) return { productIds, strengths, dwell }
  // Clicking a recommendation and then viewing its page is one interaction, not two.
  const last = productIds.length - 1
  if (productIds[last] === productId) {
    strengths[last] = Math.max(strengths[last]!, strength)
    dwell[last] = Math.max(dwell[last]!, seconds)
    return { productIds, strengths, dwell }
  }
  const next = [...productIds, productId]
  strengths.push(strength)
  dwell.push(seconds)
  const drop = Math.max(0, next.length - MAX_SESSION_ITEMS)
  return {
    productIds: next.slice(drop),
    strengths: strengths.slice(drop),
    dwell: dwell.slice(drop),
  }
}

export function startSession(event: TrackEvent, timestampMs: number): NewSession {
  return {
    startMs: timestampMs,
    endMs: timestampMs,
    ...applyEvent({ productIds: [], strengths: [], dwell: [] }, event),
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
    ...applyEvent(session, event),
    eventCount: session.eventCount + 1,
  }
}
