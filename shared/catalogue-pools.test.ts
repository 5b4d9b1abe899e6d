import { describe, expect, it } from 'vitest'
import type { Catalogue, CatalogueItem } from './protocol'
import { cataloguePools } from './catalogue-pools'
import { own } from './own'

const item = (index: number, category: string): CatalogueItem => ({
  id: `p${index}`,
  index,
  name: `Product ${index}`,
  category,
  brand: 'b',
  price: 1,
  inStock: true,
  addedAt: '2026-01-01',
})

describe('cataloguePools', () => {
  it('issue 11, 6: categories named like Object properties are pools of their own', () => {
    const catalogue: Catalogue = {
      type: 'pocketrec-catalogue',
      items: [item(0, '__proto__'), item(1, 'constructor'), item(2, '__proto__'), item(3, 'shoes')],
    }
    const pools = cataloguePools(catalogue, [2, 1, 0, 3])
    // Assigned as `byCategory[name] = []`, "__proto__" replaced the object's prototype instead,
    // and vanished from the JSON devices download.
    const shipped = JSON.parse(JSON.stringify(pools)) as typeof pools
    expect(own(shipped.byCategory, '__proto__')).toEqual([2, 0])
    expect(own(shipped.byCategory, 'constructor')).toEqual([1])
    expect(own(shipped.byCategory, 'shoes')).toEqual([3])
    expect(Object.getPrototypeOf(pools.byCategory)).toBe(Object.prototype)
  })
})

describe('own', () => {
  it('reads own properties only', () => {
    const record = JSON.parse('{"a": 1, "__proto__": 2}') as Record<string, number>
    expect(own(record, 'a')).toBe(1)
    expect(own(record, '__proto__')).toBe(2)
    expect(own(record, 'constructor')).toBeUndefined()
    expect(own(record, 'toString')).toBeUndefined()
  })
})
