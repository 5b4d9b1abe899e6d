import * as tf from '@tensorflow/tfjs-core'
import { beforeAll, describe, expect, it } from 'vitest'
import { createGruModel, DEFAULT_GRU_CONFIG, type GruModelConfig } from '../model/gru-model'
import { exportModelWeights } from '../model/model-weights'
import { createRandom } from '../shared/random'
import { countItems } from './data/examples'
import { evaluateScorer } from '../model/eval/evaluate'
import { DEFAULT_FIT_OPTIONS, fitGruModel, planBatches } from './fit'
import { createGruScorer } from '../model/eval/gru-scorer'
import { setNodeBackend } from '../model/node-backend'

const config: GruModelConfig = {
  ...DEFAULT_GRU_CONFIG,
  nItems: 30,
  embedDim: 16,
  hiddenDim: 16,
  maxLen: 6,
  dropout: 0,
}

// Sessions walking a fixed cycle over the catalogue: the next item is always `next[last]`.
function makeSessions(count: number, seed: number): Int32Array[] {
  const random = createRandom(seed)
  const next = Array.from({ length: config.nItems }, (_, i) => (i * 7 + 3) % config.nItems)
  return Array.from({ length: count }, () => {
    const length = 2 + Math.floor(random() * 5)
    const session = new Int32Array(length)
    session[0] = Math.floor(random() * config.nItems)
    for (let k = 1; k < length; k++) session[k] = next[session[k - 1]!]!
    return session
  })
}

const quick = {
  ...DEFAULT_FIT_OPTIONS,
  batchSize: 32,
  learningRate: 0.02,
  negatives: 16,
  epochs: 3,
}

describe('fitGruModel', () => {
  beforeAll(async () => {
    await setNodeBackend('wasm')
  })

  it('trains to high validation recall on a learnable pattern, leaking no tensors', async () => {
    const before = tf.memory().numTensors
    const train = makeSessions(300, 1)
    const validation = makeSessions(60, 2)
    const model = createGruModel(config, 1)
    const recalls: number[] = []
    const report = await fitGruModel(model, train, {
      ...quick,
      validate: async () => {
        const scorer = createGruScorer(model)
        const result = await evaluateScorer(scorer, validation, {
          nItems: config.nItems,
          trainCounts: countItems(train, config.nItems),
        })
        scorer.dispose?.()
        recalls.push(result.metrics['recall@5']!)
        return result.metrics['recall@5']!
      },
    })
    expect(report.epochs).toHaveLength(3)
    expect(report.examples).toBe(train.reduce((n, s) => n + s.length - 1, 0))
    expect(Math.max(...recalls)).toBeGreaterThan(0.95)
    model.dispose()
    expect(tf.memory().numTensors).toBe(before)
  })

  it('ends holding the best-validated weights and stops after `patience` worse epochs', async () => {
    const before = tf.memory().numTensors
    const model = createGruModel(config, 2)
    const scripted = [0.2, 0.9, 0.5, 0.4, 0.95]
    const snapshots: number[][] = []
    const report = await fitGruModel(model, makeSessions(100, 3), {
      ...quick,
      epochs: 5,
      patience: 2,
      validate: async (epoch) => {
        const weights = await exportModelWeights(model)
        snapshots.push(Array.from(weights.tensors.find((t) => t.name === 'gru/w_hidden')!.values))
        return scripted[epoch - 1]!
      },
    })
    expect(report.epochs.map((e) => e.epoch)).toEqual([1, 2, 3, 4])
    expect(report.bestEpoch).toBe(2)
    expect(report.stoppedBy).toBe('patience')
    const final = await exportModelWeights(model)
    expect(Array.from(final.tensors.find((t) => t.name === 'gru/w_hidden')!.values)).toEqual(
      snapshots[1],
    )
    expect(snapshots[3]).not.toEqual(snapshots[1])
    model.dispose()
    expect(tf.memory().numTensors).toBe(before)
  })

  it('decays the learning rate after `decayFrom` epochs', async () => {
    const model = createGruModel(config, 3)
    const report = await fitGruModel(model, makeSessions(40, 4), {
      ...quick,
      epochs: 4,
      decayFrom: 2,
      lrDecay: 0.5,
    })
    expect(report.epochs.map((e) => e.learningRate)).toEqual([0.02, 0.02, 0.01, 0.005])
    expect(report.stoppedBy).toBe('epochs')
    model.dispose()
  })

  it('says when time, not the schedule, ended the training', async () => {
    const model = createGruModel(config, 3)
    const report = await fitGruModel(model, makeSessions(40, 4), { ...quick, epochs: 4, maxSeconds: 1e-6 }) // prettier-ignore
    expect(report.epochs).toHaveLength(1)
    expect(report.stoppedBy).toBe('time')
    model.dispose()
  })

  it('plans every case exactly once, in batches of similar prefix length', () => {
    const cases = makeSessions(200, 5).flatMap((s) =>
      Array.from({ length: s.length - 1 }, (_, k) => ({
        prefix: s.subarray(0, k + 1),
        target: s[k + 1]!,
        rest: s.subarray(k + 1),
      })),
    )
    const batches = planBatches(cases, 16, createRandom(9))
    expect(batches.flat()).toHaveLength(cases.length)
    expect(new Set(batches.flat())).toEqual(new Set(cases))
    const spread = batches.map(
      (b) =>
        Math.max(...b.map((c) => c.prefix.length)) - Math.min(...b.map((c) => c.prefix.length)),
    )
    expect(spread.reduce((a, b) => a + b, 0) / spread.length).toBeLessThan(1)
  })
})
