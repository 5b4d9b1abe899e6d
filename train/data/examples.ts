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

/**
 * How `npm run sim` and `npm run tune:update-training` cut the training sessions (file order =
 * time order): the first `pretrainFraction` pre-train the global model; with `holdOut`, the last
 * 5 % are held out as the validation split; the rest (sessions of ≥ 2 items) are the devices'.
 */
export function splitForFederation(
  train: Int32Array[],
  pretrainFraction: number,
  holdOut: boolean,
): { early: Int32Array[]; later: Int32Array[]; validation: Int32Array[] } {
  const cut = Math.floor(train.length * pretrainFraction)
  const end = train.length - (holdOut ? Math.floor(train.length * 0.05) : 0)
  const twoOrMore = (s: Int32Array) => s.length >= 2
  return {
    early: train.slice(0, cut),
    later: train.slice(cut, end).filter(twoOrMore),
    validation: train.slice(end).filter(twoOrMore),
  }
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
