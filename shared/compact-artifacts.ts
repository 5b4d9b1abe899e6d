// The catalogue, the pools and the co-visitation shards as devices download them (PROTOCOL.md
// P2b): columns in a little binary layout (byte-columns.ts) instead of JSON objects per item,
// a fifth to a tenth of the bytes after brotli. Each file starts with a 4-byte magic and a
// format version; decoding checks every length, then runs the same guards as the JSON form
// (artifacts.ts), so a truncated, corrupt or hostile file is refused with a message and nothing
// else. Decoders also take the JSON form (the first byte `{`), which older releases still serve.
import {
  ARTIFACT_LIMITS,
  catalogueChecks,
  ITEMS_PER_STEP,
  parseArtifact,
  validateCandidatePools,
  type IndexBound,
  type Validation,
} from './artifacts'
import { ByteReader, ByteWriter, LayoutError } from './byte-columns'
import type { CandidatePools, DeviceCatalogue, DeviceCatalogueItem } from './protocol'
import { drain, inSlices, oneStep, type Steps } from './slices'

export const CATALOGUE_MAGIC = 'PRC1'
export const POOLS_MAGIC = 'PRP1'
export const CO_VISITATION_MAGIC = 'PRV1'
/** The co-visitation shards' layout version after their magic; a device refuses any other. */
const LAYOUT_VERSION = 1
/**
 * The catalogue's layout: 2 writes names as words and prices as whole units and cents (ItemColumns),
 * 51 KB less for DIGINETICA's first visit; devices still read 1.
 */
const CATALOGUE_LAYOUT_VERSION = 2
/**
 * The pools' layout: 2 adds the first-list items, 3 writes them as catalogue layout 2 does;
 * devices still read 1 (no items) and 2.
 */
const POOLS_LAYOUT_VERSION = 3
const L = ARTIFACT_LIMITS
/** Price modes: 0 cents in 4 bytes (layout 1), 1 any double, 2 whole units and cents apart (layout 2). */
const WHOLE_AND_CENTS = 2

/** The devices' columns of a catalogue: `addedAt` stays on the server (P2b). */
export function encodeCatalogue(catalogue: DeviceCatalogue): Uint8Array {
  const w = header(CATALOGUE_MAGIC, CATALOGUE_LAYOUT_VERSION)
  writeItems(w, catalogue.items)
  return w.finish()
}

/** The catalogue's columns (also the pools' first-list items, layout 2). */
function writeItems(w: ByteWriter, items: readonly DeviceCatalogueItem[]): void {
  w.u32(items.length)
  const inOrder = items.every((item, i) => item.index === i)
  w.u8(inOrder ? 0 : 1)
  if (!inOrder) w.u32s(items.map((item) => item.index))
  w.strings(items.map((item) => item.id))
  w.words(items.map((item) => item.name))
  labelColumn(
    w,
    items.map((item) => item.category),
  )
  labelColumn(
    w,
    items.map((item) => item.brand),
  )
  // Shop prices are cents, and the cents / 100 read back is the same double: the whole units
  // (2 or 4 bytes), then the cents apart (1 byte), where prices ending alike (.99) compress to
  // nearly nothing.
  const cents = items.map((item) => Math.round(item.price * 100))
  const inCents = cents.every((c, i) => c <= 0xffffffff && c / 100 === items[i]!.price)
  w.u8(inCents ? WHOLE_AND_CENTS : 1)
  if (inCents) {
    w.uints(cents.map((c) => Math.floor(c / 100)))
    w.u8s(cents.map((c) => c % 100))
  } else w.f64s(items.map((item) => item.price))
  const stock = new Uint8Array(Math.ceil(items.length / 8))
  items.forEach((item, i) => {
    if (item.inStock) stock[i >> 3]! |= 1 << (i & 7)
  })
  w.u8s(stock)
  // Pictures (optional per item): a flag, then one string per item, empty for none.
  const images = items.map((item) => item.imageUrl ?? '')
  const withImages = images.some((url) => url !== '')
  w.u8(withImages ? 1 : 0)
  if (withImages) w.strings(images)
}

/** The devices' catalogue; the JSON form of an older release decodes too (with its dates). */
export function decodeCatalogue(
  bytes: Uint8Array,
  bound: IndexBound = {},
): Validation<DeviceCatalogue> {
  return drain(catalogueDecoding(bytes, bound))
}

/**
 * decodeCatalogue in slices of a few milliseconds, each followed by the next task: what a page's
 * thread does (a large catalogue decoded in one go would be a long task on a slow phone).
 */
export function decodeCatalogueInSlices(
  bytes: Uint8Array,
  bound: IndexBound = {},
  budgetMs?: number,
): Promise<Validation<DeviceCatalogue>> {
  return inSlices(catalogueDecoding(bytes, bound), budgetMs)
}

function* catalogueDecoding(
  bytes: Uint8Array,
  bound: IndexBound,
): Steps<Validation<DeviceCatalogue>> {
  const check = { ...bound, withoutDates: true as const }
  if (bytes[0] === 0x7b) {
    // An older release's JSON: one step to parse it (JSON.parse cannot be sliced).
    const raw = parseArtifact(new TextDecoder().decode(bytes), (value) => ({ ok: true, value }))
    yield
    return raw.ok ? yield* catalogueOf(raw.value, check) : raw
  }
  const read = yield* decodeSteps(
    'catalogue',
    bytes,
    CATALOGUE_MAGIC,
    [1, CATALOGUE_LAYOUT_VERSION],
    function* (r, version) {
      const columns = yield* readColumns(r, version === CATALOGUE_LAYOUT_VERSION)
      r.end('catalogue')
      return columns
    },
  )
  if (!read.ok) return read
  const items = yield* itemsOf(read.value)
  return yield* catalogueOf({ type: 'pocketrec-catalogue', items }, check)
}

function catalogueOf(
  raw: unknown,
  check: IndexBound & { withoutDates: true },
): Steps<Validation<DeviceCatalogue>> {
  return catalogueChecks(raw, check) as Steps<Validation<DeviceCatalogue>>
}

/** The columns writeItems wrote (their lengths checked; their values by validateCatalogue). */
interface ItemColumns {
  n: number
  indices: Uint32Array | null
  ids: string[]
  names: string[]
  categories: string[]
  brands: string[]
  prices: ArrayLike<number>
  inCents: boolean
  stock: Uint8Array
  images: string[] | null
}

/**
 * The columns, a step after each large one; `words`: as catalogue layout 2 (pools layout 3)
 * writes them, names as words and prices in whole units and cents.
 */
function* readColumns(r: ByteReader, words: boolean): Steps<ItemColumns> {
  const n = r.count('items', L.maxItems)
  const mode = r.u8('index mode')
  if (mode > 1) throw new LayoutError(`expected index mode 0 or 1, got ${mode}`)
  const indices = mode === 0 ? null : r.u32s(n, 'indices')
  const ids = r.strings('ids', n)
  yield
  const names = words ? r.words('names', n) : r.strings('names', n)
  yield
  const categories = readLabels(r, 'categories', n)
  const brands = readLabels(r, 'brands', n)
  yield
  const priceMode = r.u8('price mode')
  const centsMode = words ? WHOLE_AND_CENTS : 0
  if (priceMode !== centsMode && priceMode !== 1) {
    throw new LayoutError(`expected price mode ${centsMode} or 1, got ${priceMode}`)
  }
  const inCents = priceMode === centsMode
  const prices = !inCents ? r.f64s(n, 'prices') : words ? readCents(r, n) : r.u32s(n, 'prices')
  const stock = r.u8s(Math.ceil(n / 8), 'stock bits')
  const imageMode = r.u8('image mode')
  if (imageMode > 1) throw new LayoutError(`expected image mode 0 or 1, got ${imageMode}`)
  const images = imageMode === 1 ? r.strings('image URLs', n) : null
  if (images && images.length !== n) {
    throw new LayoutError(`expected ${n} image URLs, got ${images.length}`)
  }
  if (ids.length !== n || names.length !== n) {
    throw new LayoutError(`expected ${n} ids and names, got ${ids.length} and ${names.length}`)
  }
  return { n, indices, ids, names, categories, brands, prices, inCents, stock, images }
}

/** Prices in cents from their whole units and cents columns (catalogue layout 2). */
function readCents(r: ByteReader, n: number): Float64Array {
  const whole = r.uints(n, 'prices')
  const cents = r.u8s(n, 'price cents')
  const out = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    if (cents[i]! > 99)
      throw new LayoutError(`expected cents 0 to 99, got ${cents[i]} for item ${i}`)
    out[i] = whole[i]! * 100 + cents[i]!
  }
  return out
}

/** The columns as items, a step per ITEMS_PER_STEP of them. */
function* itemsOf(c: ItemColumns): Steps<DeviceCatalogueItem[]> {
  const items: DeviceCatalogueItem[] = new Array<DeviceCatalogueItem>(c.n)
  for (let i = 0; i < c.n; i++) {
    if (i % ITEMS_PER_STEP === ITEMS_PER_STEP - 1) yield
    items[i] = {
      id: c.ids[i]!,
      index: c.indices ? c.indices[i]! : i,
      name: c.names[i]!,
      category: c.categories[i]!,
      brand: c.brands[i]!,
      price: c.inCents ? c.prices[i]! / 100 : c.prices[i]!,
      inStock: (c.stock[i >> 3]! & (1 << (i & 7))) !== 0,
    }
    if (c.images && c.images[i] !== '') items[i]!.imageUrl = c.images[i]!
  }
  return items
}

/**
 * The pools as devices download them, with what a first visit's first list needs (layout 2):
 * the catalogue entries of the items trending, popular and new list, so that list is served
 * before the catalogue arrives. `items` is null for pools without them (layout 1, JSON).
 */
export interface PoolsArtifact {
  pools: CandidatePools
  items: DeviceCatalogue | null
}

/** The items of `pools` a first list may show: trending, popular and new. */
export function firstListIndices(pools: Pick<CandidatePools, 'trending' | 'popular' | 'new'>) {
  return new Set([...pools.trending, ...pools.popular, ...pools.new])
}

/**
 * The pools without co-visitation (which travels in shards, below): the three ranked lists, one
 * list per category, then `catalogue`'s entries of the items the three ranked lists name
 * (firstListIndices), in catalogue order; pool items the catalogue lacks are never shown anyway.
 */
export function encodePools(pools: CandidatePools, catalogue: DeviceCatalogue): Uint8Array {
  const w = header(POOLS_MAGIC, POOLS_LAYOUT_VERSION)
  w.list(pools.trending)
  w.list(pools.popular)
  w.list(pools.new)
  const categories = Object.keys(pools.byCategory)
  w.strings(categories)
  for (const name of categories) w.list(pools.byCategory[name]!)
  const first = firstListIndices(pools)
  writeItems(
    w,
    catalogue.items.filter((item) => first.has(item.index)),
  )
  return w.finish()
}

export function decodePools(bytes: Uint8Array, bound: IndexBound = {}): Validation<PoolsArtifact> {
  return drain(poolsDecoding(bytes, bound))
}

/** decodePools in slices of a few milliseconds: what a page's thread does (decodeCatalogueInSlices). */
export function decodePoolsInSlices(
  bytes: Uint8Array,
  bound: IndexBound = {},
): Promise<Validation<PoolsArtifact>> {
  return inSlices(poolsDecoding(bytes, bound))
}

function* poolsDecoding(bytes: Uint8Array, bound: IndexBound): Steps<Validation<PoolsArtifact>> {
  if (bytes[0] === 0x7b) {
    const json = parseArtifact(new TextDecoder().decode(bytes), (raw) =>
      validateCandidatePools(raw, bound),
    )
    return json.ok ? { ok: true, value: { pools: json.value, items: null } } : json
  }
  const read = yield* decodeSteps(
    'pools',
    bytes,
    POOLS_MAGIC,
    [1, 2, POOLS_LAYOUT_VERSION],
    function* (r, version) {
      const trending = r.list('trending', L.maxPoolLength)
      const popular = r.list('popular', L.maxPoolLength)
      const fresh = r.list('new', L.maxPoolLength)
      const names = r.strings('categories', L.maxCategories)
      // Categories are the shop's strings ("__proto__" among them): a Map, then own properties.
      const byCategory = new Map<string, number[]>()
      for (const name of names) {
        if (byCategory.has(name))
          throw new LayoutError(`expected distinct categories, got ${JSON.stringify(name)} twice`)
        byCategory.set(name, r.list(`byCategory[${JSON.stringify(name)}]`, L.maxPoolLength))
      }
      yield
      const words = version === POOLS_LAYOUT_VERSION
      const items = version === 1 ? null : yield* itemsOf(yield* readColumns(r, words))
      r.end('pools')
      const pools: CandidatePools = {
        type: 'pocketrec-pools',
        trending,
        popular,
        new: fresh,
        byCategory: Object.fromEntries(byCategory),
        coVisitation: {},
      }
      return { pools, items }
    },
  )
  if (!read.ok) return read
  yield
  const pools = validateCandidatePools(read.value.pools, bound)
  if (!pools.ok) return pools
  if (read.value.items === null) return { ok: true, value: { pools: pools.value, items: null } }
  yield
  const items = yield* catalogueOf(
    { type: 'pocketrec-catalogue', items: read.value.items },
    { ...bound, withoutDates: true },
  )
  if (!items.ok) return { ok: false, error: `pools' first-list ${items.error}` }
  const first = firstListIndices(pools.value)
  const stray = items.value.items.find((item) => !first.has(item.index))
  if (stray) {
    const error = `pools: expected first-list items from trending, popular or new, got item ${stray.index} ("${stray.id}")`
    return { ok: false, error }
  }
  return { ok: true, value: { pools: pools.value, items: items.value } }
}

/** Items `first`..`first + lists.length - 1`'s co-visited neighbours, best first. */
export interface CoVisitationShard {
  first: number
  lists: number[][]
}

export function encodeCoVisitationShard(shard: CoVisitationShard): Uint8Array {
  const w = header(CO_VISITATION_MAGIC, LAYOUT_VERSION)
  w.u32(shard.first)
  w.u32(shard.lists.length)
  w.u16s(shard.lists.map((list) => list.length))
  w.uints(shard.lists.flat())
  return w.finish()
}

export function decodeCoVisitationShard(
  bytes: Uint8Array,
  bound: IndexBound = {},
): Validation<CoVisitationShard> {
  const read = decode('co-visitation shard', bytes, CO_VISITATION_MAGIC, [LAYOUT_VERSION], (r) => {
    const first = r.u32('first item')
    const n = r.count('items', L.maxItems)
    const lengths = r.u16s(n, 'list lengths')
    const total = lengths.reduce((sum, length) => sum + length, 0)
    const neighbours = r.uints(total, 'neighbours')
    r.end('co-visitation shard')
    const limit = Math.min(bound.nItems ?? L.maxItems, L.maxItems)
    if (first + n > limit)
      throw new LayoutError(`expected items below ${limit}, got ${first}..${first + n - 1}`)
    const lists: number[][] = []
    let at = 0
    for (let i = 0; i < n; i++) {
      const length = lengths[i]!
      if (length > L.maxNeighbours)
        throw new LayoutError(
          `expected at most ${L.maxNeighbours} neighbours of item ${first + i}, got ${length}`,
        )
      const list = Array.from(neighbours.subarray(at, at + length))
      at += length
      if (list.some((j) => j >= limit))
        throw new LayoutError(`expected neighbours of item ${first + i} below ${limit}`)
      if (new Set(list).size !== list.length)
        throw new LayoutError(`expected distinct neighbours of item ${first + i}`)
      lists.push(list)
    }
    return { first, lists }
  })
  return read
}

// ---------------------------------------------------------------------------------------------

function header(magic: string, version: number): ByteWriter {
  const w = new ByteWriter()
  w.ascii(magic)
  w.u32(version)
  return w
}

/** Checks magic and version, then reads the rest; a LayoutError becomes the refusal's message. */
function decode<T>(
  what: string,
  bytes: Uint8Array,
  magic: string,
  versions: readonly number[],
  body: (r: ByteReader, version: number) => T,
): Validation<T> {
  return drain(decodeSteps(what, bytes, magic, versions, (r, v) => oneStep(() => body(r, v))))
}

function* decodeSteps<T>(
  what: string,
  bytes: Uint8Array,
  magic: string,
  versions: readonly number[],
  body: (r: ByteReader, version: number) => Steps<T>,
): Steps<Validation<T>> {
  try {
    const r = new ByteReader(bytes)
    const seen = bytes.byteLength >= 4 ? r.ascii(4, 'magic') : ''
    if (seen !== magic)
      throw new LayoutError(`expected the ${magic} magic (or JSON), got ${JSON.stringify(seen)}`)
    const version = r.u32('layout version')
    if (!versions.includes(version))
      throw new LayoutError(`expected layout version ${versions.join(' or ')}, got ${version}`)
    return { ok: true, value: yield* body(r, version) }
  } catch (error) {
    if (error instanceof LayoutError) return { ok: false, error: `${what}: ${error.message}` }
    throw error
  }
}

/** Distinct labels as a string table, then each item's label as its position there. */
function labelColumn(w: ByteWriter, labels: readonly string[]): void {
  const table = [...new Set(labels)]
  const position = new Map(table.map((label, i) => [label, i]))
  w.strings(table)
  w.uints(labels.map((label) => position.get(label)!))
}

function readLabels(r: ByteReader, what: string, n: number): string[] {
  const table = r.strings(what, Math.max(1, n))
  const ids = r.uints(n, `${what} ids`)
  return Array.from(ids, (id, i) => {
    const label = table[id]
    if (label === undefined)
      throw new LayoutError(`expected ${what} ids below ${table.length}, got ${id} at item ${i}`)
    return label
  })
}
