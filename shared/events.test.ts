import { describe, expect, it } from 'vitest'
import { createRandom } from './random'
import { engagementWeight, EVENT_NAMES, validateTrackEvent } from './events'

const viewed = { event: 'Product Viewed', properties: { product_id: 'sku-1', price: 9.99 } }

describe('validateTrackEvent', () => {
  it('takes an attribution id that names four experiments’ arms (P30), and none longer', () => {
    const arms = Array.from(
      { length: 4 },
      (_, i) => `.${`e${i}`.padEnd(32, 'x')}:${'a'.repeat(32)}`,
    )
    const longest = `${'f'.repeat(32)}${arms.join('')}`
    const clicked = { event: 'Product Clicked', properties: { product_id: 'a' } }
    expect(validateTrackEvent({ ...clicked, attribution_id: longest }).ok).toBe(true)
    expect(validateTrackEvent({ ...clicked, attribution_id: `${longest}x` })).toMatchObject({
      ok: false,
      error: expect.stringContaining('attribution_id to be a string of at most 296 characters'),
    })
  })

  it('accepts each Segment e-commerce event with its properties', () => {
    const events = [
      viewed,
      { event: 'Product Clicked', properties: { product_id: 'a' }, attribution_id: 'r-1' },
      { event: 'Product Added', properties: { product_id: 'a', quantity: 2 } },
      { event: 'Product Removed', properties: { product_id: 'a' } },
      {
        event: 'Product List Viewed',
        properties: { category: 'shoes', products: [{ product_id: 'a' }] },
      },
      {
        event: 'Order Completed',
        properties: { order_id: 'o-1', products: [{ product_id: 'a', price: 3 }], total: 3 },
      },
      {
        event: 'Products Searched',
        properties: { query: 'red boots' },
        timestamp: 1_700_000_000_000,
      },
    ]
    expect(events.map((e) => e.event).sort()).toEqual([...EVENT_NAMES].sort())
    for (const event of events) expect(validateTrackEvent(event)).toEqual({ ok: true, event })
  })

  it.each([
    [null, 'expected an event object, got null'],
    [{ event: 'Product Liked', properties: {} }, 'got "Product Liked"'],
    [{ event: 'Product Viewed' }, 'expected properties to be an object, got undefined'],
    [
      { event: 'Product Viewed', properties: { product_id: 42 } },
      'expected properties.product_id to be a non-empty string',
    ],
    [{ event: 'Product Viewed', properties: { product_id: '' } }, 'got ""'],
    [
      { event: 'Product Added', properties: { product_id: 'a', quantity: -1 } },
      'expected properties.quantity to be a finite number ≥ 0, got number -1',
    ],
    [
      { event: 'Product Viewed', properties: { product_id: 'a', price: Number.NaN } },
      'got number NaN',
    ],
    [
      { event: 'Order Completed', properties: { order_id: 'o', products: [{}] } },
      'properties.products[0].product_id',
    ],
    [
      { event: 'Order Completed', properties: { order_id: 'o', products: 'a,b' } },
      'expected properties.products to be an array',
    ],
    [
      { event: 'Products Searched', properties: { query: 'x'.repeat(501) } },
      'at most 500 characters',
    ],
    [{ ...viewed, timestamp: 'yesterday' }, 'expected timestamp to be a finite number'],
  ])('rejects %j saying what was expected', (raw, message) => {
    const result = validateTrackEvent(raw)
    expect(result.ok).toBe(false)
    expect(result.ok ? '' : result.error).toContain(message)
  })

  it('never throws on random garbage', () => {
    const random = createRandom(3)
    const pick = <T>(xs: T[]) => xs[Math.floor(random() * xs.length)]!
    const values: unknown[] = [
      null,
      undefined,
      0,
      -1,
      NaN,
      '',
      'x',
      [],
      {},
      [1],
      { product_id: 'a' },
      true,
    ]
    for (let i = 0; i < 2_000; i++) {
      const raw = {
        event: pick([...EVENT_NAMES, 'x', 3]),
        properties: pick([
          ...values,
          {
            product_id: pick(values),
            products: pick(values),
            query: pick(values),
            order_id: pick(values),
          },
        ]),
        timestamp: pick(values),
      }
      expect(() => validateTrackEvent(raw)).not.toThrow()
    }
  })

  it('P30d: weighs a product by its strongest event and its dwell, capped, relative to a view', () => {
    const weights = { view: 2, click: 4, add: 8, purchase: 16, dwellPerMinute: 1 }
    expect(engagementWeight(undefined, 3, 600)).toBe(1)
    expect(engagementWeight(weights)).toBe(1)
    expect(engagementWeight(weights, 1)).toBe(2)
    expect(engagementWeight(weights, 3)).toBe(8)
    // Two minutes on the page add 2 to a view's 2; an hour counts as ten minutes.
    expect(engagementWeight(weights, 0, 120)).toBe(2)
    expect(engagementWeight(weights, 0, 3600)).toBe(6)
    expect(engagementWeight({ ...weights, dwellPerMinute: undefined }, 0, 3600)).toBe(1)
  })

  it('takes dwell_seconds on a product view, and refuses a negative or absurd one', () => {
    const view = (dwell: unknown) => validateTrackEvent({ event: 'Product Viewed', properties: { product_id: 'a', dwell_seconds: dwell } }) // prettier-ignore
    expect(view(35).ok).toBe(true)
    expect(view(-1)).toMatchObject({ ok: false, error: expect.stringMatching(/dwell_seconds/) })
    expect(view(1e9)).toMatchObject({ ok: false, error: expect.stringMatching(/from 0 to 86400/) })
  })
})
