// The table sketch of P8b: what a device puts in, what the server takes out, and the norm P11
// bounds. The slice layout is tested where the server adds it up (server/federated/fedbuff.test.ts).
import { describe, expect, it } from 'vitest'
import {
  addUpdateValues,
  contributionNorm,
  extractSlice,
  sketchHash,
  type ModelShape,
} from './federation-layout'
import { createRandom } from './random'
import { updateNorm } from './update-codec'

const shape: ModelShape = { denseSize: 6, nItems: 500, embedDim: 4 }
const layout = { denseCoordinates: 2, sliceRows: 16, embedDim: 4, tableSketch: true }
const d = shape.embedDim

/** A table difference with only `rows` non-zero (what one session's training moves). */
function sparseTable(rows: number[], random: () => number): Float32Array {
  const table = new Float32Array(shape.nItems * d)
  for (const row of rows) for (let c = 0; c < d; c++) table[row * d + c] = random() * 2 - 1
  return table
}

/** What the server adds for one update of weight 1: dense then table, flat. */
function unsketch(values: Float32Array, seed: number): Float64Array {
  const out = new Float64Array(shape.denseSize + shape.nItems * d)
  addUpdateValues(out, values, 1, seed, layout, shape, () => {})
  return out
}

describe('table sketch (PROTOCOL.md P8b)', () => {
  it('hashes rows evenly over buckets and signs', () => {
    const counts = new Array<number>(16).fill(0)
    let negative = 0
    const n = 16_000
    for (let row = 0; row < n; row++) {
      const h = sketchHash(12345, row)
      counts[h % 16]!++
      if (h >= 2 ** 31) negative++
      expect(h).toBe(sketchHash(12345, row))
    }
    for (const count of counts) expect(Math.abs(count - n / 16)).toBeLessThan(100) // 3.3 σ
    expect(Math.abs(negative - n / 2)).toBeLessThan(300) // 4.7 σ
    expect(sketchHash(1, 7)).not.toBe(sketchHash(2, 7))
  })

  it('puts a lone row, signed, in its bucket and the dense window in front', () => {
    const random = createRandom(1)
    const table = sparseTable([123], random)
    const dense = Float32Array.from({ length: shape.denseSize }, (_, i) => i + 1)
    const seed = 99
    const values = extractSlice({ dense, table }, seed, layout, shape)
    expect(values).toHaveLength(2 + 16 * d)
    const h = sketchHash(seed, 123)
    const sign = h >= 2 ** 31 ? -1 : 1
    const bucket = Array.from(values.subarray(2 + (h % 16) * d, 2 + (h % 16) * d + d))
    expect(bucket).toEqual(Array.from(table.subarray(123 * d, 124 * d), (x) => sign * x))
    const others = Array.from(values.subarray(2)).filter((x) => x !== 0)
    expect(others).toHaveLength(d)
    // Dense window of slice 99: [(99·2) mod 6, … + 2) = coordinates 0, 1.
    expect(Array.from(values.subarray(0, 2))).toEqual([1, 2])
  })

  it('gives the server every row back, unbiased over seeds', () => {
    const random = createRandom(2)
    // 40 touched rows: without the signs, each estimate would carry 1/16 of the other 39.
    const rows = [...new Set(Array.from({ length: 60 }, () => Math.floor(random() * 500)))].slice(
      0,
      40,
    )
    const table = sparseTable(rows, random)
    const dense = new Float32Array(shape.denseSize)
    const seeds = 4000
    const mean = new Float64Array(shape.nItems * d)
    for (let seed = 0; seed < seeds; seed++) {
      const got = unsketch(extractSlice({ dense, table }, seed, layout, shape), seed)
      for (let i = 0; i < mean.length; i++) mean[i]! += got[shape.denseSize + i]! / seeds
    }
    // Each row's estimate is itself plus, when another touched row shares its bucket (1/16 of
    // seeds per other row), ± that row: the mean converges to the table (σ ≈ 0.015 here).
    let worst = 0
    for (let i = 0; i < mean.length; i++) worst = Math.max(worst, Math.abs(mean[i]! - table[i]!))
    expect(worst).toBeLessThan(0.1)
    // And a single seed is far from it: rows that were never touched get their bucket's sum.
    const one = unsketch(extractSlice({ dense, table }, 0, layout, shape), 0)
    const untouched = Array.from(one.subarray(shape.denseSize)).filter(
      (x, i) => x !== 0 && !rows.includes(Math.floor(i / d)),
    )
    expect(untouched.length).toBeGreaterThan(100)
  })

  it("P11's norm is the norm of what the update does to the model", () => {
    const random = createRandom(3)
    const values = Float32Array.from({ length: 2 + 16 * d }, () => random() - 0.5)
    for (const seed of [0, 1, 2 ** 32 - 1]) {
      const added = unsketch(values, seed)
      const direct = Math.sqrt(added.reduce((sum, x) => sum + x * x, 0))
      expect(contributionNorm(values, seed, layout, shape.nItems)).toBeCloseTo(direct, 9)
    }
    // About √(nItems / buckets) times the sketch's own norm; a slice's is its values' norm.
    const ratio = contributionNorm(values, 5, layout, shape.nItems) / updateNorm(values)
    expect(ratio).toBeGreaterThan(4)
    const sliceLayout = { ...layout, tableSketch: undefined }
    expect(contributionNorm(values, 5, sliceLayout, shape.nItems)).toBe(updateNorm(values))
  })
})

describe('a sketch of the appended rows only (PROTOCOL.md P8c)', () => {
  const appended = { ...layout, sketchFromRow: 400 }

  it('leaves rows before sketchFromRow out on the device and untouched on the server', () => {
    const random = createRandom(3)
    const table = sparseTable([10, 450], random)
    const dense = new Float32Array(shape.denseSize)
    const values = extractSlice({ dense, table }, 7, appended, shape)
    // Only row 450 is in the sketch: exactly one bucket is non-zero, and it is row 450's.
    const h = sketchHash(7, 450)
    const bucket = 2 + (h % 16) * d
    const sign = h >= 2 ** 31 ? -1 : 1
    expect(Array.from(values.subarray(bucket, bucket + d))).toEqual(
      Array.from(table.subarray(450 * d, 451 * d), (x) => sign * x),
    )
    expect(Array.from(values.subarray(2)).filter((x) => x !== 0)).toHaveLength(d)
    // The server adds buckets to rows 400–499 only, and counts only those.
    const out = new Float64Array(shape.denseSize + shape.nItems * d)
    const rows: number[] = []
    addUpdateValues(out, values, 1, 7, appended, shape, (j) => {
      if (j >= shape.denseSize) rows.push(j - shape.denseSize)
    })
    expect(rows).toEqual(Array.from({ length: 100 }, (_, i) => 400 + i))
    expect(out.subarray(shape.denseSize, shape.denseSize + 400 * d).every((x) => x === 0)).toBe(
      true,
    )
    expect(out[shape.denseSize + 450 * d]).toBeCloseTo(table[450 * d]!, 6)
  })

  it("P11's norm counts a bucket once per sketched row, not per table row", () => {
    const values = extractSlice(
      { dense: new Float32Array(shape.denseSize), table: sparseTable([450], createRandom(4)) },
      7,
      appended,
      shape,
    )
    // 100 rows over 16 buckets against 500: the appended sketch's norm is the smaller.
    expect(contributionNorm(values, 7, appended, shape.nItems)).toBeLessThan(
      contributionNorm(values, 7, layout, shape.nItems),
    )
  })
})
