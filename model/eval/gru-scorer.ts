// The GRU behind the evaluator's SessionScorer contract: item vectors are prepared (normalised
// and transposed) once per scorer, so each batch costs one encode and one matMul.
import * as tf from '@tensorflow/tfjs-core'
import { coVisitShare } from '../co-visit-bonus'
import type { GruModel } from '../gru-model'
import { importModelWeights } from '../model-weights'
import type { WeightsFile } from '../../shared/weights-codec'
import { evaluateScorer, type EvalReport, type EvaluateOptions } from './evaluate'
import { encodeSessionBatch } from '../session-batch'
import type { SessionScorer } from './scorer'

/**
 * A scorer over the model's current weights; dispose it (not the model) when done. The model's
 * repeat bonus goes on each item of the prefix once, its co-visitation bonus on the last item's
 * co-visited items when their lists are given (the worker's ranker adds the same, rank.ts).
 */
export interface GruScorerOptions {
  /** An item's co-visitation list, most co-visited first (the pools'), for the model's coVisitBonus. */
  coVisitation?: (item: number) => readonly number[]
}

export function createGruScorer(
  model: GruModel,
  name = 'GRU (ours)',
  options: GruScorerOptions = {},
): SessionScorer {
  const itemsT = tf.tidy(() => tf.transpose(model.itemVectors())) as tf.Tensor2D // [d, nItems]
  const scale = model.config.normalize ? model.config.scale : 1
  const bonus = model.config.repeatBonus ?? 0
  const coVisitBonus = options.coVisitation ? (model.config.coVisitBonus ?? 0) : 0
  const n = model.config.nItems
  return {
    name,
    async scoreBatch(prefixes) {
      const batch = encodeSessionBatch(prefixes, model.config.maxLen)
      const logits = tf.tidy(() => tf.matMul(tf.mul(model.encode(batch), scale), itemsT))
      const scores = (await logits.data()) as Float32Array // [batch, nItems]
      logits.dispose()
      if (bonus > 0) {
        prefixes.forEach((prefix, row) => {
          for (const item of new Set(prefix)) if (item >= 0) scores[row * n + item]! += bonus
        })
      }
      if (coVisitBonus > 0) {
        prefixes.forEach((prefix, row) => {
          let at = prefix.length - 1
          while (at >= 0 && prefix[at]! < 0) at--
          if (at < 0) return
          options.coVisitation!(prefix[at]!).forEach((item, rank) => {
            scores[row * n + item]! += coVisitBonus * coVisitShare(rank)
          })
        })
      }
      return scores
    },
    dispose() {
      itemsT.dispose()
    },
  }
}

/**
 * The full protocol for a weights file: model, scorer, `evaluateScorer` over `sessions` with the
 * model's own item count and input window, everything disposed after. With `coVisitation` (the
 * release's lists) the model's co-visitation bonus counts, as on devices.
 */
export async function evaluateWeights(
  file: WeightsFile,
  sessions: Int32Array[],
  options: Omit<EvaluateOptions, 'nItems' | 'maxPrefixLen'> & GruScorerOptions,
): Promise<EvalReport> {
  const { coVisitation, ...evaluate } = options
  const model = importModelWeights(file)
  const scorer = createGruScorer(model, undefined, coVisitation ? { coVisitation } : {})
  try {
    return await evaluateScorer(scorer, sessions, {
      ...evaluate,
      nItems: model.config.nItems,
      maxPrefixLen: model.config.maxLen,
    })
  } finally {
    scorer.dispose?.()
    model.dispose()
  }
}
