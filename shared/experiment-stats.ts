// What an operator reads off an experiment (issue 15), computed from aggregates only. Each arm's
// devices are split into random groups by the same keyed hash that picks their arm
// (shared/experiments.ts); for a ratio metric the server holds, per group, the sum of its
// devices' denominators x (impressions) and numerators y (clicks), each sum possibly noised
// (P20). A device's outcomes are correlated (the same shopper's lists), so the unit of variance
// is the device, not the impression: the delta method for a ratio of sums,
// Var(Σy / Σx) ≈ Σᵢ(yᵢ − r·xᵢ)² / (Σx)², estimated from the G groups' totals as
// G/(G − 1) · Σ_g(Y_g − r·X_g)² / X². Its expectation is the same, and it carries the noise of
// the groups' sums with it: no second moments cross the wire, and no noise needs declaring.
//
// Two intervals for the difference between an arm and the control: the fixed-horizon normal
// interval, valid only when looked at once, and the always-valid one of the mixture sequential
// probability ratio test (mSPRT: Johari, Koomen, Pekelis and Walsh, "Always valid inference",
// Operations Research 2022), valid however often the operator looks and whenever they stop.

/** One arm's metric: per random group, Σx and Σy of its devices. */
export interface GroupSums {
  x: Float64Array
  y: Float64Array
}

export interface RatioEstimate {
  /** Σy / Σx (NaN without any x). */
  rate: number
  /** Its variance (Infinity without any x or with fewer than two groups). */
  variance: number
}

export const emptyGroupSums = (groups: number): GroupSums => ({
  x: new Float64Array(groups),
  y: new Float64Array(groups),
})

/** Adds one device's (x, y) to its group (the plaintext form of what devices report). */
export function addToGroupSums(sums: GroupSums, group: number, x: number, y: number): void {
  sums.x[group]! += x
  sums.y[group]! += y
}

export function estimateRatio(sums: GroupSums): RatioEstimate {
  const groups = sums.x.length
  let x = 0
  let y = 0
  for (let g = 0; g < groups; g++) {
    x += sums.x[g]!
    y += sums.y[g]!
  }
  if (!(x > 0)) return { rate: NaN, variance: Infinity }
  const rate = y / x
  if (groups < 2) return { rate, variance: Infinity }
  let residual = 0
  for (let g = 0; g < groups; g++) residual += (sums.y[g]! - rate * sums.x[g]!) ** 2
  return { rate, variance: ((groups / (groups - 1)) * residual) / (x * x) }
}

export interface Comparison {
  /** treatment − control. */
  lift: number
  /** lift / control's rate. */
  relativeLift: number
  standardError: number
  /** The fixed-horizon (1 − α) normal interval: valid for one look only. */
  interval: [number, number]
  /** The mSPRT's (1 − α) interval at this look: valid at every look. */
  alwaysValid: [number, number]
  /** The mixture likelihood ratio against "no difference"; the test rejects at ≥ 1/α. */
  likelihoodRatio: number
}

export interface CompareOptions {
  /** 0.05 unless given. */
  alpha?: number
  /**
   * The standard deviation of the normal mixture over differences (mSPRT's τ): the size of
   * effect the test is tuned to find fastest. Fixed for an experiment's life.
   */
  tau: number
}

/**
 * mSPRT's τ for an experiment, fixed at its first look with data: `minimumLift` (relative) of
 * the arms' mean rate. Tied to the control's rate alone, τ collapses when the control is rare
 * (popularity's 1 % click-through on DIGINETICA), and with τ far below the standard error the
 * always-valid interval grows like V/τ and never excludes 0, however large the lift.
 */
export function mixtureTau(rates: readonly number[], minimumLift = 0.1): number {
  const usable = rates.filter((r) => Number.isFinite(r))
  if (usable.length === 0) return 0
  return (minimumLift * usable.reduce((a, b) => a + b, 0)) / usable.length
}

/** Treatment against control, from their estimates. */
export function compareArms(
  control: RatioEstimate,
  treatment: RatioEstimate,
  options: CompareOptions,
): Comparison {
  const alpha = options.alpha ?? 0.05
  const tau2 = options.tau * options.tau
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must be in (0, 1), got ${alpha}`)
  if (!(tau2 > 0 && Number.isFinite(tau2))) throw new RangeError(`tau must be > 0`)
  const lift = treatment.rate - control.rate
  const variance = control.variance + treatment.variance
  const standardError = Math.sqrt(variance)
  const z = normalQuantile(1 - alpha / 2)
  const usable = Number.isFinite(lift) && variance > 0 && Number.isFinite(variance)
  if (!usable) {
    return {
      lift,
      relativeLift: lift / control.rate,
      standardError,
      interval: [-Infinity, Infinity],
      alwaysValid: [-Infinity, Infinity],
      likelihoodRatio: Number.isFinite(lift) && variance === 0 && lift !== 0 ? Infinity : 1,
    }
  }
  // Λ = √(V / (V + τ²)) · exp(θ̂² τ² / (2 V (V + τ²))); {θ : Λ(θ̂ − θ) < 1/α} is the interval.
  const logRatio =
    0.5 * Math.log(variance / (variance + tau2)) +
    (lift * lift * tau2) / (2 * variance * (variance + tau2))
  const halfWidth = Math.sqrt(
    ((variance * (variance + tau2)) / tau2) *
      (2 * Math.log(1 / alpha) + Math.log((variance + tau2) / variance)),
  )
  return {
    lift,
    relativeLift: lift / control.rate,
    standardError,
    interval: [lift - z * standardError, lift + z * standardError],
    alwaysValid: [lift - halfWidth, lift + halfWidth],
    likelihoodRatio: Math.exp(logRatio),
  }
}

/**
 * What an operator may conclude over the looks so far: the always-valid p-value is the running
 * minimum of 1/Λ, the interval the running intersection, and "significant" once p ≤ α.
 */
export interface SequentialState {
  looks: number
  pValue: number
  interval: [number, number]
}

export const startSequential = (): SequentialState => ({
  looks: 0,
  pValue: 1,
  interval: [-Infinity, Infinity],
})

export function nextLook(state: SequentialState, comparison: Comparison): SequentialState {
  return {
    looks: state.looks + 1,
    pValue: Math.min(state.pValue, 1 / comparison.likelihoodRatio),
    interval: [
      Math.max(state.interval[0], comparison.alwaysValid[0]),
      Math.min(state.interval[1], comparison.alwaysValid[1]),
    ],
  }
}

/** The standard normal's quantile (Acklam's rational approximation, relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`p must be in (0, 1), got ${p}`)
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269]
  const a4 = -30.66479806614716
  const a5 = 2.506628277459239
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972]
  const b4 = -13.28068155288572
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734]
  const c4 = 4.374664141464968
  const c5 = 2.938163982698783
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416]
  const tail = (q: number) =>
    (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c4) * q + c5) /
    ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1)
  if (p < 0.02425) return tail(Math.sqrt(-2 * Math.log(p)))
  if (p > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - p)))
  const q = p - 0.5
  const r = q * q
  return (
    ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a4) * r + a5) * q) /
    (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b4) * r + 1)
  )
}
