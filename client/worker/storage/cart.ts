// The cart as events describe it: added minus removed, emptied by an order. Kept as one meta
// record updated with each event, so it outlives the pruning of the events that built it.
import type { TrackEvent } from '../../../shared/events'
import type { CartItem } from './schema'

export const MAX_CART_ITEMS = 200

// Quantities arrive as any finite number ≥ 0 from the page; the cart counts whole items.
function toQuantity(quantity: number | undefined): number {
  return quantity === undefined ? 1 : Math.round(quantity)
}

/** The cart after `event`, or null when the event does not touch the cart. */
export function applyCartEvent(
  items: CartItem[],
  event: TrackEvent,
  timestampMs: number,
): CartItem[] | null {
  switch (event.event) {
    case 'Product Added': {
      const productId = event.properties.product_id
      const quantity = Math.max(1, toQuantity(event.properties.quantity))
      const existing = items.find((item) => item.productId === productId)
      if (existing) {
        return items.map((item) =>
          item === existing
            ? { productId, quantity: item.quantity + quantity, addedAtMs: timestampMs }
            : item,
        )
      }
      const next = [...items, { productId, quantity, addedAtMs: timestampMs }]
      return next.length > MAX_CART_ITEMS ? next.slice(next.length - MAX_CART_ITEMS) : next
    }
    case 'Product Removed': {
      const productId = event.properties.product_id
      // Without a quantity, Segment's "Product Removed" means the line is gone.
      const removed =
        event.properties.quantity === undefined ? Infinity : toQuantity(event.properties.quantity)
      return items.flatMap((item) => {
        if (item.productId !== productId) return [item]
        const quantity = item.quantity - removed
        return quantity > 0 ? [{ ...item, quantity }] : []
      })
    }
    case 'Order Completed':
      return []
    default:
      return null
  }
}
