// Stage 3, ranking: the GRU scores the recalled candidates for the current session. The session
// is encoded in JS (model/gru-inference.ts) and each candidate is one dot product against the
// item table's read-back copy: no TF.js kernel runs at all.
import { coVisitShare } from '../../../model/co-visit-bonus'
import type { GruModel } from '../../../model/gru-model'
import { dot } from './dot'
import type { ItemTable } from './item-table'
import type { Candidate } from './recall'

// Measured with bench/rank.bench.ts and .../recommend in headless Chromium (WASM, SIMD, one thread; on
// the 2-core dev machine), 43,097 items, d = 100, 300 candidates:
//   score every item [1,d]·[d,n] and read back 43k floats            ~1.2 ms (memory-bound)
//   gather 300 rows of an [n,d] table, then [300,d]·[d,1]            ~0.8 ms (WASM Gather is slow)
//   300 dot products in JS on the read-back table                    < 0.1 ms (chosen)
// The copy is the worker's one item table (item-table.ts), shared with recall.

/** What the candidates are scored against. */
export interface RankQuery {
  /** Model rows of the session, oldest first; may be empty when an anchor is given. */
  session: Int32Array
  /**
   * An item whose similarity is blended in (the product of a `similar` list): the query becomes
   * weight·anchor + (1 − weight)·session, both unit vectors, so the blend is of two cosines.
   */
  anchor?: { index: number; weight: number }
  /** The co-visitation list of the session's last item (the pools'), for the coVisitBonus. */
  coVisited?: readonly number[]
}

/**
 * Logits of the candidates, in candidate order: scale·cosine plus the repeat bonus of an item the
 * session holds and the co-visitation bonus of an item in its last item's list, the same numbers
 * the trainer's full-catalogue scorer gives those items (model/eval/gru-scorer.ts).
 */
export function rankCandidates(
  model: GruModel,
  table: ItemTable,
  query: RankQuery,
  candidates: readonly Candidate[],
): Float32Array {
  const { session, anchor } = query
  if (candidates.length === 0 || (session.length === 0 && anchor === undefined)) {
    return new Float32Array(candidates.length)
  }
  const { dim: d, values: vectors, encoder } = table
  const scale = model.config.normalize ? model.config.scale : 1
  const sessionWeight = anchor === undefined ? 1 : session.length === 0 ? 0 : 1 - anchor.weight
  const anchorWeight = anchor === undefined ? 0 : session.length === 0 ? 1 : anchor.weight
  const q = new Float32Array(d) // scale · (weighted session + anchor)
  if (sessionWeight > 0) {
    const values = encoder.encode(session)
    for (let k = 0; k < d; k++) q[k] = sessionWeight * values[k]!
  }
  if (anchor !== undefined && anchorWeight > 0) {
    for (let k = 0; k < d; k++) q[k] = q[k]! + anchorWeight * vectors[anchor.index * d + k]!
  }
  for (let k = 0; k < d; k++) q[k] = q[k]! * scale
  // The model's repeat bonus for what the session holds, as the trainer's scorer adds it.
  const bonus = model.config.repeatBonus ?? 0
  const held = bonus > 0 ? new Set(session) : undefined
  // And its co-visitation bonus, by each item's place in the last item's list.
  const coVisitBonus = session.length > 0 ? (model.config.coVisitBonus ?? 0) : 0
  const coVisited = coVisitBonus > 0 ? new Map<number, number>() : undefined
  if (coVisited) {
    query.coVisited?.forEach((item, rank) => coVisited.set(item, coVisitBonus * coVisitShare(rank)))
  }
  return Float32Array.from(
    candidates,
    ({ index }) =>
      dot(q, 0, vectors, index * d, d) +
      (held?.has(index) ? bonus : 0) +
      (coVisited?.get(index) ?? 0),
  )
}

/**
 * Softmax over the candidates: a positive score, so that a multiplicative boost raises every item
 * alike (a logit may be negative, and doubling a negative logit would bury the item).
 */
export function toProbabilities(logits: Float32Array): Float32Array {
  let max = -Infinity
  for (const z of logits) max = Math.max(max, z)
  const out = new Float32Array(logits.length)
  let sum = 0
  for (let i = 0; i < logits.length; i++) sum += out[i] = Math.exp(logits[i]! - max)
  for (let i = 0; i < out.length; i++) out[i] = out[i]! / sum
  return out
}

/** Scores that keep a list's given order (pools, history): 1, 1/2, 1/3… positive, for boosts. */
export function scoreByOrder(count: number): Float32Array {
  return Float32Array.from({ length: count }, (_, i) => 1 / (i + 1))
}
