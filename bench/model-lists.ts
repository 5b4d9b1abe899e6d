// What a device shows from the model alone, for the simulations that replay held-out sessions
// (sim:ab, bench:explore): the model in exactly the form devices download, and its top-k list
// over every item for each step of each session.
import type { GruModel } from '../model/gru-model'
import { createGruScorer } from '../model/eval/gru-scorer'
import { topKIndices } from '../model/eval/metrics'
import { exportModelWeights, importModelWeights } from '../model/model-weights'
import { SHIPPED_MODEL_ENCODING } from '../shared/shipped-model'
import { decodeWeights, encodeWeights } from '../shared/weights-codec'
import { loadModel } from '../train/model-file'

/** The trained model at `file`, encoded as devices get it (shared/shipped-model.ts) and back. */
export async function loadShippedModel(file: string): Promise<GruModel> {
  const trained = await loadModel(file)
  const bytes = encodeWeights(await exportModelWeights(trained), SHIPPED_MODEL_ENCODING)
  trained.dispose()
  return importModelWeights(decodeWeights(bytes))
}

/**
 * The model's top `k` for every step k ≥ 1 of every session (prefixes cut to its maxLen), in
 * session order, scored 256 prefixes at a time; `onProgress(done, total)` after each batch.
 */
export async function modelTopLists(
  model: GruModel,
  sessions: readonly Int32Array[],
  k: number,
  onProgress?: (done: number, total: number) => void,
): Promise<Int32Array[]> {
  const scorer = createGruScorer(model)
  const { nItems, maxLen } = model.config
  const total = sessions.reduce((sum, s) => sum + s.length - 1, 0)
  const tops: Int32Array[] = []
  let prefixes: Int32Array[] = []
  const flush = async () => {
    const scores = await scorer.scoreBatch(prefixes)
    prefixes.forEach((_, b) => tops.push(Int32Array.from(topKIndices(scores, b * nItems, nItems, k)))) // prettier-ignore
    prefixes = []
    onProgress?.(tops.length, total)
  }
  for (const session of sessions) {
    for (let step = 1; step < session.length; step++) {
      prefixes.push(session.subarray(Math.max(0, step - maxLen), step))
      if (prefixes.length === 256) await flush()
    }
  }
  if (prefixes.length > 0) await flush()
  scorer.dispose?.()
  return tops
}
