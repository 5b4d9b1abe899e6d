import * as tf from '@tensorflow/tfjs-core'
import { beforeAll, describe, expect, it } from 'vitest'
import { createGruModel, DEFAULT_GRU_CONFIG, type GruModelConfig } from '../model/gru-model'
import { evaluateScorer } from '../model/eval/evaluate'
import { createGruScorer } from '../model/eval/gru-scorer'
import { createPopularitySampler } from '../model/negative-sampler'
import { setNodeBackend } from '../model/node-backend'
import { expandPrefixes } from '../model/prefix-cases'
import { encodeSessionBatch } from '../model/session-batch'
import { quantiseRows, reconstructRows } from '../shared/product-quantiser'
import { createRandom } from '../shared/random'
import { countItems } from './data/examples'
import { planBatches } from './fit'
import { createQuantisedTrainer } from './quantised-trainer'

// More items than centroids, so the codes really share centroids.
const config: GruModelConfig = {
  ...DEFAULT_GRU_CONFIG,
  nItems: 300,
  embedDim: 8,
  hiddenDim: 8,
  maxLen: 5,
  dropout: 0,
}

// The next item is always next[last]: a pattern only a trained model finds.
function makeSessions(count: number, seed: number): Int32Array[] {
  const random = createRandom(seed)
  const next = Array.from({ length: config.nItems }, (_, i) => (i * 7 + 3) % config.nItems)
  return Array.from({ length: count }, () => {
    const session = new Int32Array(2 + Math.floor(random() * 4))
    session[0] = Math.floor(random() * config.nItems)
    for (let k = 1; k < session.length; k++) session[k] = next[session[k - 1]!]!
    return session
  })
}

describe('createQuantisedTrainer', () => {
  beforeAll(async () => {
    await setNodeBackend('wasm')
  })

  it('learns with the codes fixed, the table always exactly its centroids', async () => {
    const tensorsBefore = tf.memory().numTensors
    const train = makeSessions(1500, 1)
    const validation = makeSessions(200, 2)
    const model = createGruModel(config, 3)
    const table = model.variables.get('item_embedding')!
    const start = quantiseRows((await table.data()) as Float32Array, 300, 8, { subspaces: 2 })
    const recall = async () => {
      const scorer = createGruScorer(model)
      const result = await evaluateScorer(scorer, validation, {
        nItems: config.nItems,
        trainCounts: countItems(train, config.nItems),
      })
      scorer.dispose?.()
      return result.metrics['recall@20']!
    }
    const trainer = createQuantisedTrainer(model, start, {
      learningRate: 0.02,
      loss: 'sampled',
      sampler: createPopularitySampler(countItems(train, config.nItems), { seed: 2 }),
      negatives: 32,
    })
    // The trainer starts from the quantised table, not the float one it was given.
    const startTable = (await table.data()) as Float32Array
    expect(startTable).toEqual(reconstructRows(start, 300, 8))
    const before = await recall()
    const cases = expandPrefixes(train, { maxPrefixLen: config.maxLen })
    const random = createRandom(4)
    const losses: number[] = []
    for (let epoch = 0; epoch < 4; epoch++) {
      for (const batch of planBatches(cases, 64, random)) {
        losses.push(
          await trainer.step(
            encodeSessionBatch(
              batch.map((c) => c.prefix),
              config.maxLen,
            ),
            Int32Array.from(batch, (c) => c.target),
          ),
        )
      }
    }
    const after = await recall()
    const learnt = (await table.data()) as Float32Array
    // Same codes, moved centroids: rows that shared a centroid still share one value.
    const first = new Map<number, number>()
    for (let r = 0; r < 300; r++) {
      for (let s = 0; s < 2; s++) {
        const key = s * 256 + start.codes[r * 2 + s]!
        const owner = first.get(key) ?? r
        first.set(key, owner)
        expect(learnt.slice(r * 8 + s * 4, r * 8 + s * 4 + 4)).toEqual(
          learnt.slice(owner * 8 + s * 4, owner * 8 + s * 4 + 4),
        )
      }
    }
    expect(learnt).not.toEqual(startTable)
    expect(losses.at(-1)!).toBeLessThan(losses[0]! * 0.7)
    expect(after).toBeGreaterThan(before + 0.3)
    trainer.dispose()
    model.dispose()
    expect(tf.memory().numTensors).toBe(tensorsBefore)
  })
})
