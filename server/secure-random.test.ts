import { describe, expect, it } from 'vitest'
import { cryptoUniform } from './secure-random'

describe('cryptoUniform', () => {
  it('draws in [0, 1) with the mean and spread of a uniform', () => {
    const draws = Array.from({ length: 20_000 }, cryptoUniform)
    expect(draws.every((u) => u >= 0 && u < 1)).toBe(true)
    const mean = draws.reduce((a, b) => a + b, 0) / draws.length
    const variance = draws.reduce((a, b) => a + (b - mean) ** 2, 0) / draws.length
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.01)
    expect(Math.abs(variance - 1 / 12)).toBeLessThan(0.003)
    expect(new Set(draws).size).toBe(draws.length)
  })
})
