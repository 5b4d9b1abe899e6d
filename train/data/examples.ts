import type { PrefixCase } from './types'

export interface ExpandOptions {
  /** Keep only the last `maxPrefixLen` items of each prefix (the model's input window). */
  maxPrefixLen?: number
}

/**
 * Next-item cases of the SR-GNN/NARM protocol: for a session s of length L, (s[:k] → s[k]) for
 * k = 1..L-1, session by session with k ascending. Prefixes are `subarray` views of the session,
 * so 719k DIGINETICA cases cost no copies; do not write into them.
 */
export function expandPrefixes(sessions: Int32Array[], opts: ExpandOptions = {}): PrefixCase[] {
  const maxLen = opts.maxPrefixLen ?? Infinity
  if (!(maxLen >= 1) || (maxLen !== Infinity && !Number.isInteger(maxLen))) {
    throw new RangeError(`expected maxPrefixLen to be a positive integer, got ${opts.maxPrefixLen}`)
  }
  const cases: PrefixCase[] = []
  for (const session of sessions) {
    for (let k = 1; k < session.length; k += 1) {
      cases.push({ prefix: session.subarray(Math.max(0, k - maxLen), k), target: session[k] })
    }
  }
  return cases
}

/** Number of next-item cases `expandPrefixes` yields: Σ (L − 1) over sessions of length L ≥ 1. */
export function countPrefixCases(sessions: Int32Array[]): number {
  let n = 0
  for (const session of sessions) n += Math.max(0, session.length - 1)
  return n
}

/**
 * Carves the last `fraction` of the training sessions (time order in every layout we load) as a
 * validation split, so that model selection never looks at the test set. The validation size is
 * rounded to the nearest session. Validation may contain items that `fit` never shows; the
 * item vocabulary stays the full training one, so such items are simply cold.
 */
export function splitValidation(
  train: Int32Array[],
  fraction: number,
): { fit: Int32Array[]; validation: Int32Array[] } {
  if (!(fraction >= 0 && fraction < 1)) {
    throw new RangeError(`expected a validation fraction in [0, 1), got ${fraction}`)
  }
  const cut = train.length - Math.round(train.length * fraction)
  return { fit: train.slice(0, cut), validation: train.slice(cut) }
}

/** Click count of every item index 0..nItems-1 over `sessions` (popularity, POP baseline). */
export function countItems(sessions: Int32Array[], nItems: number): Int32Array {
  const counts = new Int32Array(nItems)
  for (const session of sessions) {
    for (let i = 0; i < session.length; i += 1) {
      const item = session[i]
      if (!(item >= 0 && item < nItems)) {
        throw new RangeError(`expected item indices in 0..${nItems - 1}, got ${item}`)
      }
      counts[item] += 1
    }
  }
  return counts
}
