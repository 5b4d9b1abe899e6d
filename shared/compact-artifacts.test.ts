import { describe, expect, it } from 'vitest'
import {
  decodeCatalogue,
  decodeCatalogueInSlices,
  decodeCoVisitationShard,
  decodePools,
  encodeCatalogue,
  encodeCoVisitationShard,
  encodePools,
} from './compact-artifacts'
import type { CandidatePools, Catalogue } from './protocol'
import { withoutDates } from '../test/fixtures/read-artifact'
import { ByteReader, ByteWriter, LayoutError } from './byte-columns'

const catalogue = (): Catalogue => ({
  type: 'pocketrec-catalogue',
  items: [
    {
      id: 'p-1',
      index: 0,
      name: 'Harbour Sand Sofa',
      category: 'Furniture',
      brand: 'Birchmoor',
      price: 308.99,
      inStock: false,
      addedAt: '2025-08-24T12:07:00.000Z',
    },
    {
      id: 'p-2',
      index: 1,
      name: 'Gentle Blush Stool',
      category: 'Furniture',
      brand: 'Greywell',
      price: 591.99,
      inStock: true,
      addedAt: '2026-05-11T12:40:00.000Z',
    },
    {
      id: 'sku-ü',
      index: 2,
      name: 'Crème Bath Towel',
      category: '__proto__',
      brand: 'Birchmoor',
      price: 0,
      inStock: true,
      addedAt: '2024-09-28T21:28:00.000Z',
    },
  ],
})

const pools = (): CandidatePools => ({
  type: 'pocketrec-pools',
  trending: [2, 0],
  popular: [0, 1, 2],
  new: [1],
  byCategory: { Furniture: [1, 0], ['__proto__']: [2] },
  coVisitation: {},
})

const refusal = (result: { ok: boolean; error?: string }) => (result.ok ? 'accepted' : result.error)

/**
 * The items block as catalogue layout 1 (pools layout 2) wrote it, before names went as words:
 * names as text, prices as 4-byte cents. Items in index order, without pictures.
 */
function layout1Items(items: Catalogue['items']): Uint8Array {
  const w = new ByteWriter()
  const labels = (values: string[]) => {
    const table = [...new Set(values)]
    w.strings(table)
    w.uints(values.map((v) => table.indexOf(v)))
  }
  w.u32(items.length)
  w.u8(0)
  w.strings(items.map((item) => item.id))
  w.strings(items.map((item) => item.name))
  labels(items.map((item) => item.category))
  labels(items.map((item) => item.brand))
  w.u8(0)
  w.u32s(items.map((item) => Math.round(item.price * 100)))
  const stock = new Uint8Array(Math.ceil(items.length / 8))
  items.forEach((item, i) => (stock[i >> 3]! |= item.inStock ? 1 << (i & 7) : 0))
  w.u8s(stock)
  w.u8(0)
  return w.finish()
}

const withHeader = (magic: string, version: number, block: Uint8Array) => {
  const w = new ByteWriter()
  w.ascii(magic)
  w.u32(version)
  return Uint8Array.from([...w.finish(), ...block])
}

describe('names as words', () => {
  it('give back every string, spaces doubled, leading, trailing or none', () => {
    const names = ['Harbour Sand Sofa', ' a  b ', '', 'Sand', 'two\nlines  ü', 'Sofa Sofa']
    const w = new ByteWriter()
    w.words(names)
    expect(new ByteReader(w.finish()).words('names', names.length)).toEqual(names)
  })

  it('refuse a word place past the table and a count that is not the items', () => {
    const w = new ByteWriter()
    w.u32(1)
    w.strings(['a'])
    w.uints([2])
    w.uints([0, 5])
    const read = (n: number) => {
      try {
        return new ByteReader(w.finish()).words('names', n)
      } catch (error) {
        return error instanceof LayoutError ? error.message : error
      }
    }
    expect(read(1)).toBe('expected names word places below 1, got 5')
    expect(read(2)).toBe('expected 2 names, got 1')
  })
})

describe('the compact catalogue', () => {
  it('decodes to the catalogue it was made from less addedAt, in a fraction of its JSON', () => {
    const c = catalogue()
    const bytes = encodeCatalogue(c)
    expect(decodeCatalogue(bytes, { nItems: 3 })).toEqual({ ok: true, value: withoutDates(c) })
    expect(bytes.byteLength).toBeLessThan(JSON.stringify(c).length / 2)
  })

  it('keeps indices out of order, prices that are not cents and newlines', () => {
    const c = catalogue()
    c.items[0] = { ...c.items[0]!, index: 2, price: 1 / 3, name: 'Two\nlines' }
    c.items[2] = { ...c.items[2]!, index: 0 }
    expect(decodeCatalogue(encodeCatalogue(c))).toEqual({ ok: true, value: withoutDates(c) })
  })

  it("carries the shop's picture URLs, and items without one stay without", () => {
    const c = catalogue()
    c.items[1] = { ...c.items[1]!, imageUrl: 'https://shop.example/p/1.jpg' }
    const decoded = decodeCatalogue(encodeCatalogue(c))
    expect(decoded).toEqual({ ok: true, value: withoutDates(c) })
    const items = decoded.ok ? decoded.value.items : []
    expect(items.map((item) => 'imageUrl' in item)).toEqual([false, true, false])
    // A URL the device guard refuses is refused in the columns too.
    c.items[1] = { ...c.items[1]!, imageUrl: 'javascript:alert(1)' }
    expect(refusal(decodeCatalogue(encodeCatalogue(c)))).toMatch(/imageUrl/)
  })

  it('refuses every truncation of the file with a message, never a throw', () => {
    const bytes = encodeCatalogue(catalogue())
    for (let length = 0; length < bytes.byteLength; length++) {
      const result = decodeCatalogue(bytes.subarray(0, length))
      expect(result.ok, `truncated to ${length} bytes`).toBe(false)
    }
    expect(refusal(decodeCatalogue(bytes.subarray(0, 40)))).toMatch(/^catalogue: expected \d+ /)
  })

  it('refuses another magic, another layout version and bytes past the end', () => {
    const bytes = encodeCatalogue(catalogue())
    const magic = bytes.slice()
    magic[3] = 0x39
    expect(refusal(decodeCatalogue(magic))).toBe(
      'catalogue: expected the PRC1 magic (or JSON), got "PRC9"',
    )
    const version = bytes.slice()
    version[4] = 3
    expect(refusal(decodeCatalogue(version))).toBe(
      'catalogue: expected layout version 1 or 2, got 3',
    )
    const longer = new Uint8Array(bytes.byteLength + 1)
    longer.set(bytes)
    expect(refusal(decodeCatalogue(longer))).toMatch(
      /expected the catalogue to end at byte \d+, got 1 more/,
    )
  })

  it('still reads layout 1 (names as text, prices as 4-byte cents), which older releases serve', () => {
    const c = catalogue()
    const old = withHeader('PRC1', 1, layout1Items(c.items))
    expect(decodeCatalogue(old, { nItems: 3 })).toEqual({ ok: true, value: withoutDates(c) })
  })

  it('refuses cents past 99 (layout 2 keeps them apart from the whole units)', () => {
    const bytes = encodeCatalogue(catalogue())
    // The columns end with the cents (1 byte an item), the stock bits (1 byte) and the image mode.
    const cents = bytes.slice()
    cents[cents.byteLength - 3] = 100
    expect(refusal(decodeCatalogue(cents))).toBe(
      'catalogue: expected cents 0 to 99, got 100 for item 2',
    )
  })

  it('runs the device guards on what it decoded: an index past the model is refused', () => {
    expect(refusal(decodeCatalogue(encodeCatalogue(catalogue()), { nItems: 2 }))).toMatch(
      /^catalogue: expected items\[2\]\.index to be an integer in 0\.\.1, got number 2$/,
    )
    const twice = catalogue()
    twice.items[1] = { ...twice.items[1]!, id: 'p-1' }
    expect(refusal(decodeCatalogue(encodeCatalogue(twice)))).toMatch(/unique product ids/)
  })

  it('decodes in slices the same catalogue and the same refusals, the event loop running between', async () => {
    const many: Catalogue = {
      type: 'pocketrec-catalogue',
      items: Array.from({ length: 10_000 }, (_, i) => ({
        ...catalogue().items[i % 3]!,
        id: `p-${i}`,
        index: i,
      })),
    }
    const bytes = encodeCatalogue(many)
    let turns = 0
    const ticker = setInterval(() => turns++, 0)
    const sliced = await decodeCatalogueInSlices(bytes, {}, 0)
    clearInterval(ticker)
    expect(sliced).toEqual(decodeCatalogue(bytes))
    expect(sliced.ok).toBe(true)
    // A pause after each of ≥ 2 · 10,000 / 2,048 steps; timers run in some of them.
    expect(turns).toBeGreaterThanOrEqual(3)
    const late = structuredClone(many)
    late.items[9_000] = { ...late.items[9_000]!, id: 'p-17' }
    const refused = await decodeCatalogueInSlices(encodeCatalogue(late), {}, 0)
    expect(refusal(refused)).toBe(refusal(decodeCatalogue(encodeCatalogue(late))))
    expect(refusal(refused)).toMatch(/unique product ids, got "p-17" twice \(items\[9000\]\.id\)/)
    const json = new TextEncoder().encode(JSON.stringify(many))
    expect(await decodeCatalogueInSlices(json, { nItems: 10 }, 0)).toEqual(
      decodeCatalogue(json, { nItems: 10 }),
    )
  })

  it('still reads the JSON form an older release serves', () => {
    const c = catalogue()
    const json = new TextEncoder().encode(JSON.stringify(c))
    expect(decodeCatalogue(json)).toEqual({ ok: true, value: c })
    expect(refusal(decodeCatalogue(json.subarray(0, 30)))).toMatch(/expected JSON/)
  })
})

/** Pools bytes as a given layout writes them: `items` (layouts 2 and 3) as written, strays too. */
function poolsLayout(version: number, p: CandidatePools, items: Catalogue['items'] | null) {
  const w = new ByteWriter()
  w.ascii('PRP1')
  w.u32(version)
  w.list(p.trending)
  w.list(p.popular)
  w.list(p.new)
  w.strings(Object.keys(p.byCategory))
  for (const list of Object.values(p.byCategory)) w.list(list)
  const head = w.finish()
  // Layout 3's items block is the catalogue's columns after its 8-byte header; layout 2's, layout 1's.
  const block = !items
    ? []
    : version === 2
      ? layout1Items(items)
      : encodeCatalogue({ type: 'pocketrec-catalogue', items }).subarray(8)
  return Uint8Array.from([...head, ...block])
}

describe('the compact pools', () => {
  it('decode to the ranked pools, categories as own properties, co-visitation empty', () => {
    const p = pools()
    const bytes = encodePools({ ...p, coVisitation: { '0': [1] } }, catalogue())
    const decoded = decodePools(bytes, { nItems: 3 })
    expect(decoded.ok && decoded.value.pools).toEqual(p)
    expect(decoded.ok && Object.hasOwn(decoded.value.pools.byCategory, '__proto__')).toBe(true)
  })

  it("carry the catalogue's entries of the items trending, popular and new list, and only those", () => {
    // Item 1 is only in a category pool; item 7 is listed but not in the catalogue.
    const p = { ...pools(), trending: [2, 7], popular: [0], new: [] }
    const decoded = decodePools(encodePools(p, catalogue()), { nItems: 8 })
    const c = withoutDates(catalogue())
    expect(decoded.ok && decoded.value.items).toEqual({
      type: 'pocketrec-catalogue',
      items: [c.items[0], c.items[2]],
    })
  })

  it('read layout 1 (no items), 2 (items as catalogue layout 1) and JSON without items, and refuse other layouts', () => {
    const p = pools()
    expect(decodePools(poolsLayout(1, p, null))).toEqual({
      ok: true,
      value: { pools: p, items: null },
    })
    const c = withoutDates(catalogue())
    expect(decodePools(poolsLayout(2, p, catalogue().items), { nItems: 3 })).toEqual({
      ok: true,
      value: { pools: p, items: c },
    })
    const json = new TextEncoder().encode(JSON.stringify(p))
    expect(decodePools(json)).toEqual({ ok: true, value: { pools: p, items: null } })
    expect(refusal(decodePools(poolsLayout(4, p, null)))).toBe(
      'pools: expected layout version 1 or 2 or 3, got 4',
    )
  })

  it("refuse first-list items the lists do not name, and the catalogue's own refusals", () => {
    const p = { ...pools(), trending: [2], popular: [0], new: [] }
    const [first, stray, other] = catalogue().items
    expect(refusal(decodePools(poolsLayout(3, p, [first!, stray!, other!])))).toBe(
      'pools: expected first-list items from trending, popular or new, got item 1 ("p-2")',
    )
    const twice = [first!, { ...other!, id: first!.id }]
    expect(refusal(decodePools(poolsLayout(3, p, twice)))).toMatch(
      /^pools' first-list catalogue: expected unique product ids/,
    )
    expect(refusal(decodePools(encodePools(p, catalogue()), { nItems: 2 }))).toMatch(
      /^pools: expected trending\[0\] to be an integer in 0..1/,
    )
  })

  it('refuse every truncation, and an item past the model', () => {
    const bytes = encodePools(pools(), catalogue())
    for (let length = 0; length < bytes.byteLength; length++) {
      expect(decodePools(bytes.subarray(0, length)).ok, `truncated to ${length}`).toBe(false)
    }
    expect(refusal(decodePools(bytes, { nItems: 2 }))).toBe(
      'pools: expected trending[0] to be an integer in 0..1, got number 2',
    )
    const longer = Uint8Array.from([...bytes, 0])
    expect(refusal(decodePools(longer))).toMatch(/^pools: /)
  })
})

describe('co-visitation shards', () => {
  it('decode to the lists of their items, empty lists kept in place', () => {
    const shard = { first: 4, lists: [[1, 7], [], [5]] }
    const bytes = encodeCoVisitationShard(shard)
    expect(decodeCoVisitationShard(bytes, { nItems: 8 })).toEqual({ ok: true, value: shard })
  })

  it('refuse a neighbour or an item past the model, a repeated neighbour and truncation', () => {
    const bytes = encodeCoVisitationShard({ first: 4, lists: [[1, 7], [], [5]] })
    expect(refusal(decodeCoVisitationShard(bytes, { nItems: 6 }))).toBe(
      'co-visitation shard: expected items below 6, got 4..6',
    )
    const far = encodeCoVisitationShard({ first: 0, lists: [[1, 9]] })
    expect(refusal(decodeCoVisitationShard(far, { nItems: 8 }))).toBe(
      'co-visitation shard: expected neighbours of item 0 below 8',
    )
    const twice = encodeCoVisitationShard({ first: 0, lists: [[1, 1]] })
    expect(refusal(decodeCoVisitationShard(twice))).toMatch(/distinct neighbours of item 0/)
    for (let length = 0; length < bytes.byteLength; length++) {
      expect(decodeCoVisitationShard(bytes.subarray(0, length)).ok).toBe(false)
    }
  })
})
