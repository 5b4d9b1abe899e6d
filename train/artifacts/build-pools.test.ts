import path from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { validateCandidatePools } from '../../shared/artifacts'
import type { Catalogue } from '../../shared/protocol'
import { countItems } from '../data/examples'
import { loadDataset } from '../data/load-dataset'
import { sharedDataDir } from '../data/paths'
import type { SessionDataset } from '../data/types'
import { buildCandidatePools, type BuiltPools } from './build-pools'
import { buildCoVisitation } from './co-visitation'
import { generateCatalogue } from './generate-catalogue'

function expectSortedBy(list: number[], key: (item: number) => number): void {
  for (let i = 1; i < list.length; i++) {
    expect(key(list[i - 1]!)).toBeGreaterThanOrEqual(key(list[i]!))
  }
}

describe('buildCandidatePools on a hand-made log', () => {
  const sessions = [
    [0, 1, 0, 2],
    [1, 2],
    [0, 3],
    [3, 4, 3],
    [4, 3],
  ].map((s) => Int32Array.from(s))
  const dataset = { nItems: 6, train: sessions }
  const catalogue: Catalogue = {
    type: 'pocketrec-catalogue',
    items: Array.from({ length: 6 }, (_, index) => ({
      id: `p-${index}`,
      index,
      name: `Item ${index}`,
      category: index < 3 ? 'A' : 'B',
      brand: 'Brand',
      price: 9.99,
      inStock: index !== 5,
      addedAt: new Date(Date.UTC(2026, 0, 1 + index)).toISOString(),
    })),
  }

  it('counts all sessions for popular, the last ones for trending, dates for new', () => {
    const { pools } = buildCandidatePools(dataset, catalogue, { trendingFraction: 0.4 })
    // Counts: 0→3, 1→2, 2→2, 3→4, 4→2; item 5 never viewed and left out.
    expect(pools.popular).toEqual([3, 0, 1, 2, 4])
    // The last 40 % (two sessions) saw 3 three times and 4 twice.
    expect(pools.trending).toEqual([3, 4])
    // Newest first, out-of-stock item 5 skipped.
    expect(pools.new).toEqual([4, 3, 2, 1, 0])
    expect(pools.byCategory).toEqual({ A: [0, 1, 2], B: [3, 4] })
    // (0,1) and (0,2) meet at distance 1 (counted once per session), (1,2) at 2 then 1.
    expect(pools.coVisitation).toEqual({
      '0': [1, 2, 3],
      '1': [2, 0],
      '2': [1, 0],
      '3': [4, 0],
      '4': [3],
    })
  })

  it('cuts co-visitation lists to the fallback length when the JSON is over budget', () => {
    const built = buildCandidatePools(dataset, catalogue, {
      coVisitationMaxBytes: 20,
      coVisitationFallbackK: 1,
    })
    expect(built.coVisitationTopK).toBe(1)
    expect(built.pools.coVisitation['0']).toEqual([1])
    expect(built.coVisitationBytes).toBe(JSON.stringify(built.pools.coVisitation).length)
  })

  it('refuses a catalogue that does not match the log', () => {
    const short = { ...catalogue, items: catalogue.items.slice(1) }
    expect(() => buildCandidatePools(dataset, short)).toThrow(/catalogue of 6 items in index order/)
  })
})

describe('buildCandidatePools on the YooChoose sample', () => {
  let dataset: SessionDataset
  let catalogue: Catalogue
  let built: BuiltPools
  let counts: Int32Array

  beforeAll(async () => {
    dataset = await loadDataset(path.join(sharedDataDir(), 'yoochoose-clicks-100k-sessionrec'))
    const graph = buildCoVisitation(dataset.train, dataset.nItems)
    catalogue = generateCatalogue(dataset, { graph })
    built = buildCandidatePools(dataset, catalogue, { graph })
    counts = countItems(dataset.train, dataset.nItems)
  })

  it('passes the device guard: in-range, distinct indices everywhere', () => {
    expect(validateCandidatePools(built.pools, { nItems: dataset.nItems })).toMatchObject({
      ok: true,
    })
  })

  it('sorts popular by views and trending by recent views, which differ', () => {
    const { popular, trending } = built.pools
    expect(popular).toHaveLength(500)
    expectSortedBy(popular, (i) => counts[i]!)
    const recent = countItems(
      dataset.train.slice(Math.floor(dataset.train.length * 0.9)),
      dataset.nItems,
    )
    expect(trending).toHaveLength(500)
    expectSortedBy(trending, (i) => recent[i]!)
    const top50 = new Set(popular.slice(0, 50))
    const shared = trending.slice(0, 50).filter((i) => top50.has(i)).length
    expect(shared).toBeLessThan(40)
  })

  it('lists the newest in-stock items and each category’s most viewed', () => {
    const { items } = catalogue
    expect(built.pools.new).toHaveLength(200)
    expect(built.pools.new.every((i) => items[i]!.inStock)).toBe(true)
    expectSortedBy(built.pools.new, (i) => Date.parse(items[i]!.addedAt))
    const categories = Object.keys(built.pools.byCategory)
    expect(categories).toHaveLength(25)
    for (const name of categories) {
      const pool = built.pools.byCategory[name]!
      expect(pool.length).toBeGreaterThan(0)
      expect(pool.length).toBeLessThanOrEqual(200)
      expect(pool.every((i) => items[i]!.category === name)).toBe(true)
      expectSortedBy(pool, (i) => counts[i]!)
    }
  })

  it('gives every item with a co-visited neighbour up to 20 others, never itself', () => {
    const entries = Object.entries(built.pools.coVisitation)
    expect(entries.length).toBeGreaterThan(dataset.nItems * 0.95)
    expect(built.coVisitationTopK).toBe(20)
    for (const [key, neighbours] of entries) {
      expect(neighbours.length).toBeGreaterThan(0)
      expect(neighbours.length).toBeLessThanOrEqual(20)
      expect(neighbours).not.toContain(Number(key))
    }
  })
})
