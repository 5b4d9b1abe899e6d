// Training in the shipped form: the item table stays product-quantised (each row's codes fixed,
// shared/product-quantiser.ts) while its centroids and every other weight learn, so the model
// recovers what quantisation cost instead of shipping it (BENCHMARKS.md, "The first visit").
// Each step reads the rows it touches as centroid lookups, differentiable in the centroids; after
// the step the model's item table is rebuilt from them, so it always is the shipped table exactly
// (and the codec's pq8 encoder finds the same centroids again without loss).
import * as tf from '@tensorflow/tfjs-core'
import type { GruModel } from '../model/gru-model'
import { gatherRows } from '../model/ops'
import {
  ADAM_BETA1,
  ADAM_BETA2,
  ADAM_EPSILON,
  candidatesFor,
  sampledSoftmaxLoss,
  stepPositions,
  type Trainer,
  type TrainerOptions,
} from '../model/train-step'
import { PQ_CENTROIDS, type QuantisedRows } from '../shared/product-quantiser'
import { TABLE_NAME } from '../shared/federation-layout'
import { registerTrainingGradients } from '../model/gradients'

let counter = 0

export function createQuantisedTrainer(
  model: GruModel,
  quantised: QuantisedRows,
  options: TrainerOptions,
): Trainer {
  registerTrainingGradients()
  const sampler = options.sampler
  if (options.loss !== 'sampled' || !sampler) {
    throw new Error('training the quantised table needs the sampled loss and its sampler')
  }
  const table = model.variables.get(TABLE_NAME)!
  const [nItems, dim] = table.shape as [number, number]
  const { subspaces, codes } = quantised
  const sub = dim / subspaces
  if (codes.length !== nItems * subspaces) {
    throw new RangeError(`expected codes for ${nItems} rows × ${subspaces}, got ${codes.length}`)
  }
  // Row r's slice s is centroid row s · 256 + code of [subspaces · 256, sub].
  const centroidRows = (ids: ArrayLike<number>) => {
    const out = new Int32Array(ids.length * subspaces)
    for (let i = 0; i < ids.length; i++) {
      for (let s = 0; s < subspaces; s++) {
        out[i * subspaces + s] = s * PQ_CENTROIDS + codes[ids[i]! * subspaces + s]!
      }
    }
    return out
  }
  // tidy releases the initial tensor; the variable keeps its own reference to the data.
  const codebook = tf.tidy(() =>
    tf.variable(
      tf.tensor2d(quantised.codebooks, [subspaces * PQ_CENTROIDS, sub]),
      true,
      `pq_codebook#${counter++}`,
    ),
  )
  const everyRow = tf.tensor1d(centroidRows(Int32Array.from({ length: nItems }, (_, i) => i)))
  const rebuild = () => tf.reshape(tf.gather(codebook, everyRow), [nItems, dim]) as tf.Tensor2D
  const dense = [...model.variables.values()].filter((v) => v !== table)
  const optimizer = tf.train.adam(options.learningRate, ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON)
  const seed = options.seed ?? 1
  const inBatchNegatives = options.inBatchNegatives ?? true
  let stepIndex = 0
  tf.tidy(() => table.assign(rebuild()))

  return {
    async step(batch, targets) {
      const candidates = candidatesFor(targets, sampler.sample(options.negatives ?? 1024))
      const rows = stepPositions(batch.ids, candidates)
      const cost = tf.tidy(() => {
        const lookup = tf.tensor1d(centroidRows(rows.ids), 'int32')
        const { value, grads } = tf.variableGrads(() => {
          const stepRows = tf.reshape(gatherRows(codebook, lookup), [rows.ids.length, dim])
          const sessions = model.encode(
            { ...batch, ids: rows.local(batch.ids) },
            {
              training: true,
              seed: seed * 100_003 + stepIndex * 2,
              itemRows: stepRows as tf.Tensor2D,
            },
          )
          const vectors = gatherRows(
            stepRows as tf.Tensor2D,
            tf.tensor1d(rows.local(candidates), 'int32'),
          )
          return sampledSoftmaxLoss(model, sessions, targets, candidates, vectors, {
            sampler,
            inBatchNegatives,
          })
        }, [codebook, ...dense])
        optimizer.applyGradients(
          [codebook, ...dense].map((v) => ({ name: v.name, tensor: grads[v.name]! })),
        )
        table.assign(rebuild())
        return value
      })
      stepIndex++
      const [value] = await cost.data()
      cost.dispose()
      return value!
    },
    setLearningRate(rate) {
      // AdamOptimizer reads this field on every step, so the moments survive a schedule change.
      ;(optimizer as unknown as { learningRate: number }).learningRate = rate
    },
    undo() {
      throw new Error('the shipped-form trainer keeps no undo: fitShippedForm keeps the best epoch')
    },
    dispose() {
      optimizer.dispose()
      codebook.dispose()
      everyRow.dispose()
    },
  }
}
