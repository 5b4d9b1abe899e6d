// Shopper events as the script tag accepts them: Segment's e-commerce spec names and the fields
// we use. The worker validates every event here before anything is stored (a boundary).
import { MAX_ATTRIBUTION_LENGTH } from './experiments'

export const EVENT_NAMES = [
  'Product Viewed',
  'Product List Viewed',
  'Product Clicked',
  'Product Added',
  'Product Removed',
  'Order Completed',
  'Products Searched',
] as const

export type EventName = (typeof EVENT_NAMES)[number]

/**
 * How strongly a shopper engaged with a product, weakest first: the kinds a shop's event weights
 * name (RerankRules.eventWeights, P30d); a session keeps each product's strongest as its index.
 */
export const ENGAGEMENTS = ['view', 'click', 'add', 'purchase'] as const

/** An engagement's weight relative to a view under the shop's weights; 1 without any. */
export function engagementWeight(
  weights: Readonly<Record<(typeof ENGAGEMENTS)[number], number>> | undefined,
  strength = 0,
): number {
  return weights ? weights[ENGAGEMENTS[strength] ?? 'view'] / weights.view : 1
}

/** One product as events carry it; `product_id` is the shop's own id (a SKU, a slug…). */
export interface ProductRef {
  product_id: string
  category?: string
  brand?: string
  price?: number
  quantity?: number
}

interface EventBase {
  /** Milliseconds since the epoch; the worker stamps events that arrive without one. */
  timestamp?: number
  /** The `attributionId` of the recommendation list the shopper acted on, if any. */
  attribution_id?: string
}

export type TrackEvent =
  | (EventBase & { event: 'Product Viewed'; properties: ProductRef })
  | (EventBase & { event: 'Product Clicked'; properties: ProductRef })
  | (EventBase & { event: 'Product Added'; properties: ProductRef })
  | (EventBase & { event: 'Product Removed'; properties: ProductRef })
  | (EventBase & {
      event: 'Product List Viewed'
      properties: { list_id?: string; category?: string; products: ProductRef[] }
    })
  | (EventBase & {
      event: 'Order Completed'
      properties: { order_id: string; products: ProductRef[]; total?: number }
    })
  | (EventBase & { event: 'Products Searched'; properties: { query: string } })

export type EventValidation = { ok: true; event: TrackEvent } | { ok: false; error: string }

const MAX_ID_LENGTH = 200
const MAX_PRODUCTS = 200
const MAX_QUERY_LENGTH = 500

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string') return `"${value.length > 40 ? `${value.slice(0, 40)}…` : value}"`
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function checkId(value: unknown, field: string): string | null {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ID_LENGTH) {
    return `expected ${field} to be a non-empty string of at most ${MAX_ID_LENGTH} characters, got ${describe(value)}`
  }
  return null
}

function checkOptionalNumber(value: unknown, field: string, min: number): string | null {
  if (value === undefined) return null
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    return `expected ${field} to be a finite number ≥ ${min}, got ${describe(value)}`
  }
  return null
}

function checkOptionalString(
  value: unknown,
  field: string,
  maxLength = MAX_ID_LENGTH,
): string | null {
  if (value === undefined) return null
  if (typeof value !== 'string' || value.length > maxLength) {
    return `expected ${field} to be a string of at most ${maxLength} characters, got ${describe(value)}`
  }
  return null
}

function checkProduct(raw: unknown, field: string): string | null {
  if (!isPlainObject(raw)) return `expected ${field} to be an object, got ${describe(raw)}`
  return (
    checkId(raw.product_id, `${field}.product_id`) ??
    checkOptionalString(raw.category, `${field}.category`) ??
    checkOptionalString(raw.brand, `${field}.brand`) ??
    checkOptionalNumber(raw.price, `${field}.price`, 0) ??
    checkOptionalNumber(raw.quantity, `${field}.quantity`, 0)
  )
}

function checkProducts(raw: unknown, field: string): string | null {
  if (!Array.isArray(raw) || raw.length > MAX_PRODUCTS) {
    return `expected ${field} to be an array of at most ${MAX_PRODUCTS} products, got ${describe(raw)}`
  }
  for (let i = 0; i < raw.length; i++) {
    const error = checkProduct(raw[i], `${field}[${i}]`)
    if (error) return error
  }
  return null
}

function checkProperties(name: EventName, p: Record<string, unknown>): string | null {
  switch (name) {
    case 'Product Viewed':
    case 'Product Clicked':
    case 'Product Added':
    case 'Product Removed':
      return checkProduct(p, 'properties')
    case 'Product List Viewed':
      return (
        checkOptionalString(p.list_id, 'properties.list_id') ??
        checkOptionalString(p.category, 'properties.category') ??
        checkProducts(p.products, 'properties.products')
      )
    case 'Order Completed':
      return (
        checkId(p.order_id, 'properties.order_id') ??
        checkProducts(p.products, 'properties.products') ??
        checkOptionalNumber(p.total, 'properties.total', 0)
      )
    case 'Products Searched':
      return typeof p.query === 'string' && p.query.length <= MAX_QUERY_LENGTH
        ? null
        : `expected properties.query to be a string of at most ${MAX_QUERY_LENGTH} characters, got ${describe(p.query)}`
  }
}

/** Checks an event from the page; the result says what was expected and what arrived. */
export function validateTrackEvent(raw: unknown): EventValidation {
  if (!isPlainObject(raw))
    return { ok: false, error: `expected an event object, got ${describe(raw)}` }
  if (!EVENT_NAMES.includes(raw.event as EventName)) {
    return {
      ok: false,
      error: `expected event to be one of ${EVENT_NAMES.join(', ')}; got ${describe(raw.event)}`,
    }
  }
  if (!isPlainObject(raw.properties)) {
    return {
      ok: false,
      error: `expected properties to be an object, got ${describe(raw.properties)}`,
    }
  }
  const error =
    checkOptionalNumber(raw.timestamp, 'timestamp', 0) ??
    checkOptionalString(raw.attribution_id, 'attribution_id', MAX_ATTRIBUTION_LENGTH) ??
    checkProperties(raw.event as EventName, raw.properties)
  return error ? { ok: false, error } : { ok: true, event: raw as unknown as TrackEvent }
}

export function isTrackEvent(raw: unknown): raw is TrackEvent {
  return validateTrackEvent(raw).ok
}
