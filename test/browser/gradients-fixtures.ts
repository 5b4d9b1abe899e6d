// Fixed inputs shared by the browser entry (which computes on every backend) and the Node-side
// test (which recomputes the small ones in float64). Pure data: no tfjs, no DOM, no Node.
import { DEFAULT_GRU_CONFIG, type GruModelConfig } from '../../model/gru-model'
import { createRandom, fillUniform } from '../../shared/random'

const random = createRandom(2024)

/** gatherRows: a [12, 4] table, ids with repeats (3 three times, 7 twice), a [7, 4] weight. */
export const gather = {
  rows: 12,
  cols: 4,
  table: fillUniform(12 * 4, 1, random),
  ids: Int32Array.from([3, 7, 3, 0, 11, 3, 7]),
  weights: fillUniform(7 * 4, 1, random),
}

/** matMul: odd shapes, so no backend gets an exact tile or a packed-texture fast path. */
export const matmul = {
  m: 9,
  k: 17,
  n: 13,
  a: fillUniform(9 * 17, 1, random),
  b: fillUniform(17 * 13, 1, random),
}

/** softmaxCrossEntropy: 4 rows over 50 classes, a repeated target and both end classes. */
export const softmax = {
  rows: 4,
  classes: 50,
  logits: fillUniform(4 * 50, 3, random),
  targets: Int32Array.from([4, 0, 49, 4]),
}

/** normalizeRows: 3 rows of 8, projected onto fixed coefficients. */
export const normalize = {
  rows: 3,
  cols: 8,
  x: fillUniform(3 * 8, 1, random),
  coefficients: fillUniform(3 * 8, 1, random),
}

export const modelConfig: GruModelConfig = {
  ...DEFAULT_GRU_CONFIG,
  nItems: 50,
  embedDim: 8,
  hiddenDim: 8,
  maxLen: 5,
  dropout: 0,
}
export const modelSeed = 1

/** One batch: a one-item session, one longer than maxLen, repeats, item 0, the last item. */
export const sessions: Int32Array[] = [
  [1, 2, 3],
  [4],
  [5, 6, 7, 8, 9, 10, 11],
  [12, 12, 13],
  [49, 0, 25],
  [7, 8],
].map((s) => Int32Array.from(s))
/** Next items; 7 appears twice so the sampled loss masks an accidental hit. */
export const targets = Int32Array.from([4, 7, 12, 14, 1, 7])

/** Popularity counts for the sampler (seeded, skewed). */
export const itemCounts = Int32Array.from({ length: 50 }, (_, i) => Math.floor(200 / (i + 1)))
export const samplerSeed = 5
export const negatives = 16
export const learningRate = 0.01
export const trainerSeed = 3
