import path from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { validateCatalogue } from '../../shared/artifacts'
import type { Catalogue } from '../../shared/protocol'
import { loadDataset } from '../data/load-dataset'
import { sharedDataDir } from '../data/paths'
import type { SessionDataset } from '../data/types'
import { BRANDS, CATEGORY_WORDS } from './catalogue-words'
import { generateCatalogue } from './generate-catalogue'

let dataset: SessionDataset
let catalogue: Catalogue

beforeAll(async () => {
  dataset = await loadDataset(path.join(sharedDataDir(), 'yoochoose-clicks-100k-sessionrec'))
  catalogue = generateCatalogue(dataset)
})

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

describe('generateCatalogue on the YooChoose sample', () => {
  it('is deterministic: the same log gives byte-identical JSON', () => {
    expect(JSON.stringify(generateCatalogue(dataset))).toBe(JSON.stringify(catalogue))
    const other = generateCatalogue(dataset, { seed: 2 })
    expect(other.items[0]!.name).not.toBe(catalogue.items[0]!.name)
  })

  it('describes every item in index order with its original id, and passes the device guard', () => {
    expect(catalogue.items).toHaveLength(dataset.nItems)
    catalogue.items.forEach((item, i) => expect(item.index).toBe(i))
    expect(catalogue.items[0]!.id).toBe(`p-${dataset.itemIds[0]}`)
    expect(validateCatalogue(catalogue, { nItems: dataset.nItems })).toMatchObject({ ok: true })
    expect(new Set(catalogue.items.map((item) => item.name)).size).toBe(dataset.nItems)
  })

  it('groups items that shoppers view together into the same category far above chance', () => {
    const categoryOf = catalogue.items.map((item) => item.category)
    const sizes = new Map<string, number>()
    for (const c of categoryOf) sizes.set(c, (sizes.get(c) ?? 0) + 1)
    expect(sizes.size).toBe(CATEGORY_WORDS.length)
    // Balanced enough for per-category pools: no category under 0.5 % or over 20 % of items.
    for (const size of sizes.values()) {
      expect(size / dataset.nItems).toBeGreaterThan(0.005)
      expect(size / dataset.nItems).toBeLessThan(0.2)
    }
    const chance = [...sizes.values()].reduce((sum, n) => sum + (n / dataset.nItems) ** 2, 0)
    // Held-out test sessions: the clustering never saw these pairs.
    let same = 0
    let pairs = 0
    for (const session of dataset.test) {
      for (let i = 1; i < session.length; i++) {
        if (session[i] === session[i - 1]) continue
        pairs++
        if (categoryOf[session[i]!] === categoryOf[session[i - 1]!]) same++
      }
    }
    expect(same / pairs).toBeGreaterThan(5 * chance)
  })

  it('draws brands mostly from the category’s own two, at most 60 in all', () => {
    const brands = new Set(catalogue.items.map((item) => item.brand))
    expect(brands.size).toBeLessThanOrEqual(BRANDS.length)
    const kitchen = catalogue.items.filter((item) => item.category === 'Kitchen')
    const own = kitchen.filter((item) => item.brand === BRANDS[0] || item.brand === BRANDS[1])
    expect(own.length / kitchen.length).toBeGreaterThan(0.7)
  })

  it('prices end in .99 and follow the category (furniture dearer than pantry)', () => {
    for (const { price } of catalogue.items) {
      expect(price).toBeGreaterThan(0)
      expect(Math.round(price * 100) % 100).toBe(99)
    }
    const priceIn = (category: string) =>
      median(catalogue.items.filter((i) => i.category === category).map((i) => i.price))
    expect(priceIn('Furniture')).toBeGreaterThan(5 * priceIn('Pantry'))
  })

  it('keeps about 95 % in stock and dates items first seen late in the log later', () => {
    const inStock = catalogue.items.filter((item) => item.inStock).length / dataset.nItems
    expect(inStock).toBeGreaterThan(0.93)
    expect(inStock).toBeLessThan(0.97)
    // Indices follow first appearance in the time-ordered training sessions.
    const added = catalogue.items.map((item) => Date.parse(item.addedAt))
    const early = added.slice(0, Math.floor(dataset.nItems / 2))
    const late = added.slice(Math.floor(dataset.nItems * 0.9))
    expect(Math.min(...late)).toBeGreaterThan(median(early))
    expect(Math.max(...added)).toBeLessThanOrEqual(Date.parse('2026-11-01T00:00:00.000Z'))
  })
})
