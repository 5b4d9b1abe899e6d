// The summaries every benchmark prints: median (the mean of the middle two for an even count),
// nearest-rank percentile, rounding for results files.

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN
  const sorted = values.slice().sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** Nearest rank: the smallest value with at least p % of the values at or below it (p99). */
export function percentile(values: readonly number[], p: number): number {
  const sorted = values.slice().sort((a, b) => a - b)
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!
}

export const round = (x: number, digits = 3) => Number(x.toFixed(digits))
