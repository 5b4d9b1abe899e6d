// Stage 3, ranking: the GRU scores the recalled candidates for the current session. The session
// is encoded once, every item is scored with one matMul against the cached item table, and the
// candidates' scores are picked out in JS: on WASM that is faster than gathering the candidates.
import * as tf from '@tensorflow/tfjs-core'
import type { GruModel } from '../model/gru-model'
import { encodeSessionBatch } from '../model/session-batch'
import type { ItemTable } from './item-table'
import type { Candidate } from './recall'

// Measured with rank.bench.ts (WASM, SIMD, one thread, Node 20, on the 2-core dev machine with
// other jobs running; median ms of ≥ 299 runs; 43,097 items, d = 100, session of 10, 300
// candidates; each includes the session encode, 0.93 alone):
//   score every item [1,d]·[d,n], read back 43k floats, pick in JS   1.60   (chosen)
//   gather 300 rows of an [n,d] table, then [300,d]·[d,1]            2.15   (and a 2nd table)
//   gather 300 columns of the [d,n] table, then [1,d]·[d,300]        6.01
// WASM's Gather costs microseconds a row, so 300 rows cost more than XNNPACK's 4.3M-MAC matMul.

/** What the candidates are scored against. */
export interface RankQuery {
  /** Model rows of the session, oldest first; may be empty when an anchor is given. */
  session: Int32Array
  /**
   * An item whose similarity is blended in (the product of a `similar` list): the query becomes
   * weight·anchor + (1 − weight)·session, both unit vectors, so the blend is of two cosines.
   */
  anchor?: { index: number; weight: number }
}

/**
 * Logits of the candidates, in candidate order: scale·cosine, the same numbers the trainer's
 * full-catalogue scorer gives those items (train/gru-scorer.ts).
 */
export async function rankCandidates(
  model: GruModel,
  table: ItemTable,
  query: RankQuery,
  candidates: readonly Candidate[],
): Promise<Float32Array> {
  const { session, anchor } = query
  if (candidates.length === 0 || (session.length === 0 && anchor === undefined)) {
    return new Float32Array(candidates.length)
  }
  const [d] = table.transposed.shape
  const scale = model.config.normalize ? model.config.scale : 1
  const logits = tf.tidy(() => {
    const parts: tf.Tensor2D[] = []
    const sessionWeight = anchor === undefined ? 1 : session.length === 0 ? 0 : 1 - anchor.weight
    const anchorWeight = anchor === undefined ? 0 : session.length === 0 ? 1 : anchor.weight
    if (sessionWeight > 0) {
      const encoded = model.encode(encodeSessionBatch([session], model.config.maxLen)) // [1, d]
      parts.push(sessionWeight === 1 ? encoded : tf.mul(encoded, sessionWeight))
    }
    if (anchor !== undefined && anchorWeight > 0) {
      const column = tf.gather(table.transposed, tf.tensor1d([anchor.index], 'int32'), 1) // [d, 1]
      parts.push(tf.mul(tf.reshape(column, [1, d]), anchorWeight))
    }
    const query = tf.mul(parts.length === 1 ? parts[0]! : tf.addN(parts), scale) as tf.Tensor2D
    return tf.matMul(query, table.transposed) // [1, nItems]
  })
  const all = await logits.data()
  logits.dispose()
  return Float32Array.from(candidates, (c) => all[c.index]!)
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
