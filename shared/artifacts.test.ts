import { describe, expect, it } from 'vitest'
import {
  isCandidatePools,
  isCatalogue,
  isModelManifest,
  isRerankRules,
  parseArtifact,
  validateCandidatePools,
  validateCatalogue,
  validateModelManifest,
  validateExperiments,
  validateRerankRules,
  type Validation,
} from './artifacts'
import type { CandidatePools, Catalogue, ModelManifest, RerankRules } from './protocol'
import { createRandom } from './random'

const SHA = 'ab'.repeat(32)

function manifest(): ModelManifest {
  return {
    type: 'pocketrec-manifest',
    version: 'v1',
    createdAt: '2026-11-27T06:00:00.000Z',
    model: { url: '0123456789abcdef.model.prw', sha256: SHA, bytes: 1234 },
    catalogue: { url: 'c.catalogue.json', sha256: SHA, bytes: 10 },
    pools: { url: 'https://cdn.example.com/p.pools.json', sha256: SHA, bytes: 0 },
    rules: { url: '../rules/r.rules.json', sha256: SHA, bytes: 5 },
  }
}

function catalogue(): Catalogue {
  const item = (index: number, category: string) => ({
    id: `p-${100 + index}`,
    index,
    name: `Cosy Sage Mug ${index}`,
    category,
    brand: 'Copperleaf',
    price: 12.99,
    inStock: index !== 2,
    addedAt: '2026-08-03T10:15:00.000Z',
  })
  return {
    type: 'pocketrec-catalogue',
    items: [item(0, 'Kitchen'), item(1, 'Kitchen'), item(2, 'Bath'), item(3, 'Bath')],
  }
}

function pools(): CandidatePools {
  return {
    type: 'pocketrec-pools',
    trending: [2, 0, 1],
    popular: [0, 1, 2, 3],
    new: [3, 1],
    byCategory: { Kitchen: [0, 1], Bath: [2, 3] },
    coVisitation: { '0': [1, 2], '1': [0], '3': [2] },
  }
}

function rules(): RerankRules {
  return {
    type: 'pocketrec-rules',
    excludePurchasedDays: 30,
    maxPerCategory: 4,
    maxPerBrand: 3,
    boosts: { 'p-101': 1.5 },
    pins: { trending: [{ productId: 'p-100', position: 0 }] },
  }
}

type Validator = (raw: unknown) => Validation<unknown>

const CASES: Array<{ name: string; make: () => unknown; validate: Validator }> = [
  { name: 'manifest', make: manifest, validate: validateModelManifest },
  { name: 'catalogue', make: catalogue, validate: (raw) => validateCatalogue(raw, { nItems: 4 }) },
  { name: 'pools', make: pools, validate: (raw) => validateCandidatePools(raw, { nItems: 4 }) },
  { name: 'rules', make: rules, validate: validateRerankRules },
]

/** Expects a refusal and returns its message. */
function refusal(result: Validation<unknown>): string {
  expect(result.ok).toBe(false)
  return result.ok ? '' : result.error
}

describe('artifact guards accept what the exporter writes', () => {
  it.each(CASES)('accepts a valid $name and returns it unchanged', ({ make, validate }) => {
    const value = make()
    expect(validate(value)).toEqual({ ok: true, value })
  })

  it('offers isX forms of every guard', () => {
    expect(isModelManifest(manifest())).toBe(true)
    expect(isCatalogue(catalogue())).toBe(true)
    expect(isCandidatePools(pools())).toBe(true)
    expect(isRerankRules(rules())).toBe(true)
    expect(isCatalogue(pools())).toBe(false)
  })

  it('ignores unknown keys, so a newer server can add optional fields', () => {
    expect(validateModelManifest({ ...manifest(), signature: 'x' }).ok).toBe(true)
    const c = catalogue()
    Object.assign(c.items[0]!, { colour: 'sage' })
    expect(validateCatalogue(c).ok).toBe(true)
  })

  it("accepts a manifest's fine-tuning rate only within (0, 0.1]", () => {
    const withRate = (learningRate: unknown) =>
      validateModelManifest({ ...manifest(), localTraining: { learningRate } })
    expect(withRate(0.0005).ok).toBe(true)
    expect(refusal(withRate(0.5))).toBe(
      'manifest: expected localTraining.learningRate to be a number in [0.000001, 0.1], got number 0.5',
    )
    expect(withRate(Number.NaN).ok).toBe(false)
    expect(withRate('0.001').ok).toBe(false)
    expect(validateModelManifest({ ...manifest(), localTraining: 3 }).ok).toBe(false)
  })

  it('P30: accepts experiments a device can apply, and names the field of one it cannot', () => {
    const arms = [
      { name: 'model', share: 9, lists: 'model' },
      { name: 'pools', share: 1, lists: 'pools' },
    ]
    const withExperiments = (experiments: unknown) =>
      validateModelManifest({ ...manifest(), experiments })
    expect(withExperiments([{ id: 'holdout', key: 'k', arms }]).ok).toBe(true)
    expect(withExperiments([]).ok).toBe(true)
    expect(
      refusal(
        withExperiments([
          { id: 'holdout', key: 'k', arms: [arms[0], { ...arms[1], lists: 'random' }] },
        ]),
      ),
    ).toBe('manifest: expected experiments[0].arms[1].lists to be "model" or "pools", got "random"')
    expect(
      refusal(
        withExperiments([{ id: 'holdout', key: 'k', arms: [arms[0], { ...arms[1], share: -1 }] }]),
      ),
    ).toBe('manifest: experiments[0]: arms[1].share -1')
    expect(refusal(withExperiments([{ id: 'holdout', key: 'k', arms: [arms[0]] }]))).toBe(
      'manifest: experiments[0]: arms: 2 to 8, got 1',
    )
    const twice = [
      { id: 'a', key: 'k', arms },
      { id: 'a', key: 'k', arms },
    ]
    expect(refusal(withExperiments(twice))).toBe(
      'manifest: expected distinct ids in experiments, got a twice',
    )
    expect(
      withExperiments(Array.from({ length: 5 }, (_, i) => ({ id: `e${i}`, key: 'k', arms }))).ok,
    ).toBe(false)
    expect(validateExperiments([{ id: 'x'.repeat(33), key: 'k', arms }]).ok).toBe(false)
    const numbered = [{ ...arms[0], name: 7 }, arms[1]]
    expect(refusal(withExperiments([{ id: 'a', key: 'k', arms: numbered }]))).toMatch(
      /experiments\[0\]\.arms\[0\]\.name to be a string/,
    )
    // P30e: an arm may explore up to half of its lists' slots.
    const exploring = (explore: unknown) => [{ id: 'a', key: 'k', arms: [arms[0], { ...arms[1], explore }] }] // prettier-ignore
    expect(withExperiments(exploring(0.1)).ok).toBe(true)
    expect(refusal(withExperiments(exploring(0.6)))).toMatch(/arms\[1\]\.explore/)
    expect(refusal(withExperiments(exploring(0)))).toMatch(/arms\[1\]\.explore above 0/)
  })

  it('accepts co-visitation shards, and refuses a shard reference that is not one (P2b)', () => {
    const shard = { url: 'a.covisit.bin', sha256: SHA, bytes: 9 }
    const withShards = (coVisitation: unknown) =>
      validateModelManifest({ ...manifest(), coVisitation })
    expect(withShards({ itemsPerShard: 1024, shards: [shard, shard] }).ok).toBe(true)
    expect(
      refusal(withShards({ itemsPerShard: 1024, shards: [{ ...shard, url: 'data:x' }] })),
    ).toBe(
      'manifest: expected coVisitation.shards[0].url to be relative or http(s), got scheme "data:"',
    )
    expect(refusal(withShards({ itemsPerShard: 0, shards: [] }))).toBe(
      'manifest: expected coVisitation.itemsPerShard to be an integer in 1..10000000, got number 0',
    )
    expect(withShards({ itemsPerShard: 4, shards: 'all' }).ok).toBe(false)
  })

  it('accepts a federation block of the two-server channel, and refuses a broken one (P29c)', () => {
    const federation = {
      layout: { maxRows: 32, embedDim: 3, denseCoordinates: 4, negativeRows: 2 },
      clipNorm: 30,
      negatives: [5, 9],
      helper: '/helper',
      learningRate: 0.05,
      denseLearningRate: 0.001,
      epochs: 1,
    }
    const withFederation = (extra: Record<string, unknown>) =>
      validateModelManifest({ ...manifest(), federation: { ...federation, ...extra } })
    expect(withFederation({}).ok).toBe(true)
    expect(refusal(withFederation({ negatives: [5] }))).toBe(
      'manifest: expected 2 public negatives in federation.negatives, got 1',
    )
    expect(refusal(withFederation({ negatives: [5, 5] }))).toBe(
      'manifest: expected distinct rows in federation.negatives',
    )
    expect(withFederation({ negatives: [5, -1] }).ok).toBe(false)
    expect(withFederation({ helper: '' }).ok).toBe(false)
    expect(withFederation({ layout: { ...federation.layout, maxRows: 0 } }).ok).toBe(false)
    // The slice layout of issue 4 (P8) is not a federation block any more.
    expect(withFederation({ layout: { denseCoordinates: 4, sliceRows: 2, embedDim: 3 } }).ok).toBe(
      false,
    )
  })

  it('accepts empty pools, catalogues and rules without boosts or pins', () => {
    const empty = {
      ...pools(),
      trending: [],
      popular: [],
      new: [],
      byCategory: {},
      coVisitation: {},
    }
    expect(validateCandidatePools(empty).ok).toBe(true)
    expect(validateCatalogue({ type: 'pocketrec-catalogue', items: [] }).ok).toBe(true)
    expect(validateRerankRules({ ...rules(), boosts: {}, pins: {} }).ok).toBe(true)
  })
})

describe('artifact guards refuse with what was expected and what arrived', () => {
  it('names the artifact, the field and the value', () => {
    const c = catalogue() as unknown as { items: Array<Record<string, unknown>> }
    c.items[2]!.price = '12.99'
    expect(refusal(validateCatalogue(c))).toBe(
      'catalogue: expected items[2].price to be a number in [0, 9007199254740991], got "12.99"',
    )
    expect(refusal(validateModelManifest({ ...manifest(), type: 'pocketrec-pools' }))).toBe(
      'manifest: expected type to be "pocketrec-manifest", got "pocketrec-pools"',
    )
    expect(refusal(validateRerankRules([]))).toBe(
      'rules: expected the rules to be an object, got an array of 0',
    )
  })

  it('refuses artifact URLs with a script, data or file scheme, or with whitespace', () => {
    for (const url of ['javascript:alert(1)', 'DATA:text/html,x', 'file:///etc/passwd']) {
      const m = manifest()
      m.model.url = url
      expect(refusal(validateModelManifest(m))).toMatch(/model\.url to be relative or http\(s\)/)
    }
    const m = manifest()
    m.rules.url = 'a b.json'
    expect(refusal(validateModelManifest(m))).toMatch(/rules\.url without whitespace/)
    m.rules.url = 'HTTPS://cdn.example.com/r.json'
    expect(validateModelManifest(m).ok).toBe(true)
  })

  it('refuses a digest that is not 64 lowercase hex digits and a negative size', () => {
    const m = manifest()
    m.pools.sha256 = SHA.toUpperCase()
    expect(refusal(validateModelManifest(m))).toMatch(/pools\.sha256 to be 64 lowercase hex/)
    const n = manifest()
    n.catalogue.bytes = -1
    expect(refusal(validateModelManifest(n))).toMatch(/catalogue\.bytes to be an integer/)
  })

  it('refuses dates that are not ISO 8601', () => {
    for (const createdAt of ['yesterday', '27/11/2026', '2026-11-27 06:00', '2026-13-45T99:99Z']) {
      expect(refusal(validateModelManifest({ ...manifest(), createdAt }))).toMatch(
        /createdAt to be an ISO 8601 date/,
      )
    }
    expect(validateModelManifest({ ...manifest(), createdAt: '2026-11-27' }).ok).toBe(true)
  })

  it('refuses duplicate product ids and item indices in a catalogue', () => {
    const ids = catalogue()
    ids.items[3]!.id = 'p-100'
    expect(refusal(validateCatalogue(ids))).toBe(
      'catalogue: expected unique product ids, got "p-100" twice (items[3].id)',
    )
    const indices = catalogue()
    indices.items[3]!.index = 1
    expect(refusal(validateCatalogue(indices))).toMatch(/unique item indices, got 1 twice/)
  })

  it('refuses item indices beyond the model when the item count is given', () => {
    expect(validateCatalogue(catalogue(), { nItems: 3 }).ok).toBe(false)
    const p = pools()
    expect(refusal(validateCandidatePools(p, { nItems: 3 }))).toBe(
      'pools: expected popular[3] to be an integer in 0..2, got number 3',
    )
    expect(validateCandidatePools(p).ok).toBe(true)
  })

  it('refuses repeated items in a pool and non-canonical co-visitation keys', () => {
    expect(refusal(validateCandidatePools({ ...pools(), new: [1, 1] }))).toBe(
      'pools: expected distinct items in new, got 1 twice',
    )
    for (const key of ['01', '-1', '1.0', 'x', ' 1']) {
      const p = { ...pools(), coVisitation: { [key]: [0] } }
      expect(refusal(validateCandidatePools(p))).toMatch(/coVisitation keys to be item indices/)
    }
  })

  it('takes "__proto__" from JSON as a plain key, not as a prototype', () => {
    const text = JSON.stringify(pools()).replace('"Kitchen"', '"__proto__"')
    const parsed = parseArtifact(text, validateCandidatePools)
    expect(parsed.ok).toBe(true)
    const bad = JSON.stringify(pools()).replace('"Kitchen":[0,1]', '"__proto__":{"x":1}')
    expect(refusal(parseArtifact(bad, validateCandidatePools))).toMatch(
      /byCategory\["__proto__"\] to be an array, got an object/,
    )
  })

  it('takes event weights with all four kinds in range, and refuses any other (P30d)', () => {
    const weights = { view: 1, click: 2, add: 4, purchase: 8 }
    expect(validateRerankRules({ ...rules(), eventWeights: weights }).ok).toBe(true)
    expect(refusal(validateRerankRules({ ...rules(), eventWeights: { ...weights, add: 0 } }))).toMatch(/eventWeights\.add/) // prettier-ignore
    expect(refusal(validateRerankRules({ ...rules(), eventWeights: { view: 1, click: 2, add: 4 } }))).toMatch(/eventWeights\.purchase/) // prettier-ignore
    expect(refusal(validateRerankRules({ ...rules(), eventWeights: { ...weights, dwell: 1 } }))).toMatch(/dwell/) // prettier-ignore
  })

  it('refuses pins for unknown scenarios, out of the list or twice at one position', () => {
    const r = rules() as unknown as { pins: Record<string, unknown> }
    r.pins['home-page'] = []
    expect(refusal(validateRerankRules(r))).toMatch(/pins keys to be one of for-you, similar/)
    const far = rules()
    far.pins.similar = [{ productId: 'p-1', position: 50 }]
    expect(refusal(validateRerankRules(far))).toMatch(/pins\.similar\[0\]\.position .* 0\.\.49/)
    const twice = rules()
    twice.pins['for-you'] = [
      { productId: 'p-1', position: 3 },
      { productId: 'p-2', position: 3 },
    ]
    expect(refusal(validateRerankRules(twice))).toMatch(/one pin per position .* 3 twice/)
  })

  it('refuses a zero, negative or huge boost and caps below one', () => {
    for (const boost of [0, -1, 1e9]) {
      expect(validateRerankRules({ ...rules(), boosts: { 'p-1': boost } }).ok).toBe(false)
    }
    expect(refusal(validateRerankRules({ ...rules(), maxPerBrand: 0 }))).toMatch(
      /maxPerBrand to be an integer in 1\.\.1000, got number 0/,
    )
  })

  it('refuses lists longer than the limits before walking them', () => {
    const long = { ...pools(), trending: new Array(10_001).fill(0) }
    expect(refusal(validateCandidatePools(long))).toBe(
      'pools: expected trending to hold at most 10000 entries, got 10001',
    )
  })
})

// ---- Fuzz ------------------------------------------------------------------------------------

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

/** Every path to a value inside `value` (not the root), as key lists. */
function listPaths(
  value: Json,
  prefix: Array<string | number> = [],
): Array<Array<string | number>> {
  if (value === null || typeof value !== 'object') return []
  const entries: Array<[string | number, Json]> = Array.isArray(value)
    ? value.map((v, i) => [i, v])
    : Object.entries(value)
  return entries.flatMap(([key, child]) => [
    [...prefix, key],
    ...listPaths(child, [...prefix, key]),
  ])
}

function parentOf(root: Json, path: Array<string | number>): Record<string | number, Json> {
  let node = root as Record<string | number, Json>
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, Json>
  return node
}

const WRONG_VALUES: Json[] = [null, -1, 1.5, 1e300, '', 'x', true, [], {}, [null], { a: 1 }]

/**
 * A deliberately loose, independent model of "structurally valid": right JSON types in the
 * right places. Whatever a guard accepts must at least pass this.
 */
const str = (v: unknown) => typeof v === 'string' && v.length > 0
const idx = (v: unknown) => Number.isInteger(v) && (v as number) >= 0
const num = (v: unknown) => typeof v === 'number' && Number.isFinite(v)
const date = (v: unknown) => typeof v === 'string' && Number.isFinite(Date.parse(v))
const obj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)
const list = (v: unknown, each: (x: unknown) => boolean) => Array.isArray(v) && v.every(each)
const ref = (v: unknown) => obj(v) && str(v.url) && str(v.sha256) && idx(v.bytes)
const ORACLES: Record<string, (v: unknown) => boolean> = {
  manifest: (v) =>
    obj(v) &&
    v.type === 'pocketrec-manifest' &&
    str(v.version) &&
    date(v.createdAt) &&
    ['model', 'catalogue', 'pools', 'rules'].every((k) => ref(v[k])),
  catalogue: (v) =>
    obj(v) &&
    v.type === 'pocketrec-catalogue' &&
    list(
      v.items,
      (x) =>
        obj(x) &&
        str(x.id) &&
        idx(x.index) &&
        (x.index as number) < 4 &&
        str(x.name) &&
        str(x.category) &&
        str(x.brand) &&
        num(x.price) &&
        typeof x.inStock === 'boolean' &&
        date(x.addedAt),
    ),
  pools: (v) => {
    const inRange = (x: unknown) => idx(x) && (x as number) < 4
    return (
      obj(v) &&
      v.type === 'pocketrec-pools' &&
      ['trending', 'popular', 'new'].every((k) => list(v[k], inRange)) &&
      obj(v.byCategory) &&
      Object.values(v.byCategory).every((l) => list(l, inRange)) &&
      obj(v.coVisitation) &&
      Object.entries(v.coVisitation).every(([k, l]) => inRange(Number(k)) && list(l, inRange))
    )
  },
  rules: (v) =>
    obj(v) &&
    v.type === 'pocketrec-rules' &&
    num(v.excludePurchasedDays) &&
    idx(v.maxPerCategory) &&
    idx(v.maxPerBrand) &&
    obj(v.boosts) &&
    Object.values(v.boosts).every(num) &&
    obj(v.pins) &&
    Object.values(v.pins).every((l) =>
      list(l, (p) => obj(p) && str(p.productId) && idx(p.position)),
    ),
}

describe('artifact guards under fuzzing', () => {
  // Keys of these objects are data (product ids, categories, items, scenarios): each optional.
  const isMap = (path: Array<string | number>) =>
    /^(boosts|pins|byCategory|coVisitation)$/.test(String(path[path.length - 2]))

  it.each(CASES)(
    'refuses the $name with any required field missing, naming it',
    ({ make, validate }) => {
      const valid = make() as Json
      for (const path of listPaths(valid)) {
        const key = path[path.length - 1]!
        if (typeof key === 'number' || isMap(path)) continue
        const mutant = structuredClone(valid)
        delete parentOf(mutant, path)[key]
        expect(refusal(validate(mutant))).toContain(String(key))
      }
    },
  )

  it.each(CASES)(
    'accepts a $name with any value replaced by a wrong one only if it is still well-typed',
    ({ name, make, validate }) => {
      const valid = make() as Json
      let refused = 0
      let tried = 0
      for (const path of listPaths(valid)) {
        const original = parentOf(valid, path)[path[path.length - 1]!]
        for (const wrong of WRONG_VALUES) {
          const mutant = structuredClone(valid)
          parentOf(mutant, path)[path[path.length - 1]!] = structuredClone(wrong)
          const result = validate(mutant)
          tried++
          if (!result.ok) {
            refused++
            continue
          }
          const where = `${name} ${path.join('.')} = ${JSON.stringify(wrong)}`
          expect(typeof wrong, where).toBe(typeof original)
          expect(ORACLES[name]!(mutant), where).toBe(true)
        }
      }
      expect(refused / tried).toBeGreaterThan(0.8)
    },
  )

  it.each(CASES)('refuses every truncation of a valid $name as JSON', ({ make, validate }) => {
    const text = JSON.stringify(make())
    for (let cut = 0; cut < text.length; cut++) {
      const result = parseArtifact(text.slice(0, cut), validate)
      expect(result.ok).toBe(false)
    }
    expect(parseArtifact(text, validate).ok).toBe(true)
  })

  it.each(CASES)(
    'never throws on random edits of a valid $name, and what passes is structurally valid',
    ({ name, make, validate }) => {
      const random = createRandom(0xfa11 + name.length)
      const text = JSON.stringify(make())
      const alphabet = '{}[]",:0123456789-.eE truefalsnul\\xp_'
      let accepted = 0
      for (let trial = 0; trial < 3000; trial++) {
        let mutant = text
        const edits = 1 + Math.floor(random() * 3)
        for (let e = 0; e < edits; e++) {
          const at = Math.floor(random() * mutant.length)
          const char = alphabet[Math.floor(random() * alphabet.length)]!
          const op = random()
          if (op < 0.4) mutant = mutant.slice(0, at) + char + mutant.slice(at + 1)
          else if (op < 0.7) mutant = mutant.slice(0, at) + mutant.slice(at + 1)
          else mutant = mutant.slice(0, at) + char + mutant.slice(at)
        }
        const result = parseArtifact(mutant, validate)
        if (result.ok) {
          accepted++
          expect(ORACLES[name]!(result.value), mutant).toBe(true)
        } else {
          expect(typeof result.error).toBe('string')
        }
      }
      // Most edits break the structure; some (inside a name, a digit of a price) do not.
      expect(accepted).toBeGreaterThan(0)
      expect(accepted).toBeLessThan(3000 * 0.5)
    },
  )
})
