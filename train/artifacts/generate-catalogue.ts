// A synthetic shop catalogue for a session log whose items are bare numbers (DIGINETICA,
// YooChoose): names, brands and prices are drawn per item from a PRNG seeded by its index, but
// categories are communities of the co-visitation graph and "added" dates follow the first
// appearance in the log, so category pools, per-category caps and the "new" pool mean something.
import type { Catalogue, CatalogueItem } from '../../shared/protocol'
import { createRandom, standardNormal } from '../../shared/random'
import type { SessionDataset } from '../data/types'
import {
  ADJECTIVES,
  BRANDS,
  CATEGORY_WORDS,
  COLOURS,
  GENERAL_BRANDS_FROM,
  type CategoryWords,
} from './catalogue-words'
import { clusterItems } from './cluster-items'
import { buildCoVisitation, type CoVisitationGraph } from './co-visitation'

export interface CatalogueOptions {
  seed?: number
  /** How many categories, at most the 25 the word lists name. */
  categories?: number
  /**
   * Where the training log sits on the calendar: it ends at `logEnd` and lasts `logDays`. Fixed
   * defaults (not today) keep the export byte-identical from run to run.
   */
  logEnd?: string
  logDays?: number
  /** The co-visitation graph of `train`, when the caller has already built it. */
  graph?: CoVisitationGraph
}

export const DEFAULT_CATALOGUE_OPTIONS = {
  seed: 1,
  categories: CATEGORY_WORDS.length,
  logEnd: '2026-11-01T00:00:00.000Z',
  logDays: 90,
}

/** Items first seen in this leading share of the log are old stock, added before it began. */
const WARM_UP_FRACTION = 0.1
const OLD_STOCK_DAYS = 730
/** A product goes on sale up to this long before its first recorded view. */
const LISTING_LEAD_DAYS = 3
const IN_STOCK_RATE = 0.95
const NAME_ATTEMPTS = 8
/** Names draw from their own stream, so a clash never shifts an item's brand or price. */
const NAME_SALT = 0x6e616d65
const OWN_BRAND_RATE = 0.8
const PRICE_SIGMA = 0.5
const DAY_MS = 86_400_000
const MINUTE_MS = 60_000

export function generateCatalogue(
  dataset: Pick<SessionDataset, 'nItems' | 'itemIds' | 'train'>,
  options: CatalogueOptions = {},
): Catalogue {
  const { seed, categories, logEnd, logDays } = { ...DEFAULT_CATALOGUE_OPTIONS, ...options }
  if (!Number.isInteger(categories) || categories < 1 || categories > CATEGORY_WORDS.length) {
    throw new RangeError(`expected 1..${CATEGORY_WORDS.length} categories, got ${categories}`)
  }
  const endMs = Date.parse(logEnd)
  if (!Number.isFinite(endMs))
    throw new RangeError(`expected an ISO date for logEnd, got ${logEnd}`)
  const { nItems, itemIds, train } = dataset
  const graph = options.graph ?? buildCoVisitation(train, nItems)
  const categoryOf = assignCategories(graph, categories, seed)
  const firstSeen = findFirstSessions(train, nItems)
  const startMs = endMs - logDays * DAY_MS

  const names = new Map<string, number>()
  const items: CatalogueItem[] = []
  for (let index = 0; index < nItems; index++) {
    const random = createRandom(mixSeed(seed, index))
    const category = categoryOf[index]!
    const words = CATEGORY_WORDS[category]!
    const name = drawUniqueName(words, createRandom(mixSeed(seed ^ NAME_SALT, index)), names)
    const brand = drawBrand(category, random)
    const position = firstSeen[index]! / Math.max(1, train.length)
    const addedMs =
      position < WARM_UP_FRACTION
        ? startMs - random() * OLD_STOCK_DAYS * DAY_MS
        : startMs + position * logDays * DAY_MS - random() * LISTING_LEAD_DAYS * DAY_MS
    items.push({
      id: `p-${itemIds[index]}`,
      index,
      name,
      category: words.name,
      brand: BRANDS[brand]!,
      price: drawPrice(words.medianPrice * brandPriceFactor(brand), random),
      inStock: random() < IN_STOCK_RATE,
      addedAt: new Date(Math.round(addedMs / MINUTE_MS) * MINUTE_MS).toISOString(),
    })
  }
  return { type: 'pocketrec-catalogue', items }
}

/**
 * Category (an index into CATEGORY_WORDS) per item: graph communities, the largest getting the
 * first name; items with no co-visited neighbour are hashed into one.
 */
function assignCategories(graph: CoVisitationGraph, k: number, seed: number): Int32Array {
  const labels = clusterItems(graph, k, { seed })
  const sizes = new Array<number>(k).fill(0)
  for (const label of labels) if (label >= 0) sizes[label]!++
  const bySize = sizes.map((_, label) => label).sort((a, b) => sizes[b]! - sizes[a]! || a - b)
  const rank = new Int32Array(k)
  bySize.forEach((label, r) => (rank[label] = r))
  return labels.map((label, index) => (label >= 0 ? rank[label]! : mixSeed(seed + 1, index) % k))
}

function findFirstSessions(train: readonly Int32Array[], nItems: number): Int32Array {
  const first = new Int32Array(nItems).fill(train.length)
  train.forEach((session, s) => {
    for (const item of session) if (first[item]! > s) first[item] = s
  })
  return first
}

/**
 * "Adjective Colour-or-Material Noun", redrawn a few times on a clash so the storefront rarely
 * shows two identical names; a name still taken after that gets a generation suffix ("… II").
 */
function drawUniqueName(
  words: CategoryWords,
  random: () => number,
  taken: Map<string, number>,
): string {
  const textures = words.colours ? [...COLOURS, ...words.materials] : words.materials
  let name = ''
  for (let attempt = 0; attempt < NAME_ATTEMPTS; attempt++) {
    name = `${pick(ADJECTIVES, random)} ${pick(textures, random)} ${pick(words.nouns, random)}`
    if (!taken.has(name)) break
  }
  const uses = (taken.get(name) ?? 0) + 1
  taken.set(name, uses)
  return uses === 1 ? name : `${name} ${toRoman(uses)}`
}

/** Mostly one of the category's two own brands, sometimes one of the general ones. */
function drawBrand(category: number, random: () => number): number {
  if (random() < OWN_BRAND_RATE) return category * 2 + (random() < 0.5 ? 0 : 1)
  return GENERAL_BRANDS_FROM + Math.floor(random() * (BRANDS.length - GENERAL_BRANDS_FROM))
}

/** Each brand sits at a fixed price level, 0.75× to 1.45× its category's median. */
function brandPriceFactor(brand: number): number {
  return 0.75 + 0.7 * (mixSeed(0x62726e64, brand) / 2 ** 32)
}

/** Log-normal around `median`, ending in .99 as shop prices do. */
function drawPrice(median: number, random: () => number): number {
  const z = standardNormal(random)
  const whole = Math.max(1, Math.round(median * Math.exp(PRICE_SIGMA * z)))
  return Number((whole - 0.01).toFixed(2))
}

function pick<T>(list: readonly T[], random: () => number): T {
  return list[Math.floor(random() * list.length)]!
}

/** A 32-bit hash of (seed, index) (murmur3's finaliser), so each item has its own stream. */
function mixSeed(seed: number, index: number): number {
  let h = (Math.imul(seed, 0x9e3779b1) ^ index) >>> 0
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}

function toRoman(n: number): string {
  const numerals: Array<[number, string]> = [
    [1000, 'M'],
    [900, 'CM'],
    [500, 'D'],
    [400, 'CD'],
    [100, 'C'],
    [90, 'XC'],
    [50, 'L'],
    [40, 'XL'],
    [10, 'X'],
    [9, 'IX'],
    [5, 'V'],
    [4, 'IV'],
    [1, 'I'],
  ]
  let out = ''
  for (const [value, symbol] of numerals) {
    for (; n >= value; n -= value) out += symbol
  }
  return out
}
