import * as tf from '@tensorflow/tfjs-core'
import { gatherGradConfig } from '@tensorflow/tfjs-core/dist/gradients/GatherV2_grad'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { setNodeBackend } from './node-backend'
import { registerTrainingGradients } from './gradients'
import { gatherRows, matMul, normalizeRows, softmaxCrossEntropy } from './ops'
import { createRandom, fillUniform } from '../shared/random'

// Central finite differences of a scalar function of one tensor, in float64 on the host.
async function finiteDifference(
  f: (x: tf.Tensor) => tf.Scalar,
  values: Float32Array,
  shape: number[],
  epsilon = 1e-2,
): Promise<Float32Array> {
  const grad = new Float32Array(values.length)
  for (let i = 0; i < values.length; i++) {
    const plus = values.slice()
    const minus = values.slice()
    plus[i]! += epsilon
    minus[i]! -= epsilon
    const up = tf.tidy(() => f(tf.tensor(plus, shape)))
    const down = tf.tidy(() => f(tf.tensor(minus, shape)))
    grad[i] = ((await up.data())[0]! - (await down.data())[0]!) / (2 * epsilon)
    up.dispose()
    down.dispose()
  }
  return grad
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number) {
  expect(actual.length).toBe(expected.length)
  for (let i = 0; i < actual.length; i++) {
    expect(Math.abs(actual[i]! - expected[i]!)).toBeLessThanOrEqual(tolerance)
  }
}

const random = createRandom(42)
const table = fillUniform(7 * 3, 1, random) // [7, 3]
const ids = Int32Array.from([2, 5, 2, 0, 6]) // repeated id 2: its gradient rows must add up

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`custom gradients on ${backend}`, () => {
    let before = 0
    beforeAll(async () => {
      await setNodeBackend(backend)
      registerTrainingGradients()
      // The stock gradients, registered here only as references to compare against.
      tf.registerGradient(gatherGradConfig)
      before = tf.memory().numTensors
    })
    afterEach(() => {
      expect(tf.memory().numTensors).toBe(before)
    })

    const weights = fillUniform(5 * 3, 1, random) // [5, 3] fixed projection of the gathered rows
    const gatherLoss = (gather: (t: tf.Tensor2D) => tf.Tensor2D) => (t: tf.Tensor) =>
      tf.sum(tf.mul(tf.square(gather(t as tf.Tensor2D)), tf.tensor2d(weights, [5, 3]))) as tf.Scalar

    it('gatherRows gradient matches finite differences, duplicates summed', async () => {
      const f = gatherLoss((t) => gatherRows(t, tf.tensor1d(ids, 'int32')))
      const analytic = tf.tidy(() => tf.grad(f)(tf.tensor2d(table, [7, 3])))
      const numeric = await finiteDifference(f, table, [7, 3])
      expectClose(await analytic.data(), numeric, 2e-2)
      analytic.dispose()
    })

    it.runIf(backend === 'cpu')(
      'gatherRows gradient equals the built-in gather gradient',
      async () => {
        const [ours, stock] = tf.tidy(() => {
          const x = tf.tensor2d(table, [7, 3])
          return [
            tf.grad(gatherLoss((t) => gatherRows(t, tf.tensor1d(ids, 'int32'))))(x),
            tf.grad(gatherLoss((t) => tf.gather(t, tf.tensor1d(ids, 'int32'))))(x),
          ]
        })
        expectClose(await ours.data(), await stock.data(), 1e-6)
        tf.dispose([ours, stock])
      },
    )

    it('matMul gradients equal tf.matMul gradients', async () => {
      const a = tf.tensor2d(fillUniform(4 * 3, 1, random), [4, 3])
      const b = tf.tensor2d(fillUniform(3 * 5, 1, random), [3, 5])
      const loss = (mm: typeof tf.matMul) => (x: tf.Tensor, y: tf.Tensor) =>
        tf.sum(tf.square(mm(x as tf.Tensor2D, y as tf.Tensor2D))) as tf.Scalar
      const [da, db, ea, eb] = tf.tidy(() => [
        ...tf.grads(loss(matMul as typeof tf.matMul))([a, b]),
        ...tf.grads(loss(tf.matMul))([a, b]),
      ])
      expectClose(await da!.data(), await ea!.data(), 1e-4)
      expectClose(await db!.data(), await eb!.data(), 1e-4)
      tf.dispose([a, b, da!, db!, ea!, eb!])
    })

    it('softmaxCrossEntropy matches a float64 reference in value and gradient', async () => {
      const [rows, classes] = [3, 6]
      const logits = fillUniform(rows * classes, 3, random)
      const targets = Int32Array.from([4, 0, 5])
      // Reference: mean of log Σ exp(z) − z[target]; gradient (softmax − one-hot) / rows.
      let expectedLoss = 0
      const expectedGrad = new Float64Array(rows * classes)
      for (let r = 0; r < rows; r++) {
        const row = Array.from(logits.subarray(r * classes, (r + 1) * classes))
        const max = Math.max(...row)
        const sum = row.reduce((acc, z) => acc + Math.exp(z - max), 0)
        expectedLoss += (Math.log(sum) + max - row[targets[r]!]!) / rows
        row.forEach((z, c) => {
          expectedGrad[r * classes + c] =
            (Math.exp(z - max) / sum - (c === targets[r] ? 1 : 0)) / rows
        })
      }
      const f = (z: tf.Tensor) =>
        softmaxCrossEntropy(z as tf.Tensor2D, tf.tensor1d(targets, 'int32'))
      const [value, grad] = tf.tidy(() => {
        const z = tf.tensor2d(logits, [rows, classes])
        return [f(z), tf.grad(f)(z)]
      })
      expect(Math.abs((await value.data())[0]! - expectedLoss)).toBeLessThan(1e-5)
      expectClose(await grad.data(), expectedGrad, 1e-6)
      expectClose(await grad.data(), await finiteDifference(f, logits, [rows, classes], 1e-2), 5e-3)
      tf.dispose([value, grad])
    })

    it('normalizeRows gives unit rows and a finite-difference gradient', async () => {
      const x = fillUniform(2 * 4, 1, random)
      const f = (t: tf.Tensor) =>
        tf.sum(
          tf.mul(normalizeRows(t), tf.tensor2d([1, 2, 3, 4, -1, 0, 2, 1], [2, 4])),
        ) as tf.Scalar
      const unit = tf.tidy(() => tf.sum(tf.square(normalizeRows(tf.tensor2d(x, [2, 4]))), 1))
      expectClose(await unit.data(), [1, 1], 1e-5)
      const g = tf.tidy(() => tf.grad(f)(tf.tensor2d(x, [2, 4])))
      expectClose(await g.data(), await finiteDifference(f, x, [2, 4], 1e-3), 2e-2)
      tf.dispose([unit, g])
    })
  })
}
