import { describe, expect, it } from 'vitest'
import { createRandom } from '../../shared/random'
import {
  accumulate,
  applyBuffer,
  checkVersion,
  createBuffer,
  shouldPublish,
  sliceSpan,
  updateWeight,
  type FedBuffSettings,
  type ModelShape,
  type ServerMoments,
} from './fedbuff'
import { bestOrder, epsilonAfter } from './privacy'

// A model of 5 dense weights and a 4 × 2 table; updates carry 3 dense values and 2 rows.
const shape: ModelShape = { denseSize: 5, nItems: 4, embedDim: 2 }
const layout = { denseCoordinates: 3, sliceRows: 2, embedDim: 2 }
const settings: FedBuffSettings = {
  layout,
  bufferSize: 3,
  minBuffer: 2,
  maxWaitMs: 10_000,
  maxStaleness: 2,
  exampleCap: 100,
  clipNorm: 1,
  serverLearningRate: 0.5,
  noiseMultiplier: 0,
}

const values = (...v: number[]) => Float32Array.from(v)

describe('FedAdam on the server (PROTOCOL.md P18)', () => {
  const adam = { ...settings, serverLearningRate: 0.1, serverOptimizer: 'adam' as const }
  const release = (update: number[], moments?: ServerMoments) => {
    const buffer = createBuffer(shape)
    accumulate(buffer, shape, { slice: 0, layout, values: values(...update) }, 1, 0)
    const weights = { dense: new Float32Array(5), table: new Float32Array(8) }
    return applyBuffer(weights, buffer, shape, adam, () => 0, moments)
  }

  it('steps by η·m̂/(√v̂ + τ) and carries the moments to the next release', () => {
    // Release 1: Δ = 0.5 on dense 0: m = 0.05, v = 0.0025; m̂ = 0.5, v̂ = 0.25.
    const first = release([0.5, 0, 0, 0, 0, 0, 0])
    expect(first.dense[0]).toBeCloseTo((0.1 * 0.5) / (0.5 + 1e-3), 6)
    expect(first.moments!.step).toBe(1)
    expect(first.moments!.m[0]).toBeCloseTo(0.05, 7)
    // Release 2: Δ = −0.5: m = −0.005, v = 0.004975; m̂ = −0.005/0.19, v̂ = 0.004975/0.0199.
    const second = release([-0.5, 0, 0, 0, 0, 0, 0], first.moments)
    const mHat = -0.005 / (1 - 0.9 ** 2)
    const vHat = 0.004975 / (1 - 0.99 ** 2)
    expect(second.dense[0]).toBeCloseTo((0.1 * mHat) / (Math.sqrt(vHat) + 1e-3), 6)
    // Dense 3 and table rows 2, 3 were covered by no update: weights and moments stay.
    expect(second.dense[3]).toBe(0)
    expect(second.moments!.v[3]).toBe(0)
    expect(Array.from(second.table.subarray(4))).toEqual([0, 0, 0, 0])
    expect(first.moments!.m[0]).toBeCloseTo(0.05, 7) // inputs untouched
  })

  it('without the setting, plain η·Δ and no moments', () => {
    const buffer = createBuffer(shape)
    accumulate(buffer, shape, { slice: 0, layout, values: values(0.5, 0, 0, 0, 0, 0, 0) }, 1, 0)
    const weights = { dense: new Float32Array(5), table: new Float32Array(8) }
    const plain = applyBuffer(weights, buffer, shape, settings, () => 0)
    expect(plain.dense[0]).toBe(0.25) // η = 0.5
    expect(plain.moments).toBeUndefined()
  })
})

describe('table rows summed over the buffer (PROTOCOL.md P18b)', () => {
  it('moves only the rows tableRows allows', () => {
    const buffer = createBuffer(shape)
    accumulate(
      buffer,
      shape,
      { slice: 0, layout, values: values(0.2, 0, 0, 0.4, 0.6, 0.8, 1) },
      1,
      0,
    )
    const weights = { dense: new Float32Array(5), table: new Float32Array(8) }
    const only = { ...settings, serverLearningRate: 1, tableRows: Uint8Array.of(0, 1, 1, 1) }
    const next = applyBuffer(weights, buffer, shape, only, () => 0)
    expect(Array.from(next.table)).toEqual([0, 0, 0.800000011920929, 1, 0, 0, 0, 0])
    expect(next.dense[0]).toBeCloseTo(0.2, 6) // dense weights are not the table's
  })

  it('scales a row mean by the buffer size, and leaves dense weights a mean', () => {
    const sum = { ...settings, serverLearningRate: 1, tableAggregation: 'sum' as const }
    const buffer = createBuffer(shape)
    // Slice 0 covers dense 0–2 and rows 0–1; slice 1 dense 3, 4, 0 and rows 2–3.
    accumulate(buffer, shape, { slice: 0, layout, values: values(0.2, 0, 0, 0.4, 0.6, 0, 0) }, 1, 0)
    accumulate(buffer, shape, { slice: 0, layout, values: values(0.4, 0, 0, 0.2, 0, 0, 0) }, 1, 0)
    accumulate(buffer, shape, { slice: 1, layout, values: values(0, 0, 0.6, 0, 0, 0.3, 0) }, 0.5, 0)
    const weights = { dense: new Float32Array(5), table: new Float32Array(8) }
    const next = applyBuffer(weights, buffer, shape, sum, () => 0)
    // Dense 0: covered by all three (slice 1's third value), (0.2 + 0.4 + 0.5·0.6) / 3.
    expect(next.dense[0]).toBeCloseTo(0.3, 6)
    // Row 0: covered by two of the three updates, mean (0.4 + 0.2)/2 = 0.3, times 3 updates.
    expect(next.table[0]).toBeCloseTo(0.9, 6)
    expect(next.table[1]).toBeCloseTo(0.9, 6) // (0.6 + 0)/2 · 3
    // Row 3 (slice 1's second row), one update of weight 0.5: 0.5·0.3 · 3.
    expect(next.table[6]).toBeCloseTo(0.45, 6)
    // The same buffer with the default mean: row 0 moves by the mean only.
    expect(
      applyBuffer(weights, buffer, shape, { ...sum, tableAggregation: 'mean' }, () => 0).table[0],
    ).toBeCloseTo(0.3, 6)
  })
})

describe('FedBuff aggregation (PROTOCOL.md P14–P18)', () => {
  it('P8: places slices contiguously and wraps around each group', () => {
    expect(sliceSpan(0, layout, shape)).toEqual({ denseStart: 0, rowStart: 0 })
    expect(sliceSpan(1, layout, shape)).toEqual({ denseStart: 3, rowStart: 2 })
    expect(sliceSpan(2, layout, shape)).toEqual({ denseStart: 1, rowStart: 0 }) // 6 mod 5, 4 mod 4
    // Exact for the largest slice numbers a token can carry.
    const big = { denseSize: 100_700, nItems: 43_097, embedDim: 100 }
    const span = sliceSpan(
      0xffffffff,
      { denseCoordinates: 16_384, sliceRows: 150, embedDim: 100 },
      big,
    )
    expect(span.denseStart).toBe(Number((0xffffffffn * 16_384n) % 100_700n))
    expect(span.rowStart).toBe(Number((0xffffffffn * 150n) % 43_097n))
    expect(() => sliceSpan(0, { ...layout, embedDim: 3 }, shape)).toThrow(RangeError)
    expect(() => sliceSpan(0, { ...layout, sliceRows: 5 }, shape)).toThrow(RangeError)
  })

  it('P14: accepts the current version and up to S behind, refuses older and unknown ones', () => {
    expect(checkVersion(7, 7, 2)).toBe('current')
    expect(checkVersion(5, 7, 2)).toBe('stale-ok')
    expect(checkVersion(4, 7, 2)).toBe('too-stale')
    expect(checkVersion(8, 7, 2)).toBe('unknown')
    expect(checkVersion(0, 7, 2)).toBe('unknown')
  })

  it('P17: weighs by capped example count and by staleness', () => {
    expect(updateWeight(10, 0, 100)).toBe(0.1)
    expect(updateWeight(10, 3, 100)).toBe(0.05) // 0.1 / √4
    expect(updateWeight(500, 0, 100)).toBe(1)
    expect(updateWeight(100, 1, 100)).toBeCloseTo(1 / Math.SQRT2, 15)
  })

  it('P18: averages each coordinate over the updates that cover it, by hand', () => {
    const buffer = createBuffer(shape)
    // Update A, slice 0, weight 1: dense 0..2, rows 0..1.
    accumulate(
      buffer,
      shape,
      { slice: 0, layout, values: values(1, 2, 3, 10, 11, 20, 21) },
      1,
      1000,
    )
    // Update B, slice 1, weight 0.5: dense 3, 4, 0 (wraps), rows 2, 3.
    accumulate(
      buffer,
      shape,
      { slice: 1, layout, values: values(4, 6, 8, 30, 31, 40, 41) },
      0.5,
      2000,
    )
    expect(buffer.updates).toBe(2)
    expect(buffer.firstAtMs).toBe(1000)
    expect(Array.from(buffer.counts)).toEqual([2, 1, 1, 1, 1, /* rows */ 1, 1, 1, 1])
    const before = { dense: values(0, 0, 0, 0, 0), table: new Float32Array(8).fill(1) }
    const after = applyBuffer(before, buffer, shape, settings, () => {
      throw new Error('no noise was asked for')
    })
    // dense 0: (1·1 + 0.5·8) / 2 = 2.5, times η = 0.5 → 1.25
    expect(Array.from(after.dense)).toEqual([1.25, 1, 1.5, 1, 1.5])
    // row 0: 1 + 0.5·10, 1 + 0.5·11; row 2: 1 + 0.5·(0.5·30) …
    expect(Array.from(after.table)).toEqual([6, 6.5, 11, 11.5, 8.5, 8.75, 11, 11.25])
    expect(Array.from(before.dense)).toEqual([0, 0, 0, 0, 0]) // inputs untouched
  })

  it('P18: leaves coordinates no update covered exactly as they were', () => {
    const wide: ModelShape = { denseSize: 10, nItems: 6, embedDim: 2 }
    const buffer = createBuffer(wide)
    accumulate(buffer, wide, { slice: 0, layout, values: values(1, 1, 1, 1, 1, 1, 1) }, 1, 0)
    const dense = Float32Array.from({ length: 10 }, (_, i) => i / 7)
    const table = Float32Array.from({ length: 12 }, (_, i) => -i / 3)
    const after = applyBuffer(
      { dense, table },
      buffer,
      wide,
      { ...settings, noiseMultiplier: 3 },
      () => 1,
    )
    expect(Array.from(after.dense.subarray(3))).toEqual(Array.from(dense.subarray(3)))
    expect(Array.from(after.table.subarray(4))).toEqual(Array.from(table.subarray(4)))
  })

  it('P18: adds noise of standard deviation σ·C·η/c to each covered coordinate', () => {
    const big: ModelShape = { denseSize: 20_000, nItems: 1, embedDim: 1 }
    const bigLayout = { denseCoordinates: 20_000, sliceRows: 1, embedDim: 1 }
    const buffer = createBuffer(big)
    const zeros = new Float32Array(20_001)
    for (let i = 0; i < 2; i++)
      accumulate(buffer, big, { slice: 0, layout: bigLayout, values: zeros }, 1, 0)
    const random = createRandom(5)
    const gaussian = () => {
      // Box–Muller from the seeded PRNG.
      const u = 1 - random()
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random())
    }
    const noisy = {
      ...settings,
      layout: bigLayout,
      noiseMultiplier: 2,
      clipNorm: 0.5,
      serverLearningRate: 1,
    }
    const after = applyBuffer(
      { dense: new Float32Array(20_000), table: new Float32Array(1) },
      buffer,
      big,
      noisy,
      gaussian,
    )
    let sum = 0
    let squares = 0
    for (const v of after.dense) {
      sum += v
      squares += v * v
    }
    const mean = sum / after.dense.length
    const sd = Math.sqrt(squares / after.dense.length - mean * mean)
    expect(Math.abs(mean)).toBeLessThan(0.02)
    expect(sd).toBeGreaterThan(0.5 * 0.97) // σ·C / c = 2 · 0.5 / 2
    expect(sd).toBeLessThan(0.5 * 1.03)
  })

  it('P16: publishes at K updates, or after the wait with at least Kmin', () => {
    const buffer = createBuffer(shape)
    const add = (at: number) =>
      accumulate(buffer, shape, { slice: 0, layout, values: new Float32Array(7) }, 1, at)
    expect(shouldPublish(buffer, 0, settings)).toBe(false)
    add(1000)
    expect(shouldPublish(buffer, 20_000, settings)).toBe(false) // waited, but fewer than Kmin
    add(2000)
    expect(shouldPublish(buffer, 10_999, settings)).toBe(false)
    expect(shouldPublish(buffer, 11_000, settings)).toBe(true) // 10 s after the first
    add(3000)
    expect(shouldPublish(buffer, 3000, settings)).toBe(true) // K reached
  })
})

describe('privacy accountant (PROTOCOL.md P20)', () => {
  it('matches a brute-force minimum over Rényi orders', () => {
    for (const [releases, sigma] of [
      [1, 1],
      [10, 1.1],
      [100, 0.8],
      [1000, 5],
    ] as const) {
      const delta = 1e-6
      let best = Infinity
      for (let alpha = 1.0001; alpha < 2000; alpha *= 1.0005) {
        best = Math.min(
          best,
          (releases * alpha) / (2 * sigma ** 2) + Math.log(1 / delta) / (alpha - 1),
        )
      }
      expect(epsilonAfter(releases, sigma, delta)).toBeCloseTo(best, 3)
      expect(epsilonAfter(releases, sigma, delta)).toBeLessThanOrEqual(best + 1e-9)
    }
  })

  it('grows with releases, shrinks with noise; nothing spent before a release, no bound without noise', () => {
    expect(epsilonAfter(0, 1)).toBe(0)
    expect(epsilonAfter(1, 0)).toBe(Infinity)
    expect(epsilonAfter(20, 1)).toBeGreaterThan(epsilonAfter(10, 1))
    expect(epsilonAfter(10, 2)).toBeLessThan(epsilonAfter(10, 1))
    // One release at σ = 1, δ = 1e-6: 1/2 + 2·√(ln(1e6)/2) ≈ 5.756.
    expect(epsilonAfter(1, 1)).toBeCloseTo(0.5 + 2 * Math.sqrt(Math.log(1e6) / 2), 12)
    expect(bestOrder(1, 1)).toBeCloseTo(1 + Math.sqrt(2 * Math.log(1e6)), 12)
    expect(() => epsilonAfter(-1, 1)).toThrow(RangeError)
    expect(() => epsilonAfter(1, 1, 0)).toThrow(RangeError)
  })
})
