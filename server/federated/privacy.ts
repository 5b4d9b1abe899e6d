// The privacy accountant of PROTOCOL.md P20: each release is a Gaussian mechanism with L2
// sensitivity C (clipped updates, weights ≤ 1, one update per device per release) and noise σ·C,
// so it is (α, α/(2σ²))-Rényi DP for every α > 1 (Mironov 2017, Prop. 7). T releases compose to
// (α, T·α/(2σ²)), and RDP converts to (ε, δ)-DP with ε = RDP(α) + ln(1/δ)/(α − 1) (Prop. 3).
// No amplification by sampling is claimed: devices choose to take part, they are not sampled.

export const DEFAULT_DELTA = 1e-6

/**
 * ε after `releases` noised releases at noise multiplier `sigma`, minimised over α in closed
 * form: with a = T/(2σ²) and b = ln(1/δ), ε(α) = aα + b/(α − 1) is smallest at α = 1 + √(b/a),
 * where it equals a + 2√(ab). Infinity without noise; 0 before any release.
 */
export function epsilonAfter(releases: number, sigma: number, delta = DEFAULT_DELTA): number {
  if (!(Number.isInteger(releases) && releases >= 0)) {
    throw new RangeError(`expected a release count ≥ 0, got ${releases}`)
  }
  if (!(delta > 0 && delta < 1)) throw new RangeError(`expected δ in (0, 1), got ${delta}`)
  if (releases === 0) return 0
  if (!(sigma > 0)) return Infinity
  const a = releases / (2 * sigma * sigma)
  const b = Math.log(1 / delta)
  return a + 2 * Math.sqrt(a * b)
}

/** The Rényi order at which `epsilonAfter` is attained, reported with the budget. */
export function bestOrder(releases: number, sigma: number, delta = DEFAULT_DELTA): number {
  const a = releases / (2 * sigma * sigma)
  return 1 + Math.sqrt(Math.log(1 / delta) / a)
}
