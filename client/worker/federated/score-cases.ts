// How well the model a device downloaded predicts the shopper's own next items, measured before
// the device trains on them (PROTOCOL.md P27): the offline protocol's full ranking over the
// catalogue, on at most MAX_SCORED_CASES of the most recent cases, summed into three numbers
// the update carries. The server adds them up per version: accuracy on real shoppers' sessions
// that no model has trained on, without any session leaving the device.
import * as tf from '@tensorflow/tfjs-core'
import { MAX_SCORED_CASES, type DeviceScore } from '../../../shared/leader-upload'
import type { GruModel } from '../../../model/gru-model'
import { expandPrefixes } from '../../../model/prefix-cases'
import { encodeSessionBatch } from '../../../model/session-batch'

export async function scoreCases(
  model: GruModel,
  sessions: readonly Int32Array[],
  maxCases = MAX_SCORED_CASES,
): Promise<DeviceScore> {
  const { maxLen, nItems, normalize, scale } = model.config
  const cases = expandPrefixes(sessions as Int32Array[], { maxPrefixLen: maxLen }).slice(
    -Math.min(maxCases, MAX_SCORED_CASES),
  )
  if (cases.length === 0) return { cases: 0, hits20: 0, reciprocalRank20: 0 }
  const batch = encodeSessionBatch(
    cases.map((c) => c.prefix),
    maxLen,
  )
  const targets = Int32Array.from(cases, (c, row) => row * nItems + c.target)
  // Rank = how many items score at least the target's score, the target included (ties count
  // against the model, as offline: model/eval/metrics.ts). The target's score is read out of the
  // same logits, so it compares equal to itself.
  const ranks = tf.tidy(() => {
    const sessionVectors = tf.mul(model.encode(batch), normalize ? scale : 1)
    const logits = tf.matMul(sessionVectors, model.itemVectors(), false, true) // [n, nItems]
    const own = tf.gather(tf.reshape(logits, [-1]), tf.tensor1d(targets, 'int32'))
    return tf.sum(tf.cast(tf.greaterEqual(logits, tf.expandDims(own, 1)), 'int32'), 1)
  })
  const values = (await ranks.data()) as Int32Array
  ranks.dispose()
  let hits20 = 0
  let reciprocalRank20 = 0
  for (const raw of values) {
    // A NaN score compares false with everything: such a target ranks last.
    const rank = raw >= 1 ? raw : nItems
    if (rank <= 20) {
      hits20++
      reciprocalRank20 += 1 / rank
    }
  }
  return { cases: cases.length, hits20, reciprocalRank20 }
}
