// Per-shop settings (issue 16): `npm run train -- --tune <minutes>` searches the learning rate,
// the logit scale, dropout and the dimension on the shop's own validation split (the most recent
// sessions of its training log, never its test split) within a time budget, by successive
// halving: a sample of settings, the defaults first, each trained for one epoch; the best third
// trained again for three; the best third of those for the full run, the epochs chosen by
// validation as usual, and the defaults for the full run beside them wherever they were cut: the
// early rungs favour settings that learn fast, and on DIGINETICA the one that led after three
// epochs ended below the defaults after eight (BENCHMARKS.md, "Per-shop settings"), so a search
// never ships settings its own validation split scores below the defaults'. Every trial is
// recorded; the final model is then trained with the best,
// unless the winner's own trial already ran the full schedule: that trial is the final model
// (its scoring bonuses chosen then).
// Last, the shop's on-device fine-tuning rate is chosen on the same split (local-rate.ts).
//
// A search on a large log outlasts a working session (DIGINETICA: one epoch is 6–8 minutes, the
// search two to three hours). With a journal folder, each finished trial is written down (a
// full-schedule trial's weights too) and the same command resumes where the search stopped:
// training is deterministic, so a recorded trial is taken as it stands instead of trained again.
import { existsSync } from 'node:fs'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { describeWeights, type GruModel } from '../model/gru-model'
import { createRandom } from '../shared/random'
import type { SessionDataset } from './data/types'
import { chooseLocalRate } from './local-rate'
import { loadModel, saveModel } from './model-file'
import { formatDuration } from './progress'
import { chooseBonuses, trainOnDataset, type TrainReport, type TrainSettings } from './train-model'

/** Dimensions searched: at most today's, so the shipped table stays within 28 bytes a row (shipped-model.ts). */
export const TUNE_DIMS = [48, 64, 100] as const

export interface TuneTrial {
  rung: number
  /** Epochs this trial was allowed. */
  epochs: number
  settings: { learningRate: number; scale: number; dropout: number; dim: number }
  /** The best validation Recall@20 (%) over its epochs, and the epoch that reached it. */
  validationRecall20: number
  bestEpoch: number
  seconds: number
}

export interface TuneResult {
  best: TrainSettings
  trials: TuneTrial[]
  /** Seconds the trials took (recorded ones included; the final training not). */
  seconds: number
  /**
   * The winner's trial when it ran the full schedule (not cut by the budget): exactly what the
   * final training would give, before its scoring bonuses are chosen (trainTuned does that).
   */
  final?: { model: GruModel; report: TrainReport }
}

export interface TuneOptions {
  budgetMinutes: number
  /** Settings sampled at the first rung (the defaults among them). */
  samples?: number
  seed?: number
  log?: (line: string) => void
  /** Folder recording the search, so that the same command resumes it (see the file's head). */
  journal?: string
}

/** A finished trial as the journal keeps it: a full-schedule trial with its report and weights. */
interface JournalEntry {
  trial: TuneTrial
  report?: TrainReport
  model?: string
}

interface Journal {
  /** What the search depends on; a journal written for another search is started afresh. */
  search: unknown
  entries: JournalEntry[]
}

type Knobs = TuneTrial['settings']

function knobsOf(settings: TrainSettings): Knobs {
  return {
    learningRate: settings.fit.learningRate,
    scale: settings.model.scale,
    dropout: settings.model.dropout,
    dim: settings.model.embedDim,
  }
}

/** `base` with `knobs`, trained for `epochs` (stopping before an epoch past `maxSeconds`). */
function withKnobs(
  base: TrainSettings,
  knobs: Knobs,
  epochs: number,
  maxSeconds?: number,
): TrainSettings {
  return {
    ...base,
    model: { ...base.model, scale: knobs.scale, dropout: knobs.dropout, embedDim: knobs.dim, hiddenDim: knobs.dim }, // prettier-ignore
    fit: {
      ...base.fit,
      learningRate: knobs.learningRate,
      epochs,
      ...(maxSeconds === undefined ? {} : { maxSeconds }),
    },
  }
}

/** A draw from the search space: rates log-uniform, the rest uniform. */
function sampleKnobs(random: () => number): Knobs {
  return {
    learningRate: 10 ** (Math.log10(5e-4) + random() * (Math.log10(5e-3) - Math.log10(5e-4))),
    scale: 8 + random() * 12,
    dropout: random() * 0.4,
    dim: TUNE_DIMS[Math.floor(random() * TUNE_DIMS.length)]!,
  }
}

/** Successive halving over `samples` settings within `budgetMinutes`; see the file's head. */
export async function tuneSettings(
  dataset: SessionDataset,
  base: TrainSettings,
  options: TuneOptions,
): Promise<TuneResult> {
  const log = options.log ?? ((line: string) => console.error(line))
  const budgetSeconds = options.budgetMinutes * 60
  const seed = options.seed ?? 1
  const samples = options.samples ?? 9
  const journal = await openJournal(options.journal, {
    dataset: dataset.name,
    items: dataset.nItems,
    sessions: dataset.train.length,
    base,
    // The architecture: trials of an earlier model (other weights) are not this search's.
    weights: describeWeights({ ...base.model, nItems: dataset.nItems }).map(([name]) => name),
    samples,
    seed,
    budgetMinutes: options.budgetMinutes,
  })
  if (journal.entries.length > 0)
    log(`tune: resuming from ${options.journal} (${journal.entries.length} trials recorded)`)
  const random = createRandom(seed)
  const defaults = knobsOf(base)
  let survivors: Knobs[] = [defaults]
  while (survivors.length < samples) survivors.push(sampleKnobs(random))
  const rungs = [1, 3, base.fit.epochs]
  const entries: JournalEntry[] = []
  // Full-schedule trials run by this process, kept until the winner is known.
  const inMemory = new Map<number, GruModel>()
  let spent = 0
  for (const [rung, epochs] of rungs.entries()) {
    const scored: TuneTrial[] = []
    for (const knobs of survivors) {
      const left = budgetSeconds - spent
      if (left <= 0) break
      const recorded = journal.entries[entries.length]
      const same = recorded !== undefined && JSON.stringify([recorded.trial.rung, recorded.trial.epochs, recorded.trial.settings]) === JSON.stringify([rung, epochs, knobs]) // prettier-ignore
      let entry: JournalEntry
      if (same) entry = recorded
      else {
        const run = await runTrial(dataset, base, knobs, rung, epochs, left)
        entry = run.entry
        if (run.model) {
          inMemory.set(entries.length, run.model)
          if (options.journal) {
            entry.model = `trial-${entries.length + 1}`
            await saveModel(run.model, path.join(options.journal, entry.model), entry.report)
          }
        }
        journal.entries.splice(entries.length, Infinity, entry)
        await writeJournal(options.journal, journal)
      }
      entries.push(entry)
      const trial = entry.trial
      spent += trial.seconds
      scored.push(trial)
      log(
        `tune rung ${rung + 1}/${rungs.length} (${epochs} epochs): lr ${knobs.learningRate.toExponential(2)}, ` +
          `scale ${knobs.scale.toFixed(1)}, dropout ${knobs.dropout.toFixed(2)}, dim ${knobs.dim} → ` +
          `validation Recall@20 ${trial.validationRecall20.toFixed(2)} (${formatDuration(trial.seconds)}${same ? ', recorded' : ''}; ` +
          `${formatDuration(Math.max(0, budgetSeconds - spent))} of the budget left)`,
      )
    }
    if (scored.length === 0) break
    scored.sort((a, b) => b.validationRecall20 - a.validationRecall20)
    survivors = scored.slice(0, Math.max(1, Math.ceil(scored.length / 3))).map((t) => t.settings)
    const cutDefaults = !survivors.some((k) => JSON.stringify(k) === JSON.stringify(defaults))
    if (rung === rungs.length - 2 && cutDefaults) survivors.push(defaults)
    if (rung < rungs.length - 1 && scored.length < 2) break
  }
  // The best trial of the highest rung any trial reached: its settings, the full epoch count.
  const trials = entries.map((e) => e.trial)
  const top = Math.max(...trials.map((t) => t.rung))
  const winner = trials
    .map((trial, index) => ({ trial, index }))
    .filter(({ trial }) => trial.rung === top)
    .reduce((a, b) => (b.trial.validationRecall20 > a.trial.validationRecall20 ? b : a))
  const best = withKnobs(base, winner.trial.settings, base.fit.epochs, base.fit.maxSeconds)
  const final = await finalOf(entries[winner.index]!, inMemory.get(winner.index), options.journal, base) // prettier-ignore
  for (const [index, model] of inMemory) if (index !== winner.index) model.dispose()
  return { best, trials, seconds: spent, ...(final ? { final } : {}) }
}

/**
 * The final model for the search's winner: its own trial when that ran the full schedule (only
 * the scoring bonuses left to choose), else a training with the winning settings. Then the shop's
 * on-device fine-tuning rate is chosen on the same validation split (local-rate.ts), for the
 * manifest.
 */
export async function trainTuned(
  dataset: SessionDataset,
  tuned: TuneResult,
  log: (line: string) => void = (line) => console.error(line),
): Promise<{ model: GruModel; report: TrainReport }> {
  let trained: { model: GruModel; report: TrainReport }
  if (tuned.final) {
    log('the winning trial ran the full schedule: it is the final model')
    const { model, report } = tuned.final
    const { model: chosen, repeatBonus, coVisitBonus } = await chooseBonuses(model, dataset, tuned.best, log) // prettier-ignore
    trained = { model: chosen, report: { ...report, settings: tuned.best, repeatBonus, coVisitBonus } } // prettier-ignore
  } else trained = await trainOnDataset(dataset, tuned.best, log)
  const localTraining = await chooseLocalRate(trained.model, dataset, tuned.best, { log })
  return localTraining ? { ...trained, report: { ...trained.report, localTraining } } : trained
}

/** One trial: the settings trained for `epochs`, stopping before an epoch past `maxSeconds`. */
async function runTrial(
  dataset: SessionDataset,
  base: TrainSettings,
  knobs: Knobs,
  rung: number,
  epochs: number,
  maxSeconds: number,
): Promise<{ entry: JournalEntry; model?: GruModel }> {
  const started = performance.now()
  // A trial is judged on its epochs: its scoring bonuses (chosen for the final model) are not tried.
  const settings = withKnobs(base, knobs, epochs, maxSeconds)
  const { model, report } = await trainOnDataset(
    dataset,
    { ...settings, model: { ...settings.model, repeatBonus: 0, coVisitBonus: 0 } },
    () => {},
  )
  const best = report.fit.epochs.reduce(
    (a, e) => ((e.validation ?? -1) > (a.validation ?? -1) ? e : a),
    report.fit.epochs[0]!,
  )
  const trial: TuneTrial = {
    rung,
    epochs,
    settings: knobs,
    validationRecall20: 100 * (best.validation ?? 0),
    bestEpoch: best.epoch,
    seconds: (performance.now() - started) / 1000,
  }
  // Only a full-schedule trial that the budget did not cut can stand in for the final training.
  if (epochs === base.fit.epochs && report.fit.stoppedBy !== 'time')
    return { entry: { trial, report }, model }
  model.dispose()
  return { entry: { trial } }
}

async function finalOf(
  entry: JournalEntry,
  model: GruModel | undefined,
  journal: string | undefined,
  base: TrainSettings,
): Promise<TuneResult['final']> {
  if (!entry.report || entry.trial.epochs !== base.fit.epochs) return undefined
  if (model) return { model, report: entry.report }
  if (journal && entry.model) {
    const file = path.join(journal, entry.model, 'model.prw')
    if (existsSync(file)) return { model: await loadModel(file), report: entry.report }
  }
  return undefined
}

async function openJournal(folder: string | undefined, search: unknown): Promise<Journal> {
  const fresh: Journal = { search, entries: [] }
  if (!folder) return fresh
  const file = path.join(folder, 'trials.json')
  if (!existsSync(file)) return fresh
  let saved: Journal
  try {
    saved = JSON.parse(await readFile(file, 'utf8')) as Journal
  } catch (error) {
    throw new Error(
      `tune: ${file} is not a readable journal (${String(error)}); remove it to start afresh`,
      { cause: error },
    )
  }
  if (JSON.stringify(saved.search) !== JSON.stringify(search) || !Array.isArray(saved.entries)) {
    console.error(`tune: ${file} was written for another search: starting afresh`)
    return fresh
  }
  return saved
}

/** Rewrites the journal whole (a temporary file renamed over it: a kill leaves the old or the new). */
async function writeJournal(folder: string | undefined, journal: Journal): Promise<void> {
  if (!folder) return
  await mkdir(folder, { recursive: true })
  const file = path.join(folder, 'trials.json')
  await writeFile(`${file}.tmp`, JSON.stringify(journal, null, 2))
  await rename(`${file}.tmp`, file)
}

/** The trials as a table, best first within each rung. */
export function printTrials(result: TuneResult, print = (line: string) => console.log(line)): void {
  print(
    `\n${result.trials.length} trials in ${formatDuration(result.seconds)} (validation split)\n`,
  )
  print('| rung | epochs | learning rate | scale | dropout | dim | validation R@20 | best epoch |')
  print('| --: | --: | --: | --: | --: | --: | --: | --: |')
  const order = [...result.trials].sort((a, b) => a.rung - b.rung || b.validationRecall20 - a.validationRecall20) // prettier-ignore
  for (const t of order) {
    const k = t.settings
    print(
      `| ${t.rung + 1} | ${t.epochs} | ${k.learningRate.toExponential(2)} | ${k.scale.toFixed(1)} | ${k.dropout.toFixed(2)} | ${k.dim} | ${t.validationRecall20.toFixed(2)} | ${t.bestEpoch} |`,
    )
  }
  const b = result.best
  print(
    `\nbest: learning rate ${b.fit.learningRate.toExponential(2)}, scale ${b.model.scale.toFixed(1)}, ` +
      `dropout ${b.model.dropout.toFixed(2)}, dim ${b.model.embedDim}; the final model trains with them\n`,
  )
}
