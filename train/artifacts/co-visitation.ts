// The item co-visitation graph of the training sessions, shared by the catalogue generator (its
// categories are communities of this graph) and the candidate pools (its top neighbours per item).

/** Symmetric weighted graph in CSR form; each row lists its neighbours in ascending index. */
export interface CoVisitationGraph {
  nItems: number
  offsets: Int32Array // [nItems + 1]
  neighbours: Int32Array // [offsets[nItems]]
  weights: Float32Array // [offsets[nItems]]
}

export const DEFAULT_CO_VISITATION_WINDOW = 3

/**
 * Two different items within `window` positions of each other in a session are co-visited with
 * weight 1/distance. A pair counts once per session (its closest distance), so a shopper
 * bouncing between two products does not outweigh many shoppers viewing them together.
 */
export function buildCoVisitation(
  sessions: readonly Int32Array[],
  nItems: number,
  window = DEFAULT_CO_VISITATION_WINDOW,
): CoVisitationGraph {
  if (!Number.isInteger(window) || window < 1) {
    throw new RangeError(`expected a window of at least 1 position, got ${window}`)
  }
  // Each entry packs (lo, hi, distance) into one float64 so a native typed-array sort groups the
  // pairs: far faster than sorting objects or an index array with a comparator.
  const radix = window + 1
  if (nItems * nItems * radix >= Number.MAX_SAFE_INTEGER) {
    throw new RangeError(
      `expected at most ${Math.floor(Math.sqrt(2 ** 53 / radix))} items, got ${nItems}`,
    )
  }
  let bound = 0
  for (const session of sessions) {
    for (let i = 0; i < session.length; i++) bound += Math.min(window, session.length - 1 - i)
  }
  const packed = new Float64Array(bound)
  let count = 0
  const closest = new Map<number, number>()
  for (const session of sessions) {
    closest.clear()
    for (let i = 0; i < session.length; i++) {
      const a = session[i]!
      if (!(a >= 0 && a < nItems)) {
        throw new RangeError(`expected item indices in 0..${nItems - 1}, got ${a}`)
      }
      const end = Math.min(session.length, i + window + 1)
      for (let j = i + 1; j < end; j++) {
        const b = session[j]!
        if (a === b) continue
        const pair = a < b ? a * nItems + b : b * nItems + a
        const distance = j - i
        const seen = closest.get(pair)
        if (seen === undefined || distance < seen) closest.set(pair, distance)
      }
    }
    for (const [pair, distance] of closest) packed[count++] = pair * radix + distance
  }
  const entries = packed.subarray(0, count).sort()

  // Sum 1/distance over the sessions of each pair; pairs come out sorted by (lo, hi).
  const pairLo: number[] = []
  const pairHi: number[] = []
  const pairWeight: number[] = []
  for (let k = 0; k < entries.length;) {
    const pair = Math.floor(entries[k]! / radix)
    let weight = 0
    for (; k < entries.length && Math.floor(entries[k]! / radix) === pair; k++) {
      weight += 1 / (entries[k]! - pair * radix)
    }
    pairLo.push(Math.floor(pair / nItems))
    pairHi.push(pair % nItems)
    pairWeight.push(weight)
  }

  const offsets = new Int32Array(nItems + 1)
  for (let p = 0; p < pairLo.length; p++) {
    offsets[pairLo[p]! + 1] += 1
    offsets[pairHi[p]! + 1] += 1
  }
  for (let i = 0; i < nItems; i++) offsets[i + 1] += offsets[i]!
  const fill = offsets.slice(0, nItems)
  const neighbours = new Int32Array(offsets[nItems]!)
  const weights = new Float32Array(offsets[nItems]!)
  // Pairs sorted by (lo, hi) put every row's smaller neighbours first, in order, then its larger.
  for (let p = 0; p < pairLo.length; p++) {
    const lo = pairLo[p]!
    const hi = pairHi[p]!
    const atLo = fill[lo]!
    const atHi = fill[hi]!
    neighbours[atLo] = hi
    weights[atLo] = pairWeight[p]!
    neighbours[atHi] = lo
    weights[atHi] = pairWeight[p]!
    fill[lo] = atLo + 1
    fill[hi] = atHi + 1
  }
  return { nItems, offsets, neighbours, weights }
}

/** The `k` strongest neighbours of `item`, strongest first (ties: lower index first). */
export function topNeighbours(graph: CoVisitationGraph, item: number, k: number): number[] {
  const start = graph.offsets[item]!
  const end = graph.offsets[item + 1]!
  const order: number[] = []
  for (let e = start; e < end; e++) order.push(e)
  order.sort(
    (x, y) => graph.weights[y]! - graph.weights[x]! || graph.neighbours[x]! - graph.neighbours[y]!,
  )
  return order.slice(0, k).map((e) => graph.neighbours[e]!)
}

/**
 * Each item's top `k` co-visited items, as the pools ship them, built once from `sessions` and
 * cut per item when first asked: what the evaluator's scorer reads for the co-visitation bonus.
 */
export function coVisitationLists(
  sessions: readonly Int32Array[],
  nItems: number,
  k: number,
): (item: number) => readonly number[] {
  const graph = buildCoVisitation(sessions, nItems)
  const cache = new Map<number, readonly number[]>()
  return (item) => {
    let list = cache.get(item)
    if (list === undefined) cache.set(item, (list = topNeighbours(graph, item, k)))
    return list
  }
}
