import { beforeAll, describe, expect, it } from 'vitest'
import { setNodeBackend } from '../model/node-backend'
import { createRandom } from '../shared/random'
import type { SessionDataset } from './data/types'
import { DEFAULT_TRAIN_SETTINGS, type TrainSettings } from './train-model'
import { printTrials, tuneSettings } from './tune'

const N_ITEMS = 30

// Sessions walking a fixed cycle: the next item is always next[last], so a good setting learns it.
function sessions(count: number, seed: number): Int32Array[] {
  const random = createRandom(seed)
  const next = Array.from({ length: N_ITEMS }, (_, i) => (i * 7 + 3) % N_ITEMS)
  return Array.from({ length: count }, () => {
    const session = new Int32Array(2 + Math.floor(random() * 4))
    session[0] = Math.floor(random() * N_ITEMS)
    for (let k = 1; k < session.length; k++) session[k] = next[session[k - 1]!]!
    return session
  })
}

const dataset: SessionDataset = {
  name: 'cycle',
  nItems: N_ITEMS,
  itemIds: Int32Array.from({ length: N_ITEMS }, (_, i) => i + 1),
  train: sessions(400, 1),
  test: sessions(50, 2),
}

// Defaults that learn badly here (a rate far too small), so that the search has to find better.
const base: TrainSettings = {
  ...DEFAULT_TRAIN_SETTINGS,
  model: { ...DEFAULT_TRAIN_SETTINGS.model, maxLen: 6 },
  fit: {
    ...DEFAULT_TRAIN_SETTINGS.fit,
    batchSize: 32,
    negatives: 16,
    epochs: 4,
    learningRate: 1e-6,
  },
  validationFraction: 0.2,
  validationCases: 200,
}

describe('tuneSettings (issue 16)', () => {
  beforeAll(async () => {
    await setNodeBackend('wasm')
  })

  it('halves its way from the defaults to better settings on the validation split, recording every trial', async () => {
    const lines: string[] = []
    const result = await tuneSettings(dataset, base, { budgetMinutes: 5, samples: 6, seed: 3, log: (l) => lines.push(l) }) // prettier-ignore
    // Rung 1: all six, the defaults first; rung 2: the best two; rung 3: the best one.
    expect(result.trials.map((t) => t.rung)).toEqual([0, 0, 0, 0, 0, 0, 1, 1, 2])
    expect(result.trials[0]!.settings.learningRate).toBe(1e-6)
    expect(result.trials.slice(6).map((t) => t.epochs)).toEqual([3, 3, 4])
    const firstRung = result.trials.slice(0, 6).map((t) => t.validationRecall20)
    const promoted = result.trials.slice(6, 8).map((t) => t.settings)
    const bestTwo = [...result.trials.slice(0, 6)].sort((a, b) => b.validationRecall20 - a.validationRecall20).slice(0, 2) // prettier-ignore
    expect(promoted).toEqual(bestTwo.map((t) => t.settings))
    // The defaults' rate learns nothing; the winner does, and the final settings are its.
    expect(firstRung[0]).toBeLessThan(Math.max(...firstRung))
    const winner = result.trials[8]!
    expect(winner.validationRecall20).toBeGreaterThan(firstRung[0]! + 20)
    expect(result.best.fit.learningRate).toBe(winner.settings.learningRate)
    expect(result.best.model.embedDim).toBe(winner.settings.dim)
    expect(result.best.model.hiddenDim).toBe(winner.settings.dim)
    expect(result.best.fit.epochs).toBe(4)
    expect(lines).toHaveLength(9)
    const printed: string[] = []
    printTrials(result, (l) => printed.push(l))
    expect(printed.join('\n')).toMatch(/9 trials in/)
  }, 240_000)

  it('stops starting trials when the budget is spent', async () => {
    const result = await tuneSettings(dataset, base, { budgetMinutes: 1e-4, samples: 6 })
    // The first trial starts (the budget is checked before each), none after it.
    expect(result.trials).toHaveLength(1)
    expect(result.best.fit.learningRate).toBe(1e-6)
  }, 60_000)
})
