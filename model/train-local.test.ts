import * as tf from '@tensorflow/tfjs-core'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { setNodeBackend } from './node-backend'
import { createGruModel, DEFAULT_GRU_CONFIG, type GruModel } from './gru-model'
import { createRandom } from '../shared/random'
import { encodeSessionBatch } from './session-batch'
import { createTrainer } from './train-step'
import { createLocalTrainer } from './train-local'

const config = {
  ...DEFAULT_GRU_CONFIG,
  nItems: 40,
  embedDim: 16,
  hiddenDim: 16,
  maxLen: 5,
  dropout: 0,
}

// Everyone else's pattern: the next item is the last one plus 1.
function globalSessions(count: number, seed: number): Int32Array[] {
  const random = createRandom(seed)
  return Array.from({ length: count }, () => {
    const start = Math.floor(random() * config.nItems)
    return Int32Array.from({ length: 6 }, (_, k) => (start + k) % config.nItems)
  })
}

// One shopper's habit, which no one else has: they go round the same loop of six items.
const LOOP = [3, 17, 8, 25, 12, 29]

function shopperSessions(count: number, seed: number): Int32Array[] {
  const random = createRandom(seed)
  return Array.from({ length: count }, () => {
    const start = Math.floor(random() * LOOP.length)
    return Int32Array.from({ length: 7 }, (_, k) => LOOP[(start + k) % LOOP.length]!)
  })
}

/** Share of next-item cases of `sessions` whose target is among the model's top `k`. */
async function recallAt(model: GruModel, sessions: Int32Array[], k: number): Promise<number> {
  const prefixes: Int32Array[] = []
  const targets: number[] = []
  for (const s of sessions) {
    for (let i = 1; i < s.length; i++) {
      prefixes.push(s.subarray(Math.max(0, i - config.maxLen), i))
      targets.push(s[i]!)
    }
  }
  const top = tf.tidy(
    () =>
      tf.topk(
        model.logits(
          model.encode(encodeSessionBatch(prefixes, config.maxLen)),
          model.itemVectors(),
        ),
        k,
      ).indices,
  )
  const indices = await top.data()
  top.dispose()
  let hits = 0
  targets.forEach((t, row) => {
    if (indices.subarray(row * k, row * k + k).includes(t)) hits++
  })
  return hits / targets.length
}

async function readWeights(model: GruModel): Promise<Float32Array[]> {
  return Promise.all(
    [...model.variables.values()].map(async (v) => (await v.data()) as Float32Array),
  )
}

/** A model that has learned the global pattern well, so the shopper's loop is not in it. */
async function trainGlobalModel(): Promise<GruModel> {
  const model = createGruModel(config, 3)
  const trainer = createTrainer(model, { learningRate: 0.01, loss: 'full', seed: 3 })
  const sessions = globalSessions(256, 5)
  for (let epoch = 0; epoch < 40; epoch++) {
    for (let first = 0; first < sessions.length; first += 64) {
      const batch = sessions.slice(first, first + 64)
      const prefixes = batch.map((s) => s.subarray(0, 1 + ((first / 64 + epoch) % 5)))
      const targets = Int32Array.from(batch, (s, i) => s[prefixes[i]!.length]!)
      await trainer.step(encodeSessionBatch(prefixes, config.maxLen), targets)
    }
  }
  trainer.dispose()
  return model
}

describe('local fine-tuning (wasm)', () => {
  let before = 0
  let model: GruModel
  beforeAll(async () => {
    await setNodeBackend('wasm')
  })
  beforeEach(() => {
    before = tf.memory().numTensors
    model = createGruModel(config, 11)
  })
  afterEach(() => {
    model.dispose()
    expect(tf.memory().numTensors).toBe(before)
  })

  // Pinned settings, so that retuning the defaults for a real catalogue leaves these tests alone;
  // few negatives, or a 40-item catalogue would hold each item several times over.
  for (const [trainable, learningRate] of [
    ['all', 0.003],
    ['items', 0.01],
  ] as const) {
    it(`raises recall on the shopper's later sessions for a habit the global model lacks (${trainable})`, async () => {
      model.dispose()
      model = await trainGlobalModel()
      expect(await recallAt(model, globalSessions(64, 99), 1)).toBeGreaterThan(0.9)
      const earlier = shopperSessions(4, 21)
      const later = shopperSessions(6, 22)
      const recallBefore = await recallAt(model, later, 5)

      const trainer = createLocalTrainer(model, {
        learningRate,
        trainable,
        negatives: 16,
        epochs: 10,
        batchSize: 16,
      })
      const result = await trainer.train(earlier)

      expect(result).toMatchObject({ status: 'done', cases: 24, changed: true })
      expect(recallBefore).toBeLessThan(0.3)
      expect(await recallAt(model, later, 5)).toBeGreaterThan(0.8)
      // The global pattern is not forgotten wholesale.
      expect(await recallAt(model, globalSessions(64, 99), 5)).toBeGreaterThan(0.5)
    })
  }

  it('weights each next item by the shop’s event weights: the bought one gains more, and swapping flips it', async () => {
    // After item 3 the shopper went on to 17 as often as to 8; one of them they bought.
    const sessions = [...Array(4).fill(Int32Array.of(3, 17)), ...Array(4).fill(Int32Array.of(3, 8))] as Int32Array[] // prettier-ignore
    const after3 = async (m: GruModel) => {
      const scores = tf.tidy(() =>
        m.logits(m.encode(encodeSessionBatch([Int32Array.of(3)], config.maxLen)), m.itemVectors()),
      )
      const values = await scores.data()
      scores.dispose()
      return { viewed: values[17]!, bought: values[8]! }
    }
    // Gains over the global model's own scores, which may already favour either item by chance.
    const global = await trainGlobalModel()
    const start = await after3(global)
    global.dispose()
    const gain = async (boughtWeight: number) => {
      const m = await trainGlobalModel()
      const weights = sessions.map((s) => Float32Array.of(1, s[1] === 8 ? boughtWeight : 1))
      const settings = { learningRate: 0.01, negatives: 16, epochs: 8, batchSize: 8, seed: 4 }
      await createLocalTrainer(m, settings).train(sessions, { weights })
      const result = await after3(m)
      m.dispose()
      return { viewed: result.viewed - start.viewed, bought: result.bought - start.bought }
    }
    const bought = await gain(8)
    expect(bought.bought).toBeGreaterThan(bought.viewed)
    const flipped = await gain(1 / 8)
    expect(flipped.viewed).toBeGreaterThan(flipped.bought)
  })

  it('yields to the event loop between time slices', async () => {
    let stepsSoFar = 0
    let stepsWhenTimerRan = -1
    const timer = setTimeout(() => {
      stepsWhenTimerRan = stepsSoFar
    }, 0)
    const result = await createLocalTrainer(model, { sliceMs: 2, epochs: 5, batchSize: 4 }).train(
      shopperSessions(4, 1),
      { onStep: (p) => (stepsSoFar = p.step) },
    )
    clearTimeout(timer)
    expect(result.status).toBe('done')
    expect(result.slices).toBeGreaterThanOrEqual(2)
    // The timer fired after the first slice and before the last step.
    expect(stepsWhenTimerRan).toBeGreaterThanOrEqual(1)
    expect(stepsWhenTimerRan).toBeLessThan(result.steps)
  })

  it('reports every step with its loss, in order', async () => {
    const seen: number[] = []
    const losses: number[] = []
    const result = await createLocalTrainer(model, { epochs: 3, batchSize: 8 }).train(
      shopperSessions(4, 1),
      {
        onStep: (p) => {
          seen.push(p.step)
          losses.push(p.loss)
          expect(p.steps).toBe(9)
        },
      },
    )
    expect(result).toMatchObject({ status: 'done', steps: 9, cases: 24 })
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9])
    expect(losses.every(Number.isFinite)).toBe(true)
    expect(result.lastLoss).toBe(losses[8])
  })

  it('stops when the signal aborts and keeps the steps already taken', async () => {
    const controller = new AbortController()
    const result = await createLocalTrainer(model, { epochs: 10, batchSize: 4 }).train(
      shopperSessions(4, 1),
      { signal: controller.signal, onStep: (p) => p.step === 3 && controller.abort() },
    )
    expect(result).toMatchObject({ status: 'aborted', steps: 3, changed: true })
  })

  it('does nothing when the signal is already aborted', async () => {
    const weights = await readWeights(model)
    const result = await createLocalTrainer(model).train(shopperSessions(2, 1), {
      signal: AbortSignal.abort(),
    })
    expect(result).toMatchObject({ status: 'aborted', steps: 0, changed: false })
    expect(await readWeights(model)).toEqual(weights)
  })

  it('stops after maxSteps', async () => {
    const result = await createLocalTrainer(model, { epochs: 10, batchSize: 4 }).train(
      shopperSessions(4, 1),
      { maxSteps: 5 },
    )
    expect(result).toMatchObject({ status: 'max-steps', steps: 5 })
  })

  it("moves only the item embedding with trainable: 'items'", async () => {
    const names = [...model.variables.keys()]
    const weights = await readWeights(model)
    await createLocalTrainer(model, { trainable: 'items', epochs: 2 }).train(shopperSessions(4, 1))
    const after = await readWeights(model)
    names.forEach((name, i) => {
      if (name === 'item_embedding') expect(after[i]).not.toEqual(weights[i])
      else expect(after[i]).toEqual(weights[i])
    })
  })

  it('restores the weights from before the run when training diverges', async () => {
    const weights = await readWeights(model)
    const losses: number[] = []
    const result = await createLocalTrainer(model, { learningRate: 1e30, epochs: 5 }).train(
      shopperSessions(4, 1),
      { onStep: (p) => losses.push(p.loss) },
    )
    expect(result).toMatchObject({ status: 'diverged', steps: 0, changed: false })
    const after = await readWeights(model)
    after.forEach((values, i) => expect(values).toEqual(weights[i]))
    expect(after.every((values) => values.every(Number.isFinite))).toBe(true)
  })

  it('restores the weights when a step leaves them absurdly large with a finite loss', async () => {
    const weights = await readWeights(model)
    const result = await createLocalTrainer(model, { learningRate: 1e30 }).train(
      shopperSessions(4, 1),
      { maxSteps: 1 },
    )
    expect(result).toMatchObject({ status: 'diverged', steps: 0, changed: false })
    expect(Number.isFinite(result.lastLoss)).toBe(true)
    const after = await readWeights(model)
    after.forEach((values, i) => expect(values).toEqual(weights[i]))
  })

  it('answers busy to a second run while one is in progress', async () => {
    const trainer = createLocalTrainer(model, { sliceMs: 0, epochs: 3 })
    const first = trainer.train(shopperSessions(4, 1))
    const second = await trainer.train(shopperSessions(4, 2))
    expect(second.status).toBe('busy')
    expect((await first).status).toBe('done')
  })

  it('has nothing to do for sessions of one item', async () => {
    const result = await createLocalTrainer(model).train([Int32Array.of(3), new Int32Array(0)])
    expect(result).toMatchObject({ status: 'done', steps: 0, cases: 0, changed: false })
  })

  it('rejects item indices outside the catalogue and bad options', async () => {
    await expect(createLocalTrainer(model).train([Int32Array.of(1, 40)])).rejects.toThrow(
      'expected item indices in [0, 40), got 40 in session 0',
    )
    expect(() => createLocalTrainer(model, { batchSize: 0 })).toThrow(
      'expected batchSize to be a positive integer, got 0',
    )
    // An optional setting passed through as undefined (a manifest without one) is the default.
    expect(() => createLocalTrainer(model, { learningRate: undefined })).not.toThrow()
  })
})
