// The recommend boundary: requests arrive from the page through comlink, so nothing about their
// shape is trusted. Past this file the stages trust the types.
import type { RecommendRequest, Scenario } from '../../../shared/protocol'
import type { CatalogueLookup } from './catalogue-lookup'
import { PocketrecError, type RequestErrorCode } from '../../../shared/errors'

export const SCENARIOS: readonly Scenario[] = [
  'for-you',
  'similar',
  'frequently-bought-together',
  'trending',
  'recently-viewed',
]

/** Scenarios that are about one product and cannot run without it. */
const NEEDS_PRODUCT: ReadonlySet<Scenario> = new Set(['similar', 'frequently-bought-together'])

export const DEFAULT_LIMIT = 10
export const MAX_LIMIT = 50

export type InvalidRequestCode = RequestErrorCode | 'E_CONFIG'

/** A recommend request the worker cannot serve; the page branches on `name` (comlink keeps it). */
export class InvalidRequestError extends PocketrecError<InvalidRequestCode> {
  constructor(code: InvalidRequestCode, message: string) {
    super('InvalidRequestError', code, message)
  }
}

/** A request with its defaults filled in. */
export interface ValidRequest {
  scenario: Scenario
  productId: string | undefined
  limit: number
  pageView: string | undefined
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string') return `"${value.length > 40 ? `${value.slice(0, 40)}…` : value}"`
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`
}

/**
 * Checks a request from the page and fills in the default limit. Throws InvalidRequestError
 * saying what was expected and what arrived. A product id is checked against the catalogue only
 * where the scenario needs it: a page may name a product the model has not seen yet.
 */
export function validateRecommendRequest(raw: unknown, lookup: CatalogueLookup): ValidRequest {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new InvalidRequestError(
      'E_REQUEST_SHAPE',
      `expected a request object, got ${describe(raw)}`,
    )
  }
  const { scenario, productId, limit, pageView } = raw as Partial<
    Record<keyof RecommendRequest, unknown>
  >
  if (!SCENARIOS.includes(scenario as Scenario)) {
    throw new InvalidRequestError(
      'E_REQUEST_SCENARIO',
      `expected scenario to be one of ${SCENARIOS.join(', ')}; got ${describe(scenario)}`,
    )
  }
  if (
    limit !== undefined &&
    (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
  ) {
    throw new InvalidRequestError(
      'E_REQUEST_LIMIT',
      `expected limit to be an integer from 1 to ${MAX_LIMIT}, got ${describe(limit)}`,
    )
  }
  if (productId !== undefined && (typeof productId !== 'string' || productId.length === 0)) {
    throw new InvalidRequestError(
      'E_REQUEST_PRODUCT',
      `expected productId to be a non-empty string, got ${describe(productId)}`,
    )
  }
  // Any non-empty string: the tag sends the page's URL, which has no useful length limit.
  if (pageView !== undefined && (typeof pageView !== 'string' || pageView.length === 0)) {
    throw new InvalidRequestError(
      'E_REQUEST_SHAPE',
      `expected pageView to be a non-empty string, got ${describe(pageView)}`,
    )
  }
  const valid = scenario as Scenario
  if (NEEDS_PRODUCT.has(valid)) {
    if (productId === undefined) {
      throw new InvalidRequestError(
        'E_REQUEST_PRODUCT',
        `expected a productId for scenario ${valid}, got none`,
      )
    }
    if (!lookup.byId.has(productId)) {
      throw new InvalidRequestError(
        'E_REQUEST_PRODUCT',
        `expected productId to name a catalogue product for scenario ${valid}, got unknown ${describe(productId)}`,
      )
    }
  }
  return {
    scenario: valid,
    productId,
    limit: (limit as number | undefined) ?? DEFAULT_LIMIT,
    pageView: pageView as string | undefined,
  }
}
