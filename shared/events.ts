// Shopper events as the script tag accepts them: Segment's e-commerce spec names and the fields
// we use. The worker validates every event here before anything is stored (a boundary).
import { MAX_ATTRIBUTION_LENGTH } from './experiments'
import type { EventWeights } from './protocol'

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

/** Dwell counts up to this many seconds (a tab left open is not interest). */
export const MAX_DWELL_SECONDS = 600

/**
 * A product's weight relative to a view under the shop's event weights (1 without any): its
 * strongest engagement's, plus `dwellPerMinute` for each minute the shopper spent on its page
 * where the shop reports it (`dwell_seconds` of Product Viewed), up to MAX_DWELL_SECONDS.
 */
export function engagementWeight(
  weights: EventWeights | undefined,
  strength = 0,
  dwellSeconds = 0,
): number {
  if (!weights) return 1
  const dwell = (weights.dwellPerMinute ?? 0) * (Math.min(dwellSeconds, MAX_DWELL_SECONDS) / 60)
  return (weights[ENGAGEMENTS[strength] ?? 'view'] + dwell) / weights.view
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
  | (EventBase & {
      event: 'Product Viewed'
      /** `dwell_seconds`: how long the shopper stayed on the product's page, where the shop measures it. */
      properties: ProductRef & { dwell_seconds?: number }
    })
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

function checkOptionalNumber(
  value: unknown,
  field: string,
  min: number,
  max = Infinity,
): string | null {
  if (value === undefined) return null
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    const range = max === Infinity ? `≥ ${min}` : `from ${min} to ${max}`
    return `expected ${field} to be a finite number ${range}, got ${describe(value)}`
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
      return (
        checkProduct(p, 'properties') ??
        checkOptionalNumber(p.dwell_seconds, 'properties.dwell_seconds', 0, 86_400)
      )
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
