import * as tf from '@tensorflow/tfjs-core'
import { beforeAll, describe, expect, it } from 'vitest'
import { setNodeBackend } from './node-backend'
import { createGruModel, DEFAULT_GRU_CONFIG, type GruModelConfig } from './gru-model'
import { createSessionEncoder } from './gru-inference'
import { createRandom } from '../shared/random'
import { encodeSessionBatch } from './session-batch'

const base: GruModelConfig = {
  ...DEFAULT_GRU_CONFIG,
  nItems: 40,
  embedDim: 12,
  hiddenDim: 10,
  maxLen: 6,
}

describe('the session encoder in JS', () => {
  beforeAll(async () => {
    await setNodeBackend('cpu')
  })

  for (const normalize of [true, false]) {
    it(`gives the vectors GruModel.encode gives (normalize: ${normalize})`, async () => {
      const config = { ...base, normalize }
      const model = createGruModel(config, 3)
      // Non-zero biases: initialisation leaves them at zero, which would hide a missing bias.
      const random = createRandom(8)
      for (const name of ['gru/b_input', 'gru/b_hidden']) {
        const bias = model.variables.get(name)!
        bias.assign(tf.tensor1d(Float32Array.from({ length: bias.size }, () => random() - 0.5)))
      }
      const items = tf.tidy(() => model.itemVectors())
      const encoder = await createSessionEncoder(model, (await items.data()) as Float32Array)
      // Lengths 1 to 9: longer than maxLen keeps only the last six items, as the model does.
      for (let length = 1; length <= 9; length++) {
        const session = Int32Array.from({ length }, () => Math.floor(random() * config.nItems))
        const expected = tf.tidy(() => model.encode(encodeSessionBatch([session], config.maxLen)))
        const reference = (await expected.data()) as Float32Array
        expected.dispose()
        const ours = encoder.encode(session)
        expect(ours).toHaveLength(config.embedDim)
        ours.forEach((value, k) =>
          expect(value, `length ${length}, [${k}]`).toBeCloseTo(reference[k]!, 5),
        )
      }
      items.dispose()
      model.dispose()
    })
  }
})
