import { describe, expect, it } from 'vitest'
import type { TrackEvent } from '../../shared/events'
import { exploreBucket, outcomeCell } from '../../shared/outcome-counts'
import type { ManifestExperiment } from '../../shared/protocol'
import { armsSuffix, type Placed } from './experiment-arms'
import {
  countEvent,
  countList,
  emptyOutcomeState,
  MAX_PENDING_REPORTS,
  REMEMBERED,
  rollPeriod,
} from './experiment-outcomes'

const holdout: ManifestExperiment = {
  id: 'holdout',
  key: 'k',
  arms: [
    { name: 'model', share: 1, lists: 'model' },
    { name: 'pools', share: 1, lists: 'pools' },
  ],
}
const placed: Placed[] = [{ experiment: holdout, arm: holdout.arms[1]!, group: 9 }]
const listId = (n: number) => `${n.toString(16).padStart(32, '0')}${armsSuffix(placed)}`

const clicked = (productId: string, attribution?: string): TrackEvent => ({
  event: 'Product Clicked',
  properties: { product_id: productId },
  ...(attribution ? { attribution_id: attribution } : {}),
})

describe('what a device counts for its arms (P30)', () => {
  it('counts lists, the clicks on them, and the adds and orders of what was clicked', () => {
    const state = emptyOutcomeState()
    countList(state, placed, listId(1), 'for-you')
    countList(state, placed, listId(2), 'similar')
    countList(state, placed, listId(3), 'similar')
    expect(countEvent(state, clicked('sku-1', listId(2)))).toBe(true)
    expect(countEvent(state, clicked('sku-2', listId(1)))).toBe(true)
    // Added without an attribution id: credited to the list sku-1 was clicked from.
    expect(countEvent(state, { event: 'Product Added', properties: { product_id: 'sku-1' } })).toBe(
      true,
    )
    const order: TrackEvent = {
      event: 'Order Completed',
      properties: {
        order_id: 'o-1',
        products: [
          { product_id: 'sku-1', price: 20, quantity: 2 },
          { product_id: 'sku-2', price: 15.4 },
          { product_id: 'sku-9', price: 99 }, // never clicked from a list
        ],
      },
    }
    expect(countEvent(state, order)).toBe(true)
    const [counter] = state.counters
    expect(counter).toMatchObject({ experiment: 'holdout', key: 'k', arm: 'pools', group: 9 })
    const at = (
      scenario: 'for-you' | 'similar',
      metric: 'lists' | 'clicks' | 'adds' | 'purchases' | 'revenue',
    ) => counter!.counts[outcomeCell(scenario, metric)]
    expect([at('similar', 'lists'), at('similar', 'clicks'), at('similar', 'adds')]).toEqual([
      2, 1, 1,
    ])
    expect([at('similar', 'purchases'), at('similar', 'revenue')]).toEqual([1, 40])
    expect([
      at('for-you', 'lists'),
      at('for-you', 'clicks'),
      at('for-you', 'purchases'),
      at('for-you', 'revenue'),
    ]).toEqual([1, 1, 1, 15])
    expect(JSON.stringify(state.counters)).not.toContain('sku')
  })

  it('credits nothing for a list it never served, an id without arms, or a device in no experiment', () => {
    const state = emptyOutcomeState()
    countList(state, placed, listId(1), 'for-you')
    const before = structuredClone(state)
    expect(countEvent(state, clicked('sku-1', listId(99)))).toBe(false)
    expect(countEvent(state, clicked('sku-1'))).toBe(false)
    expect(
      countEvent(state, { event: 'Product Viewed', properties: { product_id: 'sku-1' } }),
    ).toBe(false)
    expect(countEvent(state, { event: 'Product Added', properties: { product_id: 'sku-1' } })).toBe(
      false,
    )
    expect(state).toEqual(before)
    const none = emptyOutcomeState()
    countList(none, [], 'f'.repeat(32), 'for-you')
    expect(none).toEqual(emptyOutcomeState())
  })

  it('counts the exploring arm’s impressions and clicks of explored items by bucket only (P30f)', () => {
    const other: ManifestExperiment = { id: 'rules', key: 'r', arms: [{ name: 'a', share: 1, lists: 'model' }, { name: 'explore', share: 1, lists: 'model', explore: 0.1 }] } // prettier-ignore
    const both: Placed[] = [...placed, { experiment: other, arm: other.arms[1]!, group: 3 }]
    const id = (n: number) => `${n.toString(16).padStart(32, '0')}${armsSuffix(both)}`
    const state = emptyOutcomeState()
    const slots = { experiment: 'rules', arm: 'explore', productIds: ['new-1', 'new-2'] }
    countList(state, both, id(1), 'for-you', slots)
    countList(state, both, id(2), 'for-you', { ...slots, productIds: ['new-1'] })
    countList(state, both, id(3), 'for-you')
    const [holdoutCounter, exploring] = state.counters
    // The holdout's arm did not explore: its report carries no exploration counts.
    expect(holdoutCounter!.explored).toBeUndefined()
    const bucket = (productId: string) => exploring!.explored!.find(([b]) => b === exploreBucket(productId)) // prettier-ignore
    expect(bucket('new-1')).toEqual([exploreBucket('new-1'), 2, 0])
    expect(bucket('new-2')).toEqual([exploreBucket('new-2'), 1, 0])
    // A click on an explored item counts in its bucket; one on the list's model item does not,
    // nor one on an item that list did not explore.
    expect(countEvent(state, clicked('new-2', id(1)))).toBe(true)
    expect(countEvent(state, clicked('sku-7', id(1)))).toBe(true)
    expect(countEvent(state, clicked('new-2', id(2)))).toBe(true)
    expect(bucket('new-2')).toEqual([exploreBucket('new-2'), 1, 1])
    expect(bucket('new-1')).toEqual([exploreBucket('new-1'), 2, 0])
    expect(JSON.stringify(state.counters)).not.toContain('new-')
    // Yesterday's explored list clicked today: today's counter of that arm takes the click.
    rollPeriod(state, 200)
    rollPeriod(state, 201)
    expect(countEvent(state, clicked('new-1', id(2)))).toBe(true)
    const today = state.counters.find((c) => c.experiment === 'rules')!
    expect(today.explored).toEqual([[exploreBucket('new-1'), 0, 1]])
  })

  it('remembers only the last lists and clicks', () => {
    const state = emptyOutcomeState()
    for (let n = 0; n < REMEMBERED + 20; n++) countList(state, placed, listId(n), 'trending')
    expect(state.lists).toHaveLength(REMEMBERED)
    expect(countEvent(state, clicked('a', listId(0)))).toBe(false)
    expect(countEvent(state, clicked('a', listId(REMEMBERED + 19)))).toBe(true)
    expect(state.counters[0]!.counts[outcomeCell('trending', 'lists')]).toBe(REMEMBERED + 20)
  })

  it('closes a day’s counters when the next day begins, and credits today for yesterday’s list', () => {
    const state = emptyOutcomeState()
    expect(rollPeriod(state, 100)).toBe(true)
    countList(state, placed, listId(1), 'similar')
    expect(rollPeriod(state, 100)).toBe(false)
    expect(rollPeriod(state, 101)).toBe(true)
    expect(state.counters).toEqual([])
    expect(state.closed).toHaveLength(1)
    expect(state.closed[0]).toMatchObject({ period: 100, arm: 'pools', arms: ['model', 'pools'] })
    expect(state.closed[0]!.counts[outcomeCell('similar', 'lists')]).toBe(1)
    // A click today on the list of day 100 counts for day 101, in the same arm and group.
    expect(countEvent(state, clicked('sku-1', listId(1)))).toBe(true)
    expect(state.counters).toHaveLength(1)
    expect(state.counters[0]).toMatchObject({ arm: 'pools', group: 9 })
    expect(state.counters[0]!.counts[outcomeCell('similar', 'clicks')]).toBe(1)
    // A day with no count closes nothing; the closed counters are bounded.
    rollPeriod(state, 102)
    for (let day = 103; day < 103 + 2 * MAX_PENDING_REPORTS; day++) {
      countList(state, placed, listId(day), 'trending')
      rollPeriod(state, day + 1)
    }
    expect(state.closed).toHaveLength(MAX_PENDING_REPORTS)
    expect(state.closed.at(-1)!.period).toBe(102 + 2 * MAX_PENDING_REPORTS)
  })
})
