import { describe, expect, it } from 'vitest'
import {
  addToGroupSums,
  compareArms,
  emptyGroupSums,
  estimateRatio,
  mixtureTau,
  nextLook,
  normalQuantile,
  startSequential,
  type GroupSums,
} from './experiment-stats'
import { createRandom, standardNormal } from './random'

/** A device: a few lists (1–12), each clicked with the device's own propensity around `rate`. */
function device(random: () => number, rate: number): [number, number] {
  const lists = 1 + Math.floor(random() * 12)
  const own = Math.min(1, Math.max(0, rate + 0.6 * (random() - 0.5))) // shoppers differ
  let clicks = 0
  for (let i = 0; i < lists; i++) if (random() < own) clicks++
  return [lists, clicks]
}

const GROUPS = 32

/** A device in its random group, as the keyed hash would place it. */
function add(sums: GroupSums, random: () => number, rate: number): void {
  addToGroupSums(sums, Math.floor(random() * GROUPS), ...device(random, rate))
}

function arm(random: () => number, devices: number, rate: number): GroupSums {
  const sums = emptyGroupSums(GROUPS)
  for (let i = 0; i < devices; i++) add(sums, random, rate)
  return sums
}

describe('experiment statistics from aggregates', () => {
  it('has the normal quantiles of the tables', () => {
    expect(normalQuantile(0.5)).toBeCloseTo(0, 9)
    expect(normalQuantile(0.975)).toBeCloseTo(1.959964, 5)
    expect(normalQuantile(0.001)).toBeCloseTo(-3.090232, 5)
    expect(normalQuantile(1 - 1e-6)).toBeCloseTo(4.753424, 4)
  })

  it('computes the delta-method variance from the groups: G/(G − 1) · Σ(Y_g − r·X_g)² / X²', () => {
    const groups: Array<[number, number]> = [[4, 1], [2, 2], [6, 0], [3, 1]] // prettier-ignore
    const sums = emptyGroupSums(4)
    for (const [g, [x, y]] of groups.entries()) addToGroupSums(sums, g, x, y)
    const r = 4 / 15
    const byHand = ((4 / 3) * groups.reduce((s, [x, y]) => s + (y - r * x) ** 2, 0)) / 15 ** 2
    expect(estimateRatio(sums).rate).toBeCloseTo(r, 12)
    expect(estimateRatio(sums).variance).toBeCloseTo(byHand, 12)
    expect(estimateRatio(emptyGroupSums(4))).toEqual({ rate: NaN, variance: Infinity })
    const one = emptyGroupSums(1)
    addToGroupSums(one, 0, 5, 1)
    expect(estimateRatio(one)).toEqual({ rate: 0.2, variance: Infinity })
  })

  it('matches the spread of the rate over repeated experiments (devices, not impressions)', () => {
    const random = createRandom(3)
    const rates: number[] = []
    const variances: number[] = []
    for (let run = 0; run < 400; run++) {
      const estimate = estimateRatio(arm(random, 300, 0.3))
      rates.push(estimate.rate)
      variances.push(estimate.variance)
    }
    const mean = rates.reduce((a, b) => a + b) / rates.length
    const empirical = rates.reduce((s, r) => s + (r - mean) ** 2, 0) / (rates.length - 1)
    const predicted = variances.reduce((a, b) => a + b) / variances.length
    expect(predicted / empirical).toBeGreaterThan(0.8)
    expect(predicted / empirical).toBeLessThan(1.25)
  })

  it('fixes τ from the arms’ mean rate, so a rare control does not shrink it to nothing', () => {
    expect(mixtureTau([0.01, 0.53])).toBeCloseTo(0.027, 12)
    expect(mixtureTau([0.2, NaN], 0.5)).toBeCloseTo(0.1, 12)
    expect(mixtureTau([NaN, NaN])).toBe(0)
    // With τ far below the standard error the always-valid interval cannot exclude even a lift
    // of 50 points; with τ from the mean rate it does.
    const control = { rate: 0.01, variance: 2.6e-4 }
    const treatment = { rate: 0.53, variance: 2.6e-4 }
    expect(compareArms(control, treatment, { tau: 0.1 * 0.01 }).alwaysValid[0]).toBeLessThan(0)
    const tau = mixtureTau([control.rate, treatment.rate])
    expect(compareArms(control, treatment, { tau }).alwaysValid[0]).toBeGreaterThan(0.3)
  })

  it('puts the mSPRT interval exactly where the likelihood ratio reaches 1/α', () => {
    const control = { rate: 0.2, variance: 1e-4 }
    const treatment = { rate: 0.23, variance: 2e-4 }
    const c = compareArms(control, treatment, { tau: 0.02, alpha: 0.05 })
    expect(c.lift).toBeCloseTo(0.03, 12)
    expect(c.relativeLift).toBeCloseTo(0.15, 12)
    for (const edge of c.alwaysValid) {
      const shifted = compareArms(control, { ...treatment, rate: 0.23 - edge }, { tau: 0.02 })
      expect(shifted.likelihoodRatio).toBeCloseTo(20, 6)
    }
    // Always valid costs width: it is wider than the one-look interval.
    expect(c.alwaysValid[1] - c.alwaysValid[0]).toBeGreaterThan(c.interval[1] - c.interval[0])
    expect(() => compareArms(control, treatment, { tau: 0 })).toThrow(/tau/)
  })

  it('keeps false positives under α when the operator looks after every release', () => {
    // A/A: 300 experiments, 25 looks each, both arms the same. Peeking at the one-look interval
    // flags far more than 5 %; the always-valid test stays under it.
    const random = createRandom(11)
    let sequentialFlags = 0
    let peekingFlags = 0
    for (let run = 0; run < 300; run++) {
      const a = emptyGroupSums(GROUPS)
      const b = emptyGroupSums(GROUPS)
      let state = startSequential()
      let peeked = false
      for (let look = 0; look < 25; look++) {
        for (let i = 0; i < 40; i++) {
          add(random() < 0.5 ? a : b, random, 0.3)
        }
        const c = compareArms(estimateRatio(a), estimateRatio(b), { tau: 0.03 })
        state = nextLook(state, c)
        if (c.interval[0] > 0 || c.interval[1] < 0) peeked = true
      }
      if (state.pValue <= 0.05) sequentialFlags++
      if (peeked) peekingFlags++
    }
    expect(sequentialFlags).toBeLessThanOrEqual(15) // 5 % of 300
    expect(peekingFlags).toBeGreaterThan(30)
  })

  it('finds a real lift, and noised group sums widen the interval without biasing it', () => {
    const random = createRandom(5)
    const a = arm(random, 3000, 0.25)
    const b = arm(random, 3000, 0.3)
    const exact = compareArms(estimateRatio(a), estimateRatio(b), { tau: 0.03 })
    expect(exact.alwaysValid[0]).toBeGreaterThan(0)
    expect(exact.alwaysValid[0]).toBeLessThan(0.05)
    expect(exact.alwaysValid[1]).toBeGreaterThan(0.05)
    // Noise on every group's sums (what P20 adds) shows in the groups' spread by itself.
    const noisy = (s: GroupSums): GroupSums => ({
      x: s.x.map((v) => v + 60 * standardNormal(random)),
      y: s.y.map((v) => v + 60 * standardNormal(random)),
    })
    const noised = compareArms(estimateRatio(noisy(a)), estimateRatio(noisy(b)), { tau: 0.03 })
    expect(noised.standardError).toBeGreaterThan(exact.standardError)
    expect(Math.abs(noised.lift - exact.lift)).toBeLessThan(4 * noised.standardError)
  })
})
