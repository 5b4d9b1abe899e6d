import { describe, expect, it } from 'vitest'
import type { TrackEvent } from '../../../shared/events'
import { applyCartEvent } from './cart'
import {
  DEFAULT_SESSION_GAP_MS,
  MAX_SESSION_ITEMS,
  extendSession,
  isSessionOver,
  startSession,
  type NewSession,
} from './sessions'

const T0 = 1_700_000_000_000

function product(
  event: 'Product Viewed' | 'Product Clicked' | 'Product Added',
  id: string,
): TrackEvent {
  return { event, properties: { product_id: id } }
}

describe('sessions', () => {
  it('ends a session after exactly the gap of inactivity, not a millisecond before', () => {
    const session = startSession(product('Product Viewed', 'a'), T0)
    expect(isSessionOver(session, T0 + DEFAULT_SESSION_GAP_MS - 1, DEFAULT_SESSION_GAP_MS)).toBe(
      false,
    )
    expect(isSessionOver(session, T0 + DEFAULT_SESSION_GAP_MS, DEFAULT_SESSION_GAP_MS)).toBe(true)
  })

  it('records views, clicks and adds in order and collapses consecutive repeats', () => {
    let session = startSession(product('Product Clicked', 'a'), T0)
    session = extendSession(session, product('Product Viewed', 'a'), T0 + 1)
    session = extendSession(session, product('Product Viewed', 'b'), T0 + 2)
    session = extendSession(session, product('Product Added', 'a'), T0 + 3)
    session = extendSession(
      session,
      { event: 'Products Searched', properties: { query: 'x' } },
      T0 + 4,
    )
    expect(session).toEqual({
      startMs: T0,
      endMs: T0 + 4,
      productIds: ['a', 'b', 'a'],
      // The click on a and its page view are one step: the stronger event (a click) stays.
      strengths: [1, 0, 2],
      dwell: [0, 0, 0],
      eventCount: 5,
    })
  })

  it('raises the products of an order to bought, and only those of this session (P30d)', () => {
    let session = startSession(product('Product Viewed', 'a'), T0)
    session = extendSession(session, product('Product Added', 'b'), T0 + 1)
    session = extendSession(session, product('Product Viewed', 'c'), T0 + 2)
    const order: TrackEvent = {
      event: 'Order Completed',
      properties: { order_id: 'o', products: [{ product_id: 'b' }, { product_id: 'z' }] },
    }
    session = extendSession(session, order, T0 + 3)
    expect(session.productIds).toEqual(['a', 'b', 'c'])
    expect(session.strengths).toEqual([0, 3, 0])
    // Dwell where the shop reports it: the longest per product, a repeat collapsed into one.
    let dwelt = startSession({ event: 'Product Viewed', properties: { product_id: 'a', dwell_seconds: 40 } }, T0) // prettier-ignore
    dwelt = extendSession(dwelt, { event: 'Product Viewed', properties: { product_id: 'a', dwell_seconds: 90 } }, T0 + 1) // prettier-ignore
    dwelt = extendSession(dwelt, product('Product Viewed', 'b'), T0 + 2)
    expect([dwelt.productIds, dwelt.dwell]).toEqual([
      ['a', 'b'],
      [90, 0],
    ])
    // A session stored before strengths existed: every product a view, then the order.
    const old: NewSession = { startMs: T0, endMs: T0, productIds: ['b', 'a'], eventCount: 2 }
    expect(extendSession(old, order, T0 + 1).strengths).toEqual([3, 0])
  })

  it('widens the span for a late event instead of shrinking it', () => {
    const session = extendSession(
      startSession(product('Product Viewed', 'a'), T0),
      product('Product Viewed', 'b'),
      T0 - 5,
    )
    expect([session.startMs, session.endMs]).toEqual([T0 - 5, T0])
  })

  it('keeps only the latest items of a very long session', () => {
    let session = startSession(product('Product Viewed', 'p0'), T0)
    for (let i = 1; i < MAX_SESSION_ITEMS + 10; i++) {
      session = extendSession(session, product('Product Viewed', `p${i}`), T0 + i)
    }
    expect(session.productIds).toHaveLength(MAX_SESSION_ITEMS)
    expect(session.productIds[0]).toBe('p10')
  })
})

describe('applyCartEvent', () => {
  it('adds, removes by quantity and empties on an order', () => {
    let cart = applyCartEvent(
      [],
      { event: 'Product Added', properties: { product_id: 'a', quantity: 2 } },
      1,
    )!
    cart = applyCartEvent(cart, { event: 'Product Added', properties: { product_id: 'b' } }, 2)!
    cart = applyCartEvent(
      cart,
      { event: 'Product Removed', properties: { product_id: 'a', quantity: 1 } },
      3,
    )!
    expect(cart).toEqual([
      { productId: 'a', quantity: 1, addedAtMs: 1 },
      { productId: 'b', quantity: 1, addedAtMs: 2 },
    ])
    cart = applyCartEvent(cart, { event: 'Product Removed', properties: { product_id: 'b' } }, 4)!
    expect(cart.map((item) => item.productId)).toEqual(['a'])
    expect(
      applyCartEvent(
        cart,
        { event: 'Order Completed', properties: { order_id: 'o', products: [] } },
        5,
      ),
    ).toEqual([])
  })

  it('leaves the cart alone for events that do not touch it', () => {
    expect(applyCartEvent([], product('Product Viewed', 'a'), 1)).toBeNull()
  })
})
