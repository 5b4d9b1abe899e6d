// Guards for the artifacts every device downloads (manifest, catalogue, pools, rules). They are
// read from the network, so each is checked whole before use: a truncated, tampered or hostile
// file is refused with a message that names the field, what was expected and what arrived.
// Unknown keys are ignored, so a newer server can add optional fields without breaking devices.
import { ENGAGEMENTS } from './events'
import type {
  ArtifactRef,
  CandidatePools,
  Catalogue,
  DeviceCatalogue,
  ManifestExperiment,
  ModelManifest,
  RerankRules,
  Scenario,
} from './protocol'
import { drain, oneStep, type Steps } from './slices'
import { experimentProblem, MAX_ARMS, MAX_EXPERIMENTS } from './experiments'

/** A content-addressed artifact's file name (PROTOCOL.md P2): `<sha256 prefix>.<kind>.<ext>`. */
export function artifactName(sha256: string, kind: string, ext: string): string {
  return `${sha256.slice(0, 16)}.${kind}.${ext}`
}

export type Validation<T> = { ok: true; value: T } | { ok: false; error: string }

export interface IndexBound {
  /** Rows in the model's item table: every item index must be below it. */
  nItems?: number
}

export interface CatalogueCheck extends IndexBound {
  /** The devices' form (P2b): `addedAt` is not there, and not asked for. */
  withoutDates?: boolean
}

export const SCENARIOS = [
  'for-you',
  'similar',
  'frequently-bought-together',
  'trending',
  'recently-viewed',
] as const satisfies readonly Scenario[]

// Fails to compile when protocol.ts gains a scenario this list lacks.
const _everyScenario: [Exclude<Scenario, (typeof SCENARIOS)[number]>] extends [never]
  ? true
  : never = true

/** Bounds that keep a hostile file from making a device loop or allocate without limit. */
export const ARTIFACT_LIMITS = {
  maxItems: 10_000_000,
  maxPoolLength: 10_000,
  maxNeighbours: 1_000,
  maxCategories: 10_000,
  /** Co-visitation shards in one manifest. */
  maxShards: 10_000,
  maxBoosts: 10_000,
  /** Pins land in lists of at most 50 (RecommendRequest.limit). */
  maxPinPosition: 49,
  maxArtifactBytes: 2 ** 31,
  maxIdLength: 200,
  maxNameLength: 300,
  maxLabelLength: 100,
  maxUrlLength: 2048,
  maxDays: 3650,
  maxPerList: 1000,
  maxBoost: 1000,
  /** Event weights (P30d) relative to one another: a target counts at most 100 times another. */
  minEventWeight: 0.1,
  maxEventWeight: 10,
} as const

const L = ARTIFACT_LIMITS

/**
 * A catalogue item's `imageUrl`: an http(s) URL with a host, or a path from the shop's root
 * (`/images/a.jpg`, `//cdn.example/a.jpg`); no whitespace, so no `javascript:` or `data:`.
 */
export const IMAGE_URL = {
  pattern: '^(https?://[^\\s/?#]+|/)[^\\s]*$',
  description: 'an http(s) URL or a path from the shop’s root, such as /images/sku-1.jpg',
} as const
const IMAGE_URL_RE = new RegExp(IMAGE_URL.pattern, 'u')
const SHA256_HEX = /^[0-9a-f]{64}$/
// ISO 8601 as Date#toISOString writes it, or a calendar date alone.
const ISO_DATE = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/
const URL_SCHEME = /^[a-zA-Z][a-zA-Z0-9+.-]*:/
const CANONICAL_INDEX = /^(0|[1-9][0-9]{0,15})$/

export function validateModelManifest(raw: unknown): Validation<ModelManifest> {
  return run('manifest', raw, () => {
    const m = expectRecord(raw, 'the manifest')
    expectLiteral(m.type, 'type', 'pocketrec-manifest')
    expectString(m.version, 'version', L.maxLabelLength)
    expectIsoDate(m.createdAt, 'createdAt')
    for (const key of ['model', 'catalogue', 'pools', 'rules'] as const)
      checkArtifactRef(m[key], key)
    if (m.coVisitation !== undefined) checkCoVisitationShards(m.coVisitation)
    if (m.master !== undefined) checkArtifactRef(m.master, 'master')
    if (m.moments !== undefined) checkArtifactRef(m.moments, 'moments')
    if (m.popularity !== undefined) checkArtifactRef(m.popularity, 'popularity')
    if (m.localTraining !== undefined) {
      const t = expectRecord(m.localTraining, 'localTraining')
      // Above 0.1 Adam on unit-length embeddings diverges in a few steps.
      expectNumber(t.learningRate, 'localTraining.learningRate', 1e-6, 0.1)
    }
    if (m.federation !== undefined) checkFederation(m.federation)
    if (m.experiments !== undefined) checkExperiments(m.experiments, 'experiments')
  })
}

/** Experiments a device can apply (P30): what the admin upload and every manifest must hold. */
export function validateExperiments(raw: unknown): Validation<ManifestExperiment[]> {
  return run('experiments', raw, () => checkExperiments(raw, 'experiments'))
}

function checkExperiments(raw: unknown, path: string): void {
  const list = expectArray(raw, path, MAX_EXPERIMENTS)
  const ids = new Set<string>()
  list.forEach((entry, i) => {
    const e = expectRecord(entry, `${path}[${i}]`)
    const id = expectString(e.id, `${path}[${i}].id`, 32)
    if (ids.has(id)) fail(`expected distinct ids in ${path}, got ${id} twice`)
    ids.add(id)
    expectString(e.key, `${path}[${i}].key`, 256)
    const arms = expectArray(e.arms, `${path}[${i}].arms`, MAX_ARMS)
    const checked = arms.map((arm, a) => {
      const r = expectRecord(arm, `${path}[${i}].arms[${a}]`)
      const lists = r.lists
      if (lists !== 'model' && lists !== 'pools') {
        fail(
          `expected ${path}[${i}].arms[${a}].lists to be "model" or "pools", got ${describe(lists)}`,
        )
      }
      const name = expectString(r.name, `${path}[${i}].arms[${a}].name`, 32)
      if (r.explore !== undefined) {
        const share = expectNumber(r.explore, `${path}[${i}].arms[${a}].explore`, 0, 0.5)
        if (share === 0) fail(`expected ${path}[${i}].arms[${a}].explore above 0, got 0`)
      }
      return { name, share: r.share as number }
    })
    const problem = experimentProblem({ id, key: e.key as string, arms: checked })
    if (problem !== null) fail(`${path}[${i}]: ${problem}`)
  })
}

/** P2b: shards of consecutive items, each its own content-addressed file. */
function checkCoVisitationShards(raw: unknown): void {
  const c = expectRecord(raw, 'coVisitation')
  expectInteger(c.itemsPerShard, 'coVisitation.itemsPerShard', 1, L.maxItems)
  const shards = expectArray(c.shards, 'coVisitation.shards', L.maxShards)
  shards.forEach((ref, i) => checkArtifactRef(ref, `coVisitation.shards[${i}]`))
}

/** P29c: the sparse layout, its public negatives, where the helper is, local training. */
function checkFederation(raw: unknown): void {
  const f = expectRecord(raw, 'federation')
  const layout = expectRecord(f.layout, 'federation.layout')
  expectInteger(layout.maxRows, 'federation.layout.maxRows', 1, 1024)
  expectInteger(layout.embedDim, 'federation.layout.embedDim', 1, 1024)
  expectInteger(layout.denseCoordinates, 'federation.layout.denseCoordinates', 0, 2 ** 24)
  const count = expectInteger(layout.negativeRows, 'federation.layout.negativeRows', 0, 4096)
  expectNumber(f.clipNorm, 'federation.clipNorm', 1e-6, 1e3)
  const negatives = expectArray(f.negatives, 'federation.negatives', 4096)
  if (negatives.length !== count)
    fail(`expected ${count} public negatives in federation.negatives, got ${negatives.length}`)
  negatives.forEach((row, i) => expectInteger(row, `federation.negatives[${i}]`, 0, 2 ** 31 - 1))
  if (new Set(negatives).size !== negatives.length)
    fail('expected distinct rows in federation.negatives')
  expectString(f.helper, 'federation.helper', 2048)
  // Plain SGD (P7): its rates run far above Adam's.
  expectNumber(f.learningRate, 'federation.learningRate', 1e-6, 100)
  expectInteger(f.epochs, 'federation.epochs', 1, 100)
  if (f.denseLearningRate !== undefined)
    expectNumber(f.denseLearningRate, 'federation.denseLearningRate', 0, 100)
}

export function validateCatalogue(raw: unknown, bound?: IndexBound): Validation<Catalogue>
export function validateCatalogue(
  raw: unknown,
  bound: CatalogueCheck & { withoutDates: true },
): Validation<DeviceCatalogue>
export function validateCatalogue(
  raw: unknown,
  bound: CatalogueCheck = {},
): Validation<Catalogue | DeviceCatalogue> {
  return drain(catalogueChecks(raw, bound))
}

/** Items checked or decoded between two steps (shared/slices.ts). */
export const ITEMS_PER_STEP = 2048

/** validateCatalogue as steps, one per ITEMS_PER_STEP items (a page's thread runs it in slices). */
export function catalogueChecks(
  raw: unknown,
  bound: CatalogueCheck = {},
): Steps<Validation<Catalogue | DeviceCatalogue>> {
  return runSteps('catalogue', raw, function* () {
    const c = expectRecord(raw, 'the catalogue')
    expectLiteral(c.type, 'type', 'pocketrec-catalogue')
    const items = expectArray(c.items, 'items', L.maxItems)
    const ids = new Set<string>()
    const indices = new Set<number>()
    for (let i = 0; i < items.length; i++) {
      if (i % ITEMS_PER_STEP === ITEMS_PER_STEP - 1) yield
      const path = `items[${i}]`
      const item = expectRecord(items[i], path)
      const id = expectString(item.id, `${path}.id`, L.maxIdLength)
      if (ids.has(id)) fail(`expected unique product ids, got ${describe(id)} twice (${path}.id)`)
      ids.add(id)
      const index = expectIndex(item.index, `${path}.index`, bound)
      if (indices.has(index))
        fail(`expected unique item indices, got ${index} twice (${path}.index)`)
      indices.add(index)
      expectString(item.name, `${path}.name`, L.maxNameLength)
      expectString(item.category, `${path}.category`, L.maxLabelLength)
      expectString(item.brand, `${path}.brand`, L.maxLabelLength)
      expectNumber(item.price, `${path}.price`, 0, Number.MAX_SAFE_INTEGER)
      if (typeof item.inStock !== 'boolean') {
        fail(`expected ${path}.inStock to be a boolean, got ${describe(item.inStock)}`)
      }
      if (!bound.withoutDates) expectIsoDate(item.addedAt, `${path}.addedAt`)
      if (item.imageUrl !== undefined) {
        const url = expectString(item.imageUrl, `${path}.imageUrl`, L.maxUrlLength)
        if (!IMAGE_URL_RE.test(url)) {
          fail(`expected ${path}.imageUrl to be ${IMAGE_URL.description}, got ${describe(url)}`)
        }
      }
    }
  })
}

export function validateCandidatePools(
  raw: unknown,
  bound: IndexBound = {},
): Validation<CandidatePools> {
  return run('pools', raw, () => {
    const p = expectRecord(raw, 'the pools')
    expectLiteral(p.type, 'type', 'pocketrec-pools')
    for (const key of ['trending', 'popular', 'new'] as const) {
      expectIndexList(p[key], key, L.maxPoolLength, bound)
    }
    const byCategory = expectRecord(p.byCategory, 'byCategory')
    const categories = Object.keys(byCategory)
    if (categories.length > L.maxCategories) {
      fail(`expected at most ${L.maxCategories} categories in byCategory, got ${categories.length}`)
    }
    for (const name of categories) {
      if (name === '' || name.length > L.maxLabelLength) {
        fail(`expected byCategory keys of 1..${L.maxLabelLength} characters, got ${describe(name)}`)
      }
      expectIndexList(
        byCategory[name],
        `byCategory[${JSON.stringify(name)}]`,
        L.maxPoolLength,
        bound,
      )
    }
    const coVisitation = expectRecord(p.coVisitation, 'coVisitation')
    const keys = Object.keys(coVisitation)
    if (keys.length > L.maxItems) {
      fail(`expected at most ${L.maxItems} items in coVisitation, got ${keys.length}`)
    }
    for (const key of keys) {
      if (!CANONICAL_INDEX.test(key)) {
        fail(`expected coVisitation keys to be item indices like "12", got ${describe(key)}`)
      }
      expectIndex(Number(key), `coVisitation key ${key}`, bound)
      expectIndexList(coVisitation[key], `coVisitation["${key}"]`, L.maxNeighbours, bound)
    }
  })
}

export function validateRerankRules(raw: unknown): Validation<RerankRules> {
  return run('rules', raw, () => {
    const r = expectRecord(raw, 'the rules')
    expectLiteral(r.type, 'type', 'pocketrec-rules')
    expectNumber(r.excludePurchasedDays, 'excludePurchasedDays', 0, L.maxDays)
    expectInteger(r.maxPerCategory, 'maxPerCategory', 1, L.maxPerList)
    expectInteger(r.maxPerBrand, 'maxPerBrand', 1, L.maxPerList)
    const boosts = expectRecord(r.boosts, 'boosts')
    const boosted = Object.keys(boosts)
    if (boosted.length > L.maxBoosts) {
      fail(`expected at most ${L.maxBoosts} boosts, got ${boosted.length}`)
    }
    for (const productId of boosted) {
      checkKeyLength(productId, 'boosts')
      const path = `boosts[${JSON.stringify(productId)}]`
      const boost = expectNumber(boosts[productId], path, 0, L.maxBoost)
      if (boost === 0) fail(`expected ${path} to be above 0 (a multiplier), got 0`)
    }
    if (r.eventWeights !== undefined) {
      const weights = expectRecord(r.eventWeights, 'eventWeights')
      for (const kind of ENGAGEMENTS)
        expectNumber(weights[kind], `eventWeights.${kind}`, L.minEventWeight, L.maxEventWeight)
      if (weights.dwellPerMinute !== undefined)
        expectNumber(weights.dwellPerMinute, 'eventWeights.dwellPerMinute', 0, L.maxEventWeight)
      const known = [...ENGAGEMENTS, 'dwellPerMinute']
      const extra = Object.keys(weights).find((k) => !known.includes(k))
      if (extra !== undefined) fail(`expected eventWeights to have ${known.join(', ')} only; got ${describe(extra)}`) // prettier-ignore
    }
    const pins = expectRecord(r.pins, 'pins')
    for (const scenario of Object.keys(pins)) {
      if (!(SCENARIOS as readonly string[]).includes(scenario)) {
        fail(`expected pins keys to be one of ${SCENARIOS.join(', ')}; got ${describe(scenario)}`)
      }
      const list = expectArray(pins[scenario], `pins.${scenario}`, L.maxPinPosition + 1)
      const positions = new Set<number>()
      list.forEach((rawPin, i) => {
        const path = `pins.${scenario}[${i}]`
        const pin = expectRecord(rawPin, path)
        expectString(pin.productId, `${path}.productId`, L.maxIdLength)
        const position = expectInteger(pin.position, `${path}.position`, 0, L.maxPinPosition)
        if (positions.has(position)) {
          fail(`expected one pin per position in pins.${scenario}, got position ${position} twice`)
        }
        positions.add(position)
      })
    }
  })
}

export function isModelManifest(raw: unknown): raw is ModelManifest {
  return validateModelManifest(raw).ok
}

export function isCatalogue(raw: unknown): raw is Catalogue {
  return validateCatalogue(raw).ok
}

/** The devices' catalogue (P2b): a Catalogue with or without `addedAt`. */
export function isDeviceCatalogue(raw: unknown): raw is DeviceCatalogue {
  return validateCatalogue(raw, { withoutDates: true }).ok
}

export function isCandidatePools(raw: unknown): raw is CandidatePools {
  return validateCandidatePools(raw).ok
}

export function isRerankRules(raw: unknown): raw is RerankRules {
  return validateRerankRules(raw).ok
}

/**
 * Parses downloaded text and validates it in one step, so a truncated file is a value, not a
 * SyntaxError: `parseArtifact(await res.text(), validateCatalogue)`.
 */
export function parseArtifact<T>(
  text: string,
  validate: (raw: unknown) => Validation<T>,
): Validation<T> {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    return { ok: false, error: `expected JSON, got text that does not parse (${reason})` }
  }
  return validate(raw)
}

// ---------------------------------------------------------------------------------------------

/** Thrown inside a check and caught by `run`; it never leaves this module. */
class Invalid {
  constructor(readonly message: string) {}
}

function run<T>(what: string, raw: unknown, check: () => void): Validation<T> {
  return drain(runSteps<T>(what, raw, () => oneStep(check)))
}

function* runSteps<T>(what: string, raw: unknown, check: () => Steps<void>): Steps<Validation<T>> {
  try {
    yield* check()
  } catch (error) {
    if (error instanceof Invalid) return { ok: false, error: `${what}: ${error.message}` }
    throw error
  }
  return { ok: true, value: raw as T }
}

function fail(message: string): never {
  throw new Invalid(message)
}

function checkArtifactRef(raw: unknown, path: string): ArtifactRef {
  const ref = expectRecord(raw, path)
  const url = expectString(ref.url, `${path}.url`, L.maxUrlLength)
  // Relative to the manifest, or http(s): never javascript:, data:, file: and the like.
  const scheme = URL_SCHEME.exec(url)?.[0].toLowerCase()
  if (scheme !== undefined && scheme !== 'http:' && scheme !== 'https:') {
    fail(`expected ${path}.url to be relative or http(s), got scheme ${describe(scheme)}`)
  }
  if (/[\s\\]/.test(url) || hasControlCharacter(url)) {
    fail(
      `expected ${path}.url without whitespace, backslashes or control characters, got ${describe(url)}`,
    )
  }
  const sha256 = ref.sha256
  if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256)) {
    fail(`expected ${path}.sha256 to be 64 lowercase hex digits, got ${describe(sha256)}`)
  }
  expectInteger(ref.bytes, `${path}.bytes`, 0, L.maxArtifactBytes)
  return ref as unknown as ArtifactRef
}

function expectRecord(raw: unknown, path: string): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    fail(`expected ${path} to be an object, got ${describe(raw)}`)
  }
  return raw as Record<string, unknown>
}

function expectArray(raw: unknown, path: string, maxLength: number): unknown[] {
  if (!Array.isArray(raw)) fail(`expected ${path} to be an array, got ${describe(raw)}`)
  if (raw.length > maxLength) {
    fail(`expected ${path} to hold at most ${maxLength} entries, got ${raw.length}`)
  }
  return raw
}

function expectLiteral(raw: unknown, path: string, literal: string): void {
  if (raw !== literal) fail(`expected ${path} to be "${literal}", got ${describe(raw)}`)
}

function expectString(raw: unknown, path: string, maxLength: number): string {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > maxLength) {
    fail(`expected ${path} to be a string of 1..${maxLength} characters, got ${describe(raw)}`)
  }
  return raw
}

function expectNumber(raw: unknown, path: string, min: number, max: number): number {
  if (typeof raw !== 'number' || !Number.isFinite(raw) || raw < min || raw > max) {
    fail(`expected ${path} to be a number in [${min}, ${max}], got ${describe(raw)}`)
  }
  return raw
}

function expectInteger(raw: unknown, path: string, min: number, max: number): number {
  if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < min || raw > max) {
    fail(`expected ${path} to be an integer in ${min}..${max}, got ${describe(raw)}`)
  }
  return raw
}

function expectIndex(raw: unknown, path: string, bound: IndexBound): number {
  const limit = Math.min(bound.nItems ?? L.maxItems, L.maxItems)
  return expectInteger(raw, path, 0, limit - 1)
}

/** Item indices, best first: each in range and none twice. */
function expectIndexList(raw: unknown, path: string, maxLength: number, bound: IndexBound): void {
  const list = expectArray(raw, path, maxLength)
  const seen = new Set<number>()
  for (let i = 0; i < list.length; i++) {
    const index = expectIndex(list[i], `${path}[${i}]`, bound)
    if (seen.has(index)) fail(`expected distinct items in ${path}, got ${index} twice`)
    seen.add(index)
  }
}

function expectIsoDate(raw: unknown, path: string): void {
  if (typeof raw !== 'string' || !ISO_DATE.test(raw) || !Number.isFinite(Date.parse(raw))) {
    fail(
      `expected ${path} to be an ISO 8601 date such as 2026-01-31T12:00:00.000Z, got ${describe(raw)}`,
    )
  }
}

function checkKeyLength(key: string, path: string): void {
  if (key === '' || key.length > L.maxIdLength) {
    fail(`expected ${path} keys of 1..${L.maxIdLength} characters, got ${describe(key)}`)
  }
}

function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x20 || code === 0x7f) return true
  }
  return false
}

/** A short, safe rendering of an unexpected value for error messages. */
function describe(raw: unknown): string {
  if (raw === null) return 'null'
  if (raw === undefined) return 'nothing'
  if (Array.isArray(raw)) return `an array of ${raw.length}`
  if (typeof raw === 'object') return 'an object'
  if (typeof raw === 'string') return JSON.stringify(raw.length > 40 ? `${raw.slice(0, 40)}…` : raw)
  return `${typeof raw} ${String(raw)}`
}
