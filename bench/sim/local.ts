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
import { DEFAULT_LOCAL_TRAINER_OPTIONS, type LocalTrainingResult } from '../../model/train-local'
import type { GruModel } from '../../model/gru-model'
import { createRandom } from '../../shared/random'
import { countItems, splitValidation } from '../../train/data/examples'
import { loadDataset } from '../../train/data/load-dataset'
import type { SessionDataset } from '../../train/data/types'
import {
  chooseLocalRate,
  fineTuneEach,
  selectSessions,
  type SessionOutcome,
} from '../../train/local-rate'
import type { MetricsResult } from '../../model/eval/metrics'
import { defaultModelDir, loadModel } from '../../train/model-file'
import { setNodeBackend } from '../../model/node-backend'
import { formatDuration } from '../../train/progress'
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
  const tuned = await tuneLocalRate(options, global, dataset, settings)
  if (tuned) settings.learningRate = tuned.chosen
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

/**
 * --tune-lr: the rates compared on the validation sessions by the trainer's own chooser
 * (train/local-rate.ts, the best Recall@20 + MRR@20), which the run then reports in full. On
 * test it is refused: a rate chosen there would be tuned on the test split.
 */
async function tuneLocalRate(
  options: LocalOptions,
  global: GruModel,
  dataset: SessionDataset,
  settings: typeof LOCAL,
) {
  if (options.tuneLr.length === 0) return undefined
  if (options.on !== 'validation')
    throw new Error('--tune-lr: rates are chosen with --on validation, never on the test split')
  const choice = await chooseLocalRate(
    global,
    dataset,
    { validationFraction: options.valFraction },
    {
      rates: options.tuneLr,
      sessions: options.sessions,
      minLength: options.minLength,
      seed: options.seed,
      trainer: settings,
    },
  )
  if (!choice)
    throw new Error(`--tune-lr: no validation session has ${options.minLength} items or more`)
  console.log('\n| local rate | fine-tuned Recall@20 | MRR@20 |\n| --: | --: | --: |')
  console.log(`| none | ${choice.global.recall20.toFixed(2)} | ${choice.global.mrr20.toFixed(2)} |`)
  for (const r of choice.trials)
    console.log(`| ${r.learningRate} | ${r.recall20.toFixed(2)} | ${r.mrr20.toFixed(2)} |`)
  console.log(`\nbest: ${choice.chosen} (\`train --tune\` chooses it alike; to ship it by hand: npm run export:artifacts -- --local-lr ${choice.chosen})`) // prettier-ignore
  return choice
}

/** The global model, checked against the dataset and (for --on validation) its held-out part. */
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
