import * as tf from '@tensorflow/tfjs-core'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { setNodeBackend } from './node-backend'
import { createGruModel, DEFAULT_GRU_CONFIG, type GruModel, type GruModelConfig } from './gru-model'
import { createPopularitySampler } from './negative-sampler'
import { createRandom } from '../shared/random'
import { encodeSessionBatch } from './session-batch'
import { ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON, createRowAdam, createTrainer } from './train-step'

// Enough items that a step with 6 negatives leaves most rows untouched, and rows touched once
// then idle for several steps (their moments must keep decaying and moving them, as in Adam).
const config: GruModelConfig = {
  ...DEFAULT_GRU_CONFIG,
  nItems: 120,
  embedDim: 8,
  hiddenDim: 8,
  maxLen: 4,
  dropout: 0.1,
}

function batches(count: number, seed: number) {
  const random = createRandom(seed)
  const pick = () => 1 + Math.floor(random() * (config.nItems - 1))
  return Array.from({ length: count }, () => {
    const prefixes = Array.from({ length: 3 }, () =>
      Int32Array.from({ length: 1 + Math.floor(random() * 4) }, pick),
    )
    return {
      batch: encodeSessionBatch(prefixes, config.maxLen),
      targets: Int32Array.from(prefixes, pick),
    }
  })
}

async function train(
  sparseItems: boolean,
  itemsOnly: boolean,
  optimizer: 'adam' | 'sgd' = 'adam',
  denseLearningRate?: number,
): Promise<Map<string, Float32Array>> {
  const model = createGruModel(config, 5)
  const view: GruModel = itemsOnly
    ? { ...model, variables: new Map([['item_embedding', model.variables.get('item_embedding')!]]) }
    : model
  const sampler = createPopularitySampler(new Int32Array(config.nItems).fill(1), { seed: 3 })
  const trainer = createTrainer(view, {
    learningRate: optimizer === 'sgd' ? 0.5 : 0.05,
    optimizer,
    denseLearningRate,
    loss: 'sampled',
    sampler,
    negatives: 6,
    seed: 9,
    sparseItems,
  })
  for (const [i, { batch, targets }] of batches(8, 11).entries()) {
    if (i === 4) trainer.setLearningRate(0.02)
    await trainer.step(batch, targets)
  }
  trainer.dispose()
  const values = new Map<string, Float32Array>()
  for (const [name, v] of model.variables) values.set(name, (await v.data()) as Float32Array)
  model.dispose()
  return values
}

function maxAbsDifference(a: Float32Array, b: Float32Array): number {
  let worst = 0
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!))
  return worst
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`sparse item updates (${backend})`, () => {
    let before = 0
    beforeAll(async () => {
      await setNodeBackend(backend)
    })
    beforeEach(() => {
      before = tf.memory().numTensors
    })
    afterEach(() => {
      expect(tf.memory().numTensors).toBe(before)
    })

    it('SGD with a second rate for the non-table weights: sparse and dense paths agree', async () => {
      const dense = await train(false, false, 'sgd', 0.01)
      const sparse = await train(true, false, 'sgd', 0.01)
      for (const [name, values] of dense) {
        expect(maxAbsDifference(values, sparse.get(name)!), name).toBeLessThan(1e-5)
      }
      // The second rate is used: the GRU moves less than with one rate for all.
      const one = await train(false, false, 'sgd')
      const initial = createGruModel(config, 5)
      const start = (await initial.variables.get('gru/w_hidden')!.data()) as Float32Array
      initial.dispose()
      const moved = (w: Map<string, Float32Array>) =>
        maxAbsDifference(start, w.get('gru/w_hidden')!)
      expect(moved(dense)).toBeLessThan(moved(one) / 10)
      expect(moved(dense)).toBeGreaterThan(0)
    })

    it('sparse SGD ends where dense SGD ends; each step follows the gradient, not its sign', async () => {
      const dense = await train(false, false, 'sgd')
      const sparse = await train(true, false, 'sgd')
      for (const [name, values] of dense) {
        expect(maxAbsDifference(values, sparse.get(name)!), name).toBeLessThan(1e-5)
      }
      const initial = createGruModel(config, 5)
      const start = (await initial.variables.get('item_embedding')!.data()) as Float32Array
      initial.dispose()
      const moved = Array.from(start, (v, i) => Math.abs(dense.get('item_embedding')![i]! - v))
      // Adam's first steps move every touched weight by about the rate; SGD's moves spread with
      // the gradients: the largest is many times the median touched one.
      const touched = moved.filter((m) => m > 0).sort((a, b) => a - b)
      expect(
        touched[touched.length - 1]! / touched[Math.floor(touched.length / 2)]!,
      ).toBeGreaterThan(10)
    })

    for (const itemsOnly of [true, false]) {
      it(`end where dense Adam ends after 8 steps (${itemsOnly ? 'item table only' : 'every weight'})`, async () => {
        const dense = await train(false, itemsOnly)
        const sparse = await train(true, itemsOnly)
        const initial = createGruModel(config, 5)
        const start = (await initial.variables.get('item_embedding')!.data()) as Float32Array
        initial.dispose()
        // Float32 rounding differs (gradients summed in another order, bias corrections computed
        // in float64 rather than accumulated in float32); a wrong update rule would differ by
        // about the learning rate.
        for (const [name, values] of dense) {
          expect(maxAbsDifference(values, sparse.get(name)!), name).toBeLessThan(1e-5)
        }
        // The comparison means something: training moved the weights well beyond the tolerance.
        expect(maxAbsDifference(start, dense.get('item_embedding')!)).toBeGreaterThan(0.05)
      })
    }

    it('row-wise Adam matches tf.train.adam on gradients that touch a few rows, then none', async () => {
      const shape: [number, number] = [6, 3]
      const start = tf.tensor2d(
        Float32Array.from({ length: 18 }, (_, i) => Math.sin(i)),
        shape,
      )
      const dense = tf.variable(start, true, 'row-adam-dense')
      const sparse = tf.variable(start, true, 'row-adam-sparse')
      const optimizer = tf.train.adam(0.1, ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON)
      const rowAdam = createRowAdam(sparse, 0.1)
      // Step 1 touches rows 1 and 4, step 2 row 4 only, step 3 row 0 only: rows 1 and 4 keep
      // moving on their momentum; rows 2, 3 and 5 never move.
      const steps: Array<[number[], number[][]]> = [
        [
          [1, 4],
          [
            [0.5, -1, 2],
            [3, 0, -0.25],
          ],
        ],
        [[4], [[-1, 1, 1]]],
        [[0], [[0.01, 0.02, -0.03]]],
      ]
      for (const [ids, rows] of steps) {
        const grads = tf.tensor2d(rows)
        const at = tf.tensor2d(ids, [ids.length, 1], 'int32')
        const full = tf.scatterND(at, grads, shape)
        optimizer.applyGradients([{ name: 'row-adam-dense', tensor: full }])
        rowAdam.apply(Int32Array.from(ids), grads as tf.Tensor2D)
        tf.dispose([grads, at, full])
      }
      const a = (await dense.data()) as Float32Array
      const b = (await sparse.data()) as Float32Array
      const initial = (await start.data()) as Float32Array
      expect(maxAbsDifference(a, b)).toBeLessThan(1e-5)
      for (const row of [2, 3, 5]) {
        expect(Array.from(b.subarray(row * 3, row * 3 + 3))).toEqual(
          Array.from(initial.subarray(row * 3, row * 3 + 3)),
        )
      }
      expect(Math.abs(b[3]! - initial[3]!)).toBeGreaterThan(0.2) // row 1 moved in every step
      optimizer.dispose()
      rowAdam.dispose()
      tf.dispose([start, dense, sparse])
    })

    it('refuses sparse updates with the full softmax, which reads every row', () => {
      const model = createGruModel(config, 1)
      expect(() =>
        createTrainer(model, { learningRate: 0.01, loss: 'full', sparseItems: true }),
      ).toThrow(/sampled loss/)
      model.dispose()
    })
  })
}
