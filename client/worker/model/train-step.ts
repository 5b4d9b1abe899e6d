// One optimiser step of the session model, shared by the offline trainer (Node) and on-device
// fine-tuning (worker). Everything allocated here is released before the promise resolves.
import * as tf from '@tensorflow/tfjs-core'
import type { GruModel, SessionBatch } from './gru-model'
import type { NegativeSampler } from './negative-sampler'
import { gatherRows, normalizeRows, softmaxCrossEntropy } from './ops'
import { registerTrainingGradients } from './gradients'

export type LossKind = 'full' | 'sampled'

export interface TrainerOptions {
  learningRate: number
  loss: LossKind
  /** Required for the sampled loss: extra popularity-drawn negatives per batch. */
  sampler?: NegativeSampler
  negatives?: number
  seed?: number
}

export interface Trainer {
  /** One Adam step on `batch` → `targets`; resolves to the batch's mean loss. */
  step(batch: SessionBatch, targets: Int32Array): Promise<number>
  setLearningRate(rate: number): void
  dispose(): void
}

/** tfjs' float32 epsilon (EPSILON_FLOAT32), which cpu, wasm and webgpu already use. */
export const ADAM_EPSILON = 1e-7

export function createTrainer(model: GruModel, options: TrainerOptions): Trainer {
  registerTrainingGradients()
  if (options.loss === 'sampled' && !options.sampler) {
    throw new Error('the sampled loss needs a negative sampler')
  }
  // Adam's default epsilon is the active backend's: 1e-7 on cpu, wasm and webgpu, but 1e-4 on
  // a float32 WebGL (tfjs-backend-webgl 4.22's floatPrecision() reports 16 whenever float32
  // rendering is on; tensorflow/tfjs#6980), which shrinks every step whose gradient is under
  // ~1e-4. Pinning it keeps one training step the same on every backend.
  const optimizer = tf.train.adam(options.learningRate, 0.9, 0.999, ADAM_EPSILON)
  const variables = [...model.variables.values()]
  let stepIndex = 0
  const seed = options.seed ?? 1

  function lossFor(batch: SessionBatch, targets: Int32Array): tf.Scalar {
    const sessions = model.encode(batch, { training: true, seed: seed * 100_003 + stepIndex * 2 })
    const targetTensor = tf.tensor1d(targets, 'int32')
    if (options.loss === 'full') {
      return softmaxCrossEntropy(model.logits(sessions, model.itemVectors()), targetTensor)
    }
    // Sampled softmax over in-batch targets plus popularity negatives, logQ-corrected; row i's
    // label is column i, and other columns holding that same item are masked (accidental hits).
    const negatives = options.sampler!.sample(options.negatives ?? 1024)
    const candidates = new Int32Array(targets.length + negatives.length)
    candidates.set(targets)
    candidates.set(negatives, targets.length)
    let rows = gatherRows(
      model.variables.get('item_embedding') as tf.Tensor2D,
      tf.tensor1d(candidates, 'int32'),
    )
    if (model.config.normalize) rows = normalizeRows(rows)
    const correction = new Float32Array(targets.length * candidates.length)
    const logQ = Float32Array.from(candidates, (item) =>
      options.sampler!.logExpectedCount(item, targets.length, negatives.length),
    )
    for (let i = 0; i < targets.length; i++) {
      const row = i * candidates.length
      for (let j = 0; j < candidates.length; j++) {
        correction[row + j] = j !== i && candidates[j] === targets[i] ? -1e4 : -logQ[j]!
      }
    }
    const logits = tf.add(
      model.logits(sessions, rows),
      tf.tensor2d(correction, [targets.length, candidates.length]),
    )
    const labels = tf.range(0, targets.length, 1, 'int32') as tf.Tensor1D
    return softmaxCrossEntropy(logits as tf.Tensor2D, labels)
  }

  return {
    async step(batch, targets) {
      const cost = optimizer.minimize(() => lossFor(batch, targets), true, variables)!
      stepIndex++
      const [value] = await cost.data()
      cost.dispose()
      return value!
    },
    setLearningRate(rate) {
      // AdamOptimizer reads this field on every step, so the moments survive a schedule change.
      ;(optimizer as unknown as { learningRate: number }).learningRate = rate
    },
    dispose() {
      optimizer.dispose()
    },
  }
}
