import * as tf from '@tensorflow/tfjs-core'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { setNodeBackend } from './node-backend'
import { decodeWeights, encodeWeights } from '../shared/weights-codec'
import {
  createGruModel,
  DEFAULT_GRU_CONFIG,
  withBonuses,
  type GruModel,
  type GruModelConfig,
} from './gru-model'
import { exportModelWeights, importModelWeights, ModelWeightsError } from './model-weights'
import { createPopularitySampler } from './negative-sampler'
import { createRandom } from '../shared/random'
import { encodeSessionBatch } from './session-batch'
import { createTrainer, type LossKind } from './train-step'

const tiny: GruModelConfig = {
  ...DEFAULT_GRU_CONFIG,
  nItems: 10,
  embedDim: 32,
  hiddenDim: 32,
  maxLen: 5,
  dropout: 0,
}

// A deterministic pattern only order can explain: the next item is (2·last + previous) mod n,
// so a model that ignores the second-to-last item (popularity, last-item-only) cannot pass.
function makeCases(count: number, seed: number) {
  const random = createRandom(seed)
  const prefixes: Int32Array[] = []
  const targets: number[] = []
  for (let i = 0; i < count; i++) {
    const a = Math.floor(random() * tiny.nItems)
    const b = Math.floor(random() * tiny.nItems)
    const c = (2 * b + a) % tiny.nItems
    prefixes.push(Int32Array.from([a, b]))
    targets.push(c)
  }
  return { prefixes, targets: Int32Array.from(targets) }
}

async function topOneAccuracy(model: GruModel, prefixes: Int32Array[], targets: Int32Array) {
  const logits = tf.tidy(() =>
    model.logits(model.encode(encodeSessionBatch(prefixes, tiny.maxLen)), model.itemVectors()),
  )
  const best = tf.tidy(() => tf.argMax(logits, 1))
  const predicted = await best.data()
  tf.dispose([logits, best])
  return Array.from(predicted).filter((p, i) => p === targets[i]).length / targets.length
}

describe('GRU session model (cpu)', () => {
  let before = 0
  beforeAll(async () => {
    await setNodeBackend('cpu')
  })
  beforeEach(() => {
    before = tf.memory().numTensors
  })
  afterEach(() => {
    expect(tf.memory().numTensors).toBe(before)
  })

  for (const loss of ['full', 'sampled'] as LossKind[]) {
    it(`learns an order-dependent sequence pattern to near-perfect accuracy (${loss} softmax)`, async () => {
      const model = createGruModel(tiny, 3)
      const counts = new Int32Array(tiny.nItems).fill(1)
      const trainer = createTrainer(model, {
        learningRate: 0.02,
        loss,
        sampler: createPopularitySampler(counts, { seed: 5 }),
        negatives: 8,
        seed: 9,
      })
      const test = makeCases(200, 100)
      const untrained = await topOneAccuracy(model, test.prefixes, test.targets)
      let last = Infinity
      for (let step = 0; step < 300; step++) {
        const { prefixes, targets } = makeCases(64, step)
        last = await trainer.step(encodeSessionBatch(prefixes, tiny.maxLen), targets)
      }
      const trained = await topOneAccuracy(model, test.prefixes, test.targets)
      expect(untrained).toBeLessThan(0.3)
      expect(trained).toBeGreaterThan(0.95)
      expect(last).toBeLessThan(0.5)
      trainer.dispose()
      model.dispose()
    })
  }

  it('is reproducible: the same seed gives bit-identical weights after training', async () => {
    const run = async () => {
      const model = createGruModel({ ...tiny, dropout: 0.2 }, 11)
      const trainer = createTrainer(model, { learningRate: 0.01, loss: 'full', seed: 4 })
      for (let step = 0; step < 5; step++) {
        const { prefixes, targets } = makeCases(16, step)
        await trainer.step(encodeSessionBatch(prefixes, tiny.maxLen), targets)
      }
      const weights = await exportModelWeights(model)
      trainer.dispose()
      model.dispose()
      return weights
    }
    const [a, b] = [await run(), await run()]
    expect(b.tensors.map((t) => Array.from(t.values))).toEqual(
      a.tensors.map((t) => Array.from(t.values)),
    )
  })

  it('left-pads sessions and keeps only the last maxLen items', () => {
    const batch = encodeSessionBatch(
      [Int32Array.from([1, 2, 3, 4, 5, 6, 7]), Int32Array.from([9])],
      5,
    )
    expect(batch.time).toBe(5)
    expect(Array.from(batch.ids)).toEqual([3, 4, 5, 6, 7, 0, 0, 0, 0, 9])
    expect(Array.from(batch.mask)).toEqual([1, 1, 1, 1, 1, 0, 0, 0, 0, 1])
  })

  it('gives a padded session the same representation as the unpadded one', async () => {
    const model = createGruModel(tiny, 2)
    const alone = tf.tidy(() =>
      model.encode(encodeSessionBatch([Int32Array.from([4, 7])], tiny.maxLen)),
    )
    const padded = tf.tidy(() =>
      tf.slice(
        model.encode(
          encodeSessionBatch([Int32Array.from([4, 7]), Int32Array.from([1, 2, 3, 5])], tiny.maxLen),
        ),
        [0, 0],
        [1, -1],
      ),
    )
    const [x, y] = [await alone.data(), await padded.data()]
    for (let i = 0; i < x.length; i++) expect(Math.abs(x[i]! - y[i]!)).toBeLessThan(1e-5)
    tf.dispose([alone, padded])
    model.dispose()
  })

  it('round-trips through the weights codec and scores identically', async () => {
    const model = createGruModel(tiny, 6)
    const bytes = encodeWeights(await exportModelWeights(model))
    const copy = importModelWeights(decodeWeights(bytes))
    const { prefixes, targets } = makeCases(20, 1)
    expect(await topOneAccuracy(copy, prefixes, targets)).toBe(
      await topOneAccuracy(model, prefixes, targets),
    )
    const a = tf.tidy(() => model.encode(encodeSessionBatch(prefixes, tiny.maxLen)))
    const b = tf.tidy(() => copy.encode(encodeSessionBatch(prefixes, tiny.maxLen)))
    expect(Array.from(await b.data())).toEqual(Array.from(await a.data()))
    tf.dispose([a, b])
    model.dispose()
    copy.dispose()
  })

  it('keeps the scoring bonuses through the weights codec, and refuses a bad one', async () => {
    const model = withBonuses(createGruModel(tiny, 6), { repeatBonus: 3, coVisitBonus: 0.5 })
    const file = await exportModelWeights(model)
    const copy = importModelWeights(decodeWeights(encodeWeights(file)))
    expect(copy.config.repeatBonus).toBe(3)
    expect(copy.config.coVisitBonus).toBe(0.5)
    // A file from before the bonuses: none.
    const { repeatBonus: _, coVisitBonus: __, ...older } = file.meta
    const plain = importModelWeights({ ...file, meta: older })
    expect(plain.config.repeatBonus).toBeUndefined()
    expect(plain.config.coVisitBonus).toBeUndefined()
    expect(() => importModelWeights({ ...file, meta: { ...file.meta, repeatBonus: -1 } })).toThrow(/meta.repeatBonus/) // prettier-ignore
    expect(() => importModelWeights({ ...file, meta: { ...file.meta, coVisitBonus: 'x' } })).toThrow(/meta.coVisitBonus in \[0, 100\)/) // prettier-ignore
    model.dispose()
    copy.dispose()
    plain.dispose()
  })

  it('refuses weights that do not fit the declared config, creating no tensor', async () => {
    const model = createGruModel(tiny, 6)
    const file = await exportModelWeights(model)
    model.dispose()
    const count = tf.memory().numTensors
    const wrongShape = {
      ...file,
      tensors: file.tensors.map((t) => (t.name === 'gru/w_hidden' ? { ...t, shape: [8, 96] } : t)),
    }
    expect(() => importModelWeights(wrongShape)).toThrow(
      /expected gru\/w_hidden of shape \[32,96\], got \[8,96\]/,
    )
    expect(() => importModelWeights({ ...file, tensors: file.tensors.slice(1) })).toThrow(
      ModelWeightsError,
    )
    expect(() => importModelWeights({ ...file, meta: { ...file.meta, nItems: -3 } })).toThrow(
      /meta.nItems/,
    )
    expect(() => importModelWeights({ ...file, format: 'something-else' })).toThrow(
      /expected format/,
    )
    expect(tf.memory().numTensors).toBe(count)
  })
})
