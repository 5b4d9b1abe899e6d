/** One next-item case: the items so far, the item that followed, and every item from it on. */
export interface PrefixCase {
  prefix: Int32Array
  target: number
  /** s[k:], the target first (MAP@K's relevant items); a view like `prefix`. */
  rest: Int32Array
}

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
      cases.push({
        prefix: session.subarray(Math.max(0, k - maxLen), k),
        target: session[k],
        rest: session.subarray(k),
      })
    }
  }
  return cases
}
