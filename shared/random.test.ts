import { describe, expect, it } from 'vitest'
import { betaDraw, createRandom, gammaDraw } from './random'

const moments = (draws: number[]) => {
  const mean = draws.reduce((a, b) => a + b, 0) / draws.length
  const variance = draws.reduce((a, b) => a + (b - mean) ** 2, 0) / (draws.length - 1)
  return { mean, variance }
}

describe('gamma and beta draws', () => {
  it('draws Gamma(k) with mean and variance k, below 1 too', () => {
    for (const k of [0.4, 1, 2.5, 40]) {
      const random = createRandom(Math.round(k * 10))
      const { mean, variance } = moments(Array.from({ length: 40_000 }, () => gammaDraw(k, random)))
      expect(mean / k).toBeCloseTo(1, 1)
      expect(variance / k).toBeGreaterThan(0.95)
      expect(variance / k).toBeLessThan(1.05)
    }
    expect(() => gammaDraw(0, Math.random)).toThrow(RangeError)
  })

  it('draws Beta(a, b) with its mean and variance, a skewed one too', () => {
    for (const [a, b] of [
      [3, 7],
      [2, 400],
      [0.4, 20],
    ] as const) {
      const random = createRandom(Math.round(a * b))
      const { mean, variance } = moments(
        Array.from({ length: 40_000 }, () => betaDraw(a, b, random)),
      )
      const expectedVariance = (a * b) / ((a + b) ** 2 * (a + b + 1))
      expect(mean / (a / (a + b))).toBeCloseTo(1, 1)
      expect(variance / expectedVariance).toBeGreaterThan(0.95)
      expect(variance / expectedVariance).toBeLessThan(1.05)
    }
  })
})
