// npm run sim:local -- [--data <folder>] [--model <file>]: does on-device fine-tuning help the
// shopper who did it? For long sessions the first half is "what came before"; the second half's
// next-item cases (full prefix as context, the SR-GNN protocol) are ranked over the whole
// catalogue by the global model and by a copy fine-tuned with the worker's own code on the first
// half. Writes bench/results/sim-local-<dataset>.json (…-validation.json with --on validation).
// Not per user: that needs a log with users of several sessions, and the only log with user ids
// here (diginetica-sample-raw) has 1,270 users of one session each, under other item ids.
// `--on validation --tune-lr 1e-4,3e-4,1e-3` chooses the shop's fine-tuning rate (issue 16).
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import * as tf from '@tensorflow/tfjs-core'
import {
  createLocalTrainer,
  DEFAULT_LOCAL_TRAINER_OPTIONS,
  type LocalTrainingResult,
} from '../../client/worker/federated/train-local'
import { createGruModelFromValues, type GruModel } from '../../model/gru-model'
import { createRandom, shuffleInPlace } from '../../shared/random'
import { countItems, splitValidation } from '../../train/data/examples'
import { loadDataset } from '../../train/data/load-dataset'
import {
  createMetricsAccumulator,
  LIST_K,
  popularMask,
  rankOfTarget,
  topKIndices,
  type MetricsAccumulator,
  type MetricsResult,
} from '../../model/eval/metrics'
import type { SessionScorer } from '../../model/eval/scorer'
import { createGruScorer } from '../../model/eval/gru-scorer'
import { defaultModelDir, loadModel } from '../../train/model-file'
import { setNodeBackend } from '../../model/node-backend'
import { createProgressLine, formatDuration } from '../../train/progress'
import { median } from '../stats'
import { runBenchmark, type BenchRun } from '../harness'
import { choice, int, num, numList, readOptions, text, type Options } from '../options'

const LOCAL = DEFAULT_LOCAL_TRAINER_OPTIONS

export const LOCAL_FLAGS = {
  data: text('../shared/data/diginetica-srgnn'),
  /** Default: the dataset's trained model in models/<dataset>/model.prw. */
  model: text(),
  on: choice(['test', 'validation'] as const, 'test'),
  valFraction: num(0.05, 0.001, 0.999),
  minLength: int(10, 2),
  sessions: int(500),
  seed: int(1, 0),
  /** The device's fine-tuning; defaults: the worker's (train-local.ts). */
  lr: num(LOCAL.learningRate, 1e-12),
  batch: int(LOCAL.batchSize),
  negatives: int(LOCAL.negatives),
  epochs: int(LOCAL.epochs),
  trainable: choice(['all', 'items'] as const, LOCAL.trainable),
  /**
   * Issue 16: the fine-tuning rates to compare (with --on validation only); the best by the
   * fine-tuned Recall@20 is the one to ship (`export:artifacts --local-lr`). Empty: --lr alone.
   */
  tuneLr: numList([], 1e-12, 0.1),
  backend: choice(['wasm', 'cpu'] as const, 'wasm'),
  /** Default: bench/results/sim-local-<dataset>[-validation].json. */
  results: text(),
}
type LocalOptions = Options<typeof LOCAL_FLAGS>

/** A seeded sample of `count` sessions of length ≥ minLength, kept in file order. */
function selectSessions(pool: Int32Array[], minLength: number, count: number, seed: number) {
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

/** Two-sided exact sign test over the sessions that differ. */
function signTestP(better: number, worse: number): number {
  const n = better + worse
  if (n === 0) return 1
  const k = Math.min(better, worse)
  let logChoose = 0
  let tail = 0
  for (let i = 0; i <= k; i++) {
    if (i > 0) logChoose += Math.log(n - i + 1) - Math.log(i)
    tail += Math.exp(logChoose - n * Math.LN2)
  }
  return Math.min(1, 2 * tail)
}

interface SessionOutcome {
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

/**
 * 95 % interval of the case-averaged local − global difference, resampling whole sessions
 * (cases of one session are not independent).
 */
function bootstrapDifference(
  sessions: Array<{ cases: number; global: number; local: number }>,
  seed: number,
  rounds = 2000,
): [number, number] {
  const random = createRandom(seed)
  const estimates = new Float64Array(rounds)
  for (let r = 0; r < rounds; r++) {
    let cases = 0
    let difference = 0
    for (let n = 0; n < sessions.length; n++) {
      const s = sessions[Math.floor(random() * sessions.length)]!
      cases += s.cases
      difference += s.local - s.global
    }
    estimates[r] = cases === 0 ? 0 : difference / cases
  }
  estimates.sort()
  return [estimates[Math.floor(0.025 * rounds)]!, estimates[Math.floor(0.975 * rounds)]!]
}

async function readModelReport(modelFile: string): Promise<Record<string, unknown> | undefined> {
  const file = path.join(path.dirname(modelFile), 'report.json')
  return existsSync(file) ? JSON.parse(await readFile(file, 'utf8')) : undefined
}

const percent = (x: number) => (100 * x).toFixed(2)

function formatTable(rows: Array<[string, MetricsResult]>): string {
  const names = ['recall@5', 'recall@10', 'recall@20', 'mrr@5', 'mrr@10', 'mrr@20', 'ndcg@20']
  const header = ['model', 'cases', ...names.map((n) => n.replace('recall', 'R').toUpperCase())]
  const lines = rows.map(([name, r]) => [
    name,
    String(r.cases),
    ...names.map((n) => percent(r.metrics[n as 'recall@20'])),
  ])
  return [header, header.map((_, i) => (i === 0 ? '---' : '---:')), ...lines]
    .map((cells) => `| ${cells.join(' | ')} |`)
    .join('\n')
}

export async function simLocal(options: LocalOptions, run: BenchRun): Promise<void> {
  const started = performance.now()
  const settings: typeof LOCAL = {
    ...LOCAL,
    learningRate: options.lr,
    batchSize: options.batch,
    negatives: options.negatives,
    epochs: options.epochs,
    trainable: options.trainable,
  }
  await setNodeBackend(options.backend)
  const { dataset, modelFile, heldOut, global } = await loadGlobalModel(options)
  const { fit, validation } = splitValidation(dataset.train, options.valFraction)
  const pool = options.on === 'test' ? dataset.test : validation
  const trainCounts = countItems(options.on === 'test' ? dataset.train : fit, dataset.nItems)
  const selection = selectSessions(pool, options.minLength, options.sessions, options.seed)
  console.error(
    `${dataset.name} (${options.on}): ${selection.sessions.length} of ${selection.eligible} ` +
      `sessions with ≥ ${options.minLength} items; fine-tuning ${JSON.stringify(settings)}`,
  )
  const tuned = await tuneLocalRate(options, global, selection.sessions, trainCounts, settings)
  if (tuned) settings.learningRate = tuned.best
  const compared = await fineTuneEach(
    global,
    selection.sessions,
    trainCounts,
    settings,
    options.seed,
  )
  const timing = summariseTiming(compared.runs)
  const comparison = compare(compared.perSession, options.seed)
  console.log(
    `\n${dataset.name}, ${options.on} sessions with ≥ ${options.minLength} items: ${compared.runs.length} sessions, ` +
      `second halves ranked over ${dataset.nItems} items (metrics in %)\n`,
  )
  printComparison(compared.global, compared.local, comparison, timing)

  const suffix = options.on === 'validation' ? '-validation' : ''
  // Aggregates only: per-session rows are derived from the log's sessions and would turn a
  // tracked results file into a copy of (part of) the dataset.
  await run.write(
    options.results ?? path.join('bench', 'results', `sim-local-${dataset.name}${suffix}.json`),
    {
      dataset: dataset.name,
      on: options.on,
      backend: tf.getBackend(),
      seconds: (performance.now() - started) / 1000,
      model: {
        file: path.relative(process.cwd(), modelFile),
        parameters: global.parameterCount(),
        config: global.config,
        validationFractionHeldOut: heldOut,
      },
      selection: {
        minLength: options.minLength,
        requested: options.sessions,
        eligible: selection.eligible,
        sessions: selection.sessions.length,
        seed: options.seed,
      },
      fineTuning: settings,
      ...(tuned ? { tune: tuned } : {}),
      global: compared.global,
      local: compared.local,
      comparison,
      timing,
    },
  )
  console.log(`in ${formatDuration((performance.now() - started) / 1000)}`)
  global.dispose()
}

/** The global model, checked against the dataset and (for --on validation) its held-out part. */
/**
 * --tune-lr: each rate's fine-tuned Recall@20 and MRR@20 on the validation sessions, and the
 * best (by Recall@20, then MRR@20), which the run then reports in full. On test it is refused:
 * a rate chosen there would be tuned on the test split.
 */
async function tuneLocalRate(
  options: LocalOptions,
  global: GruModel,
  sessions: Int32Array[],
  trainCounts: Int32Array,
  settings: typeof LOCAL,
) {
  if (options.tuneLr.length === 0) return undefined
  if (options.on !== 'validation')
    throw new Error('--tune-lr: rates are chosen with --on validation, never on the test split')
  const rates: Array<{ learningRate: number; recall20: number; mrr20: number }> = []
  for (const learningRate of options.tuneLr) {
    const run = await fineTuneEach(global, sessions, trainCounts, { ...settings, learningRate }, options.seed) // prettier-ignore
    const m = run.local.metrics
    rates.push({ learningRate, recall20: 100 * m['recall@20']!, mrr20: 100 * m['mrr@20']! })
  }
  const best = rates.reduce((a, r) =>
    r.recall20 > a.recall20 || (r.recall20 === a.recall20 && r.mrr20 > a.mrr20) ? r : a,
  )
  console.log('\n| local rate | fine-tuned Recall@20 | MRR@20 |\n| --: | --: | --: |')
  for (const r of rates)
    console.log(`| ${r.learningRate} | ${r.recall20.toFixed(2)} | ${r.mrr20.toFixed(2)} |`)
  console.log(`\nbest: ${best.learningRate} (ship it: npm run export:artifacts -- --local-lr ${best.learningRate})`) // prettier-ignore
  return { rates, best: best.learningRate }
}

async function loadGlobalModel(options: LocalOptions) {
  const dataset = await loadDataset(options.data)
  const modelFile = path.resolve(
    options.model ?? path.join(defaultModelDir(dataset.name), 'model.prw'),
  )
  const modelReport = await readModelReport(modelFile)
  const heldOut = (modelReport?.settings as { validationFraction?: number } | undefined)
    ?.validationFraction
  if (options.on === 'validation' && !(heldOut !== undefined && heldOut >= options.valFraction)) {
    throw new Error(
      `--on validation needs a model trained with at least the last ${options.valFraction} of the ` +
        `training sessions held out; ${modelFile} reports ${heldOut ?? 'nothing'}`,
    )
  }
  const global = await loadModel(modelFile)
  if (global.config.nItems !== dataset.nItems) {
    throw new Error(
      `expected a model over ${dataset.nItems} items for ${dataset.name}, ` +
        `${modelFile} has ${global.config.nItems}`,
    )
  }
  return { dataset, modelFile, heldOut, global }
}

/** Each session: rank its second half with the global model, fine-tune on its first, rank again. */
async function fineTuneEach(
  global: GruModel,
  sessions: Int32Array[],
  trainCounts: Int32Array,
  settings: typeof LOCAL,
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
      `session ${done}/${sessions.length} · R@20 ${percent(g!['recall@20']!)} → ` +
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

function summariseTiming(runs: LocalTrainingResult[]) {
  return {
    medianFineTuneMs: median(runs.map((r) => r.elapsedMs)),
    p90FineTuneMs: runs.length
      ? runs.map((r) => r.elapsedMs).sort((a, b) => a - b)[Math.floor(0.9 * (runs.length - 1))]!
      : NaN,
    medianSteps: median(runs.map((r) => r.steps)),
    meanSteps: runs.reduce((n, r) => n + r.steps, 0) / Math.max(1, runs.length),
    medianSlices: median(runs.map((r) => r.slices)),
    medianFineTuneCases: median(runs.map((r) => r.cases)),
    diverged: runs.filter((r) => r.status === 'diverged').length,
  }
}

/** Local against global, per session: bootstrap intervals and sign tests. */
function compare(perSession: SessionOutcome[], seed: number) {
  const tally = (local: (p: SessionOutcome) => number, global: (p: SessionOutcome) => number) => {
    const improved = perSession.filter((p) => local(p) > global(p)).length
    const worsened = perSession.filter((p) => local(p) < global(p)).length
    const unchanged = perSession.length - improved - worsened
    return { improved, worsened, unchanged, signTestP: signTestP(improved, worsened) }
  }
  return {
    sessions: perSession.length,
    recall20DifferenceCI95: bootstrapDifference(
      perSession.map((p) => ({ cases: p.cases, global: p.globalHits20, local: p.localHits20 })),
      seed,
    ),
    mrr20DifferenceCI95: bootstrapDifference(
      perSession.map((p) => ({ cases: p.cases, global: p.globalRR20, local: p.localRR20 })),
      seed,
    ),
    mrr20: tally(
      (p) => p.localRR20,
      (p) => p.globalRR20,
    ),
    hits20: tally(
      (p) => p.localHits20,
      (p) => p.globalHits20,
    ),
  }
}

function printComparison(
  globalResult: MetricsResult,
  localResult: MetricsResult,
  comparison: ReturnType<typeof compare>,
  timing: ReturnType<typeof summariseTiming>,
): void {
  console.log(
    formatTable([
      ['global model', globalResult],
      ['+ local fine-tuning', localResult],
    ]),
  )
  const interval = ([low, high]: [number, number]) => `[${percent(low)}, ${percent(high)}]`
  console.log(
    `\nlocal − global, 95 % bootstrap interval over sessions: Recall@20 ` +
      `${interval(comparison.recall20DifferenceCI95)}, MRR@20 ${interval(comparison.mrr20DifferenceCI95)} points`,
  )
  console.log(
    `per session (MRR@20): ${comparison.mrr20.improved} improved, ${comparison.mrr20.worsened} ` +
      `worsened, ${comparison.mrr20.unchanged} unchanged (sign test p = ${comparison.mrr20.signTestP.toPrecision(2)}); ` +
      `hits@20: ${comparison.hits20.improved} / ${comparison.hits20.worsened} / ${comparison.hits20.unchanged}`,
  )
  console.log(
    `fine-tuning per session (backend ${tf.getBackend()}): median ${timing.medianFineTuneMs.toFixed(0)} ms, ` +
      `p90 ${timing.p90FineTuneMs.toFixed(0)} ms, median ${timing.medianSteps} steps on ` +
      `${timing.medianFineTuneCases} cases; ${timing.diverged} runs diverged and were rolled back`,
  )
}

runBenchmark({
  script: 'sim:local',
  parse: (argv) => readOptions(LOCAL_FLAGS, argv),
  run: simLocal,
})
