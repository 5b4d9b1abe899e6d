import { describe, expect, it } from 'vitest'
import { checkVersion, shouldPublish, type FedBuffSettings } from './fedbuff'
import { DEFAULT_POPULARITY } from './popularity'
import { bestOrder, epsilonAfter } from './privacy'

const settings: FedBuffSettings = {
  bufferSize: 3,
  minBuffer: 2,
  maxWaitMs: 10_000,
  maxStaleness: 2,
  popularity: DEFAULT_POPULARITY,
  outcomes: { minBatch: 200, sigma: 1 },
}

describe('FedBuff releases (PROTOCOL.md P14–P16)', () => {
  it('P14: accepts the current version and up to S behind, refuses older and unknown ones', () => {
    expect(checkVersion(7, 7, 2)).toBe('current')
    expect(checkVersion(5, 7, 2)).toBe('stale-ok')
    expect(checkVersion(4, 7, 2)).toBe('too-stale')
    expect(checkVersion(8, 7, 2)).toBe('unknown')
    expect(checkVersion(0, 7, 2)).toBe('unknown')
  })

  it('P16: publishes at K updates, or after the wait with at least Kmin', () => {
    // The buffer as the store counts it (bufferStats): updates, and when the oldest arrived.
    const buffer: { updates: number; firstAtMs: number | null } = { updates: 0, firstAtMs: null }
    const add = (at: number) => {
      buffer.updates++
      buffer.firstAtMs ??= at
    }
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
