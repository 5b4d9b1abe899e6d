import { beforeAll, describe, expect, it } from 'vitest'
import { setNodeBackend } from '../model/node-backend'
import { createRandom, shuffleInPlace } from '../shared/random'
import type { SessionDataset } from './data/types'
import { chooseLocalRate } from './local-rate'
import { DEFAULT_TRAIN_SETTINGS, trainOnDataset, type TrainSettings } from './train-model'

const N_ITEMS = 60

// Training sessions walk one cycle of the catalogue, which the global model learns. The last
// tenth (the validation split) are shoppers of their own: a private tour of six items, taken
// twice in the same order. Only fine-tuning on the first tour can tell the second one's order.
function dataset(): SessionDataset {
  const random = createRandom(5)
  const next = Array.from({ length: N_ITEMS }, (_, i) => (i * 7 + 3) % N_ITEMS)
  const walks = Array.from({ length: 900 }, () => {
    const session = new Int32Array(3 + Math.floor(random() * 4))
    session[0] = Math.floor(random() * N_ITEMS)
    for (let k = 1; k < session.length; k++) session[k] = next[session[k - 1]!]!
    return session
  })
  const tours = Array.from({ length: 100 }, () => {
    const items = Array.from({ length: N_ITEMS }, (_, i) => i)
    shuffleInPlace(items, random)
    const tour = items.slice(0, 6)
    return Int32Array.from([...tour, ...tour])
  })
  return {
    name: 'tours',
    nItems: N_ITEMS,
    itemIds: Int32Array.from({ length: N_ITEMS }, (_, i) => i + 1),
    train: [...walks, ...tours],
    test: [],
  }
}

const settings: TrainSettings = {
  ...DEFAULT_TRAIN_SETTINGS,
  model: { ...DEFAULT_TRAIN_SETTINGS.model, embedDim: 16, hiddenDim: 16, maxLen: 12, repeatBonus: 0 }, // prettier-ignore
  fit: { ...DEFAULT_TRAIN_SETTINGS.fit, epochs: 3, batchSize: 32, negatives: 16, learningRate: 0.01 }, // prettier-ignore
  validationFraction: 0.1,
  validationCases: 200,
}

describe('chooseLocalRate (issue 16)', () => {
  beforeAll(async () => {
    await setNodeBackend('wasm')
  })

  it("chooses the fine-tuning rate that ranks the validation shoppers' later items best", async () => {
    const data = dataset()
    const { model } = await trainOnDataset(data, settings, () => {})
    const lines: string[] = []
    const choice = await chooseLocalRate(model, data, settings, {
      rates: [1e-7, 1e-3, 3e-2],
      sessions: 40,
      log: (l) => lines.push(l),
    })
    expect(choice).toBeDefined()
    expect(choice!.eligible).toBe(100)
    expect(choice!.sessions).toBe(40)
    const [tiny, , large] = choice!.trials
    // A rate too small to move a weight scores as the trained model alone; a real one learns the tour.
    expect(tiny!.recall20).toBeCloseTo(choice!.global.recall20, 6)
    expect(large!.mrr20).toBeGreaterThan(choice!.global.mrr20 + 5)
    const score = (t: { recall20: number; mrr20: number }) => t.recall20 + t.mrr20
    const best = choice!.trials.reduce((a, b) => (score(b) > score(a) ? b : a))
    expect(choice!.chosen).toBe(best.learningRate)
    expect(choice!.chosen).not.toBe(1e-7)
    expect(lines.at(-1)).toMatch(
      /^local fine-tuning rate .* \(40 validation sessions of ≥ 10 items/,
    )
    model.dispose()
  }, 120_000)

  it('chooses none when no validation session is long enough', async () => {
    const data = dataset()
    const { model } = await trainOnDataset(data, { ...settings, fit: { ...settings.fit, epochs: 1 } }, () => {}) // prettier-ignore
    const lines: string[] = []
    const choice = await chooseLocalRate(model, data, settings, { minLength: 13, log: (l) => lines.push(l) }) // prettier-ignore
    expect(choice).toBeUndefined()
    expect(lines).toEqual(['local fine-tuning rate: no validation session of 13 items or more; none chosen']) // prettier-ignore
    model.dispose()
  }, 60_000)
})
