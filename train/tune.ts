// Per-shop settings (issue 16): `npm run train -- --tune <minutes>` searches the learning rate,
// the logit scale, dropout and the dimension on the shop's own validation split (the most recent
// sessions of its training log, never its test split) within a time budget, by successive
// halving: a sample of settings, the defaults first, each trained for one epoch; the best third
// trained again for three; the best third of those for the full run, the epochs chosen by
// validation as usual. Every trial is recorded; the final model is then trained with the best.
import { createRandom } from '../shared/random'
import type { SessionDataset } from './data/types'
import { formatDuration } from './progress'
import { trainOnDataset, type TrainSettings } from './train-model'

/** Dimensions searched: at most today's, so the shipped table stays within 25 bytes a row (pq8 slices of 4). */
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
  /** Seconds the search took (the final training not included). */
  seconds: number
}

export interface TuneOptions {
  budgetMinutes: number
  /** Settings sampled at the first rung (the defaults among them). */
  samples?: number
  seed?: number
  log?: (line: string) => void
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
  const started = performance.now()
  const deadline = started + options.budgetMinutes * 60_000
  const random = createRandom(options.seed ?? 1)
  const samples = options.samples ?? 9
  let survivors: Knobs[] = [knobsOf(base)]
  while (survivors.length < samples) survivors.push(sampleKnobs(random))
  const rungs = [1, 3, base.fit.epochs]
  const trials: TuneTrial[] = []
  for (const [rung, epochs] of rungs.entries()) {
    const scored: TuneTrial[] = []
    for (const knobs of survivors) {
      const left = (deadline - performance.now()) / 1000
      if (left <= 0) break
      const trialStart = performance.now()
      // A trial is judged on its epochs: its repeat bonus (chosen for the final model) is not tried.
      const settings = withKnobs(base, knobs, epochs, left)
      const { model, report } = await trainOnDataset(
        dataset,
        { ...settings, model: { ...settings.model, repeatBonus: 0 } },
        () => {},
      )
      model.dispose()
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
        seconds: (performance.now() - trialStart) / 1000,
      }
      trials.push(trial)
      scored.push(trial)
      log(
        `tune rung ${rung + 1}/${rungs.length} (${epochs} epochs): lr ${knobs.learningRate.toExponential(2)}, ` +
          `scale ${knobs.scale.toFixed(1)}, dropout ${knobs.dropout.toFixed(2)}, dim ${knobs.dim} → ` +
          `validation Recall@20 ${trial.validationRecall20.toFixed(2)} (${formatDuration(trial.seconds)}; ` +
          `${formatDuration(Math.max(0, (deadline - performance.now()) / 1000))} of the budget left)`,
      )
    }
    if (scored.length === 0) break
    scored.sort((a, b) => b.validationRecall20 - a.validationRecall20)
    survivors = scored.slice(0, Math.max(1, Math.ceil(scored.length / 3))).map((t) => t.settings)
    if (rung < rungs.length - 1 && scored.length < 2) break
  }
  // The best trial of the highest rung any trial reached: its settings, the full epoch count.
  const top = Math.max(...trials.map((t) => t.rung))
  const winner = trials
    .filter((t) => t.rung === top)
    .reduce((a, t) => (t.validationRecall20 > a.validationRecall20 ? t : a))
  const best = withKnobs(base, winner.settings, base.fit.epochs, base.fit.maxSeconds)
  return { best, trials, seconds: (performance.now() - started) / 1000 }
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
