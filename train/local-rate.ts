// The shop's on-device fine-tuning rate (issue 16), chosen on its own validation split like the
// rest of `--tune`: long validation sessions stand for shoppers, the first half is what each did
// before, a copy of the trained model is fine-tuned on it with the worker's own code
// (model/train-local.ts, the worker's own), and the second half's next-item cases are ranked over
// the whole catalogue. The rate with the best Recall@20 + MRR@20 ships in the manifest
// (`localTraining.learningRate`; export:artifacts reads it from the model's report).
// `npm run sim:local` runs the same per-session loop to compare local against global.
import {
  createLocalTrainer,
  DEFAULT_LOCAL_TRAINER_OPTIONS,
  type LocalTrainerSettings,
  type LocalTrainingResult,
} from '../model/train-local'
import { createGruScorer } from '../model/eval/gru-scorer'
import {
  createMetricsAccumulator,
  LIST_K,
  popularMask,
  rankOfTarget,
  topKIndices,
  type MetricsAccumulator,
  type MetricsResult,
} from '../model/eval/metrics'
import type { SessionScorer } from '../model/eval/scorer'
import { createGruModelFromValues, type GruModel } from '../model/gru-model'
import { createRandom, shuffleInPlace } from '../shared/random'
import { countItems, splitValidation } from './data/examples'
import type { SessionDataset } from './data/types'
import { createProgressLine, formatDuration } from './progress'
import type { TrainSettings } from './train-model'

/** Rates tried: a decade below today's default (3·10⁻³) to it, in half-decade steps. */
export const LOCAL_RATES = [1e-4, 3e-4, 1e-3, 3e-3] as const

export interface LocalRateChoice {
  chosen: number
  /** Validation sessions of at least `minLength` items used, and how many there were. */
  sessions: number
  eligible: number
  /** The trained model's own scores on the same cases, without fine-tuning (%). */
  global: { recall20: number; mrr20: number }
  trials: Array<{ learningRate: number; recall20: number; mrr20: number }>
}

export interface LocalRateOptions {
  rates?: readonly number[]
  /** Sessions sampled (seeded) among those with at least `minLength` items. */
  sessions?: number
  minLength?: number
  seed?: number
  /** The device's fine-tuning settings the rates replace the rate of (default: the worker's). */
  trainer?: LocalTrainerSettings
  log?: (line: string) => void
}

/**
 * The fine-tuning rate with the best Recall@20 + MRR@20 on the validation split's long sessions
 * (the smaller on a tie); undefined when the split has no session long enough.
 */
export async function chooseLocalRate(
  model: GruModel,
  dataset: SessionDataset,
  settings: Pick<TrainSettings, 'validationFraction'>,
  options: LocalRateOptions = {},
): Promise<LocalRateChoice | undefined> {
  const log = options.log ?? ((line: string) => console.error(line))
  const { fit, validation } = splitValidation(dataset.train, settings.validationFraction)
  const minLength = options.minLength ?? 10
  const seed = options.seed ?? 1
  const selection = selectSessions(validation, minLength, options.sessions ?? 500, seed)
  if (selection.sessions.length === 0) {
    log(`local fine-tuning rate: no validation session of ${minLength} items or more; none chosen`)
    return undefined
  }
  const trainCounts = countItems(fit, dataset.nItems)
  const percent = (m: MetricsResult) => ({ recall20: 100 * m.metrics['recall@20']!, mrr20: 100 * m.metrics['mrr@20']! }) // prettier-ignore
  let global: LocalRateChoice['global'] | undefined
  const trials: LocalRateChoice['trials'] = []
  for (const learningRate of options.rates ?? LOCAL_RATES) {
    const settings = { ...(options.trainer ?? DEFAULT_LOCAL_TRAINER_OPTIONS), learningRate }
    const run = await fineTuneEach(model, selection.sessions, trainCounts, settings, seed)
    global ??= percent(run.global)
    trials.push({ learningRate, ...percent(run.local) })
  }
  const score = (t: (typeof trials)[number]) => t.recall20 + t.mrr20
  const best = trials.reduce((a, b) => (score(b) > score(a) ? b : a))
  const shown = trials.map((t) => `${t.learningRate}: ${t.recall20.toFixed(2)} / ${t.mrr20.toFixed(2)}`) // prettier-ignore
  log(
    `local fine-tuning rate ${best.learningRate} (${selection.sessions.length} validation sessions of ≥ ${minLength} items; ` +
      `second halves' Recall@20 / MRR@20 without fine-tuning ${global!.recall20.toFixed(2)} / ${global!.mrr20.toFixed(2)}, by rate: ${shown.join(', ')})`,
  )
  return {
    chosen: best.learningRate,
    sessions: selection.sessions.length,
    eligible: selection.eligible,
    global: global!,
    trials,
  }
}

/** A seeded sample of `count` sessions of length ≥ minLength, kept in file order. */
export function selectSessions(pool: Int32Array[], minLength: number, count: number, seed: number) {
  const eligible = pool.flatMap((s, i) => (s.length >= minLength ? [i] : []))
  shuffleInPlace(eligible, createRandom(seed))
  const chosen = eligible.slice(0, count).sort((a, b) => a - b)
  return { eligible: eligible.length, sessions: chosen.map((i) => pool[i]!) }
}

/** The second half's cases: prefix s[:k] → s[k] for k = ⌊L/2⌋ … L−1. */
function laterCases(session: Int32Array) {
  const half = Math.floor(session.length / 2)
  const prefixes: Int32Array[] = []
  const targets: number[] = []
  for (let k = Math.max(1, half); k < session.length; k++) {
    prefixes.push(session.subarray(0, k))
    targets.push(session[k]!)
  }
  return { before: session.subarray(0, half), prefixes, targets }
}

/** Ranks the cases into `accumulator`; returns the session's hits@20 and RR@20 sums. */
async function rankCases(
  scorer: SessionScorer,
  nItems: number,
  prefixes: Int32Array[],
  targets: number[],
  accumulator: MetricsAccumulator,
) {
  const scores = await scorer.scoreBatch(prefixes) // [cases, nItems]
  let hits = 0
  let reciprocal = 0
  targets.forEach((target, c) => {
    const rank = rankOfTarget(scores, c * nItems, nItems, target)
    accumulator.add(rank, topKIndices(scores, c * nItems, nItems, LIST_K))
    if (rank <= 20) {
      hits++
      reciprocal += 1 / rank
    }
  })
  return { hits, reciprocal }
}

export interface SessionOutcome {
  length: number
  /** Second-half cases ranked. */
  cases: number
  steps: number
  fineTuneMs: number
  globalHits20: number
  localHits20: number
  /** Sums of 1/rank over the cases ranked in the top 20. */
  globalRR20: number
  localRR20: number
}

/** Each session: rank its second half with the global model, fine-tune on its first, rank again. */
export async function fineTuneEach(
  global: GruModel,
  sessions: Int32Array[],
  trainCounts: Int32Array,
  settings: LocalTrainerSettings,
  seed: number,
) {
  const started = performance.now()
  const { nItems } = global.config
  // One working copy, reset to the global weights before each shopper. `assign` shares the
  // global buffers; the optimizer replaces them on its first step, so the global stays intact.
  const local = createGruModelFromValues(
    global.config,
    new Map(
      await Promise.all(
        [...global.variables].map(
          async ([name, v]) => [name, (await v.data()) as Float32Array] as const,
        ),
      ),
    ),
  )
  const accumulators = [global, local].map(() =>
    createMetricsAccumulator({ nItems, popularItems: popularMask(trainCounts) }),
  )
  const runs: LocalTrainingResult[] = []
  const perSession: SessionOutcome[] = []
  const progress = createProgressLine(process.stderr, 15)
  const globalScorer = createGruScorer(global)
  const percent = (x: number) => (100 * x).toFixed(2)
  for (const [i, session] of sessions.entries()) {
    const { before, prefixes, targets } = laterCases(session)
    const base = await rankCases(globalScorer, nItems, prefixes, targets, accumulators[0]!)
    for (const [name, v] of local.variables) v.assign(global.variables.get(name)!)
    const run = await createLocalTrainer(local, { ...settings, seed: seed + i }).train([before])
    runs.push(run)
    // A fresh scorer: it snapshots the item vectors, which fine-tuning has just changed.
    const localScorer = createGruScorer(local)
    const tuned = await rankCases(localScorer, nItems, prefixes, targets, accumulators[1]!)
    localScorer.dispose?.()
    perSession.push({
      length: session.length,
      cases: targets.length,
      steps: run.steps,
      fineTuneMs: Math.round(run.elapsedMs),
      globalHits20: base.hits,
      localHits20: tuned.hits,
      globalRR20: base.reciprocal,
      localRR20: tuned.reciprocal,
    })
    const [g, l] = accumulators.map((a) => a.result().metrics)
    const elapsed = (performance.now() - started) / 1000
    const done = i + 1
    progress.update(
      `lr ${settings.learningRate}: session ${done}/${sessions.length} · R@20 ${percent(g!['recall@20']!)} → ` +
        `${percent(l!['recall@20']!)} · MRR@20 ${percent(g!['mrr@20']!)} → ${percent(l!['mrr@20']!)} · ` +
        `fine-tune ${Math.round(run.elapsedMs)} ms, ${run.steps} steps · ` +
        `ETA ${formatDuration((elapsed / done) * (sessions.length - done))}`,
    )
  }
  progress.done()
  globalScorer.dispose?.()
  local.dispose()
  const [globalResult, localResult] = accumulators.map((a) => a.result())
  return { runs, perSession, global: globalResult!, local: localResult! }
}
