import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { GruModel } from '../model/gru-model'
import { exportModelWeights } from '../model/model-weights'
import { setNodeBackend } from '../model/node-backend'
import { createRandom } from '../shared/random'
import type { SessionDataset } from './data/types'
import { DEFAULT_TRAIN_SETTINGS, trainOnDataset, type TrainSettings } from './train-model'
import { printTrials, trainTuned, tuneSettings, type TuneResult } from './tune'

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
    // Rung 1: all six, the defaults first; rung 2: the best two; rung 3: the best one, and the
    // defaults (cut at rung 1) for the full schedule beside it.
    expect(result.trials.map((t) => t.rung)).toEqual([0, 0, 0, 0, 0, 0, 1, 1, 2, 2])
    expect(result.trials[0]!.settings.learningRate).toBe(1e-6)
    expect(result.trials.slice(6).map((t) => t.epochs)).toEqual([3, 3, 4, 4])
    expect(result.trials[9]!.settings).toEqual(result.trials[0]!.settings)
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
    expect(result.trials[9]!.validationRecall20).toBeLessThan(winner.validationRecall20)
    expect(lines).toHaveLength(10)
    const printed: string[] = []
    printTrials(result, (l) => printed.push(l))
    expect(printed.join('\n')).toMatch(/10 trials in/)
  }, 240_000)

  it('stops starting trials when the budget is spent', async () => {
    const result = await tuneSettings(dataset, base, { budgetMinutes: 1e-4, samples: 6 })
    // The first trial starts (the budget is checked before each), none after it.
    expect(result.trials).toHaveLength(1)
    expect(result.best.fit.learningRate).toBe(1e-6)
  }, 60_000)

  it('keeps the winning full-schedule trial as the final model: the same as training with its settings again', async () => {
    const result = await tuneSettings(dataset, base, { budgetMinutes: 5, samples: 6, seed: 3, log: () => {} }) // prettier-ignore
    expect(result.final).toBeDefined()
    const tuned = await trainTuned(dataset, result, () => {})
    const again = await trainOnDataset(dataset, result.best, () => {})
    expect(await weightsOf(tuned.model)).toEqual(await weightsOf(again.model))
    expect(tuned.model.config.repeatBonus).toBe(again.model.config.repeatBonus)
    expect(tuned.report.settings).toEqual(again.report.settings)
    expect(tuned.report.validationRecall20ByEpoch).toEqual(again.report.validationRecall20ByEpoch)
    expect(tuned.report.repeatBonus?.trials).toEqual(again.report.repeatBonus?.trials)
    tuned.model.dispose()
    again.model.dispose()
  }, 240_000)

  it('trains the final model when the budget cut the winner short of the full schedule', async () => {
    const result = await tuneSettings(dataset, base, { budgetMinutes: 1e-4, samples: 6 })
    expect(result.final).toBeUndefined()
  }, 60_000)

  describe('with a journal', () => {
    let dir: string
    beforeAll(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'pocketrec-tune-'))
    })
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true })
    })
    const options = (journal: string, lines: string[] = []) => ({ budgetMinutes: 5, samples: 6, seed: 3, journal, log: (l: string) => lines.push(l) }) // prettier-ignore
    const identity = (r: TuneResult) => r.trials.map((t) => [t.rung, t.epochs, t.settings, t.validationRecall20, t.bestEpoch]) // prettier-ignore

    it('resumes a search cut short where it stopped: recorded trials are taken, not trained again', async () => {
      const journal = path.join(dir, 'resume')
      const whole = await tuneSettings(dataset, base, options(journal))
      const file = path.join(journal, 'trials.json')
      const saved = JSON.parse(await readFile(file, 'utf8'))
      expect(saved.entries).toHaveLength(10)
      // A kill during the eighth trial: seven recorded. A marker in the first proves it is read back.
      saved.entries = saved.entries.slice(0, 7)
      saved.entries[0].trial.seconds = 0.125
      await writeFile(file, JSON.stringify(saved))
      const lines: string[] = []
      const resumed = await tuneSettings(dataset, base, options(journal, lines))
      expect(lines[0]).toMatch(/resuming .* \(7 trials recorded\)/)
      expect(lines.slice(1).map((l) => l.includes(', recorded;'))).toEqual([true, true, true, true, true, true, true, false, false, false]) // prettier-ignore
      expect(resumed.trials[0]!.seconds).toBe(0.125)
      expect(identity(resumed)).toEqual(identity(whole))
      expect(resumed.best).toEqual(whole.best)
      // Now complete: a third run trains nothing and loads the final trial's weights from the journal.
      const third = await tuneSettings(dataset, base, options(journal))
      expect(identity(third)).toEqual(identity(whole))
      expect(await weightsOf(third.final!.model)).toEqual(await weightsOf(whole.final!.model))
      for (const r of [whole, resumed, third]) r.final?.model.dispose()
    }, 240_000)

    it("keeps the defaults when their full-schedule trial scores above the early rungs' winner", async () => {
      const journal = path.join(dir, 'defaults-win')
      const whole = await tuneSettings(dataset, base, options(journal))
      expect(whole.best.fit.learningRate).not.toBe(1e-6)
      // The rung-2 winner's full run as if it had ended below the defaults' (training here cannot
      // make it so: every promoted setting learns the cycle perfectly).
      const file = path.join(journal, 'trials.json')
      const saved = JSON.parse(await readFile(file, 'utf8'))
      const last = saved.entries[9]
      expect([last.trial.rung, last.trial.settings.learningRate]).toEqual([2, 1e-6])
      saved.entries[8].trial.validationRecall20 = last.trial.validationRecall20 - 1
      await writeFile(file, JSON.stringify(saved))
      const resumed = await tuneSettings(dataset, base, options(journal))
      expect(resumed.best.fit.learningRate).toBe(1e-6)
      expect(resumed.best).toEqual({ ...base, fit: { ...base.fit, epochs: 4 } })
      // Its recorded weights are the final model: the defaults' trial, not the winner of rung 2.
      const defaults = await trainOnDataset(dataset, resumed.best, () => {})
      expect(await weightsOf(resumed.final!.model)).toEqual(await weightsOf(defaults.model))
      for (const model of [whole.final?.model, resumed.final?.model, defaults.model])
        model?.dispose()
    }, 240_000)

    it('starts afresh from a journal written for another search', async () => {
      const journal = path.join(dir, 'other')
      await tuneSettings(dataset, base, { ...options(journal), seed: 4 })
      const lines: string[] = []
      const result = await tuneSettings(dataset, base, options(journal, lines))
      expect(lines.some((l) => l.includes('recorded'))).toBe(false)
      expect(result.trials).toHaveLength(10)
      const saved = JSON.parse(await readFile(path.join(journal, 'trials.json'), 'utf8'))
      expect(saved.search.seed).toBe(3)
      result.final?.model.dispose()
    }, 240_000)

    it('starts afresh from a journal of an earlier architecture (other weights)', async () => {
      const journal = path.join(dir, 'architecture')
      const quick = { ...options(journal), budgetMinutes: 1e-4 }
      await tuneSettings(dataset, base, quick)
      const file = path.join(journal, 'trials.json')
      const saved = JSON.parse(await readFile(file, 'utf8'))
      expect(saved.search.weights).toContain('attention/position')
      // The same search read back is resumed; one written before the position table is not.
      const lines: string[] = []
      await tuneSettings(dataset, base, { ...quick, log: (l: string) => lines.push(l) })
      expect(lines[0]).toMatch(/resuming/)
      saved.search.weights = saved.search.weights.filter((n: string) => n !== 'attention/position')
      await writeFile(file, JSON.stringify(saved))
      lines.length = 0
      await tuneSettings(dataset, base, { ...quick, log: (l: string) => lines.push(l) })
      expect(lines.some((l) => l.includes('recorded'))).toBe(false)
    }, 60_000)

    it('refuses a journal it cannot read, naming the file', async () => {
      const journal = path.join(dir, 'broken')
      await tuneSettings(dataset, base, { ...options(journal), budgetMinutes: 1e-4 })
      await writeFile(path.join(journal, 'trials.json'), '{"search": ')
      await expect(tuneSettings(dataset, base, options(journal))).rejects.toThrow(/broken\/trials\.json is not a readable journal/) // prettier-ignore
    }, 60_000)
  })
})

async function weightsOf(model: GruModel) {
  const file = await exportModelWeights(model)
  return file.tensors.map((t) => [t.name, Array.from(t.values)])
}
