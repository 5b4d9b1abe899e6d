// npm run sim:local -- [--data <folder>] [--model <file>]: does on-device fine-tuning help the
// shopper who did it? For long sessions the first half is "what came before"; the second half's
// next-item cases (full prefix as context, the SR-GNN protocol) are ranked over the whole
// catalogue by the global model and by a copy fine-tuned with the worker's own code on the first
// half. Writes bench/results/sim-local-<dataset>.json (…-validation.json with --on validation).
// Not per user: that needs a log with users of several sessions, and the only log with user ids
// here (diginetica-sample-raw) has 1,270 users of one session each, under other item ids.
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { parseArgs } from 'node:util'
import * as tf from '@tensorflow/tfjs-core'
import {
  createLocalTrainer,
  DEFAULT_LOCAL_TRAINER_OPTIONS,
  type LocalTrainingResult,
} from '../../client/worker/federated/train-local'
import { createGruModelFromValues } from '../../model/gru-model'
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
import { setNodeBackend, type NodeBackend } from '../../model/node-backend'
import {
  createProgressLine,
  describeCommand,
  describeMachine,
  formatDuration,
} from '../../train/progress'
import { median } from '../stats'

const OPTIONS = {
  data: { type: 'string', default: '../shared/data/diginetica-srgnn' },
  model: { type: 'string' },
  on: { type: 'string', default: 'test' },
  'val-fraction': { type: 'string', default: '0.05' },
  'min-length': { type: 'string', default: '10' },
  sessions: { type: 'string', default: '500' },
  seed: { type: 'string', default: '1' },
  lr: { type: 'string' },
  batch: { type: 'string' },
  negatives: { type: 'string' },
  epochs: { type: 'string' },
  trainable: { type: 'string' },
  backend: { type: 'string', default: 'wasm' },
  results: { type: 'string' },
} as const

function numberArg(name: string, raw: string | undefined, check: (n: number) => boolean) {
  if (raw === undefined) return undefined
  const n = Number(raw)
  if (!Number.isFinite(n) || !check(n)) {
    throw new Error(`--${name}: expected a valid number, got ${JSON.stringify(raw)}`)
  }
  return n
}

const positiveInt = (n: number) => Number.isInteger(n) && n > 0

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

async function main(): Promise<void> {
  const { values } = parseArgs({ options: OPTIONS, strict: true })
  if (values.on !== 'test' && values.on !== 'validation') {
    throw new Error(`--on: expected test or validation, got ${values.on}`)
  }
  const minLength = numberArg('min-length', values['min-length'], (n) => n >= 2 && positiveInt(n))!
  const count = numberArg('sessions', values.sessions, positiveInt)!
  const seed = numberArg('seed', values.seed, Number.isInteger)!
  const valFraction = numberArg('val-fraction', values['val-fraction'], (n) => n > 0 && n < 1)!
  if (
    values.trainable !== undefined &&
    values.trainable !== 'all' &&
    values.trainable !== 'items'
  ) {
    throw new Error(`--trainable: expected all or items, got ${values.trainable}`)
  }
  const defaults = DEFAULT_LOCAL_TRAINER_OPTIONS
  const settings: typeof DEFAULT_LOCAL_TRAINER_OPTIONS = {
    ...defaults,
    learningRate: numberArg('lr', values.lr, (n) => n > 0) ?? defaults.learningRate,
    batchSize: numberArg('batch', values.batch, positiveInt) ?? defaults.batchSize,
    negatives: numberArg('negatives', values.negatives, positiveInt) ?? defaults.negatives,
    epochs: numberArg('epochs', values.epochs, positiveInt) ?? defaults.epochs,
    trainable: values.trainable ?? defaults.trainable,
  }
  const started = performance.now()
  const command = describeCommand('sim:local')

  await setNodeBackend(values.backend as NodeBackend)
  const dataset = await loadDataset(values.data)
  const modelFile = path.resolve(
    values.model ?? path.join(defaultModelDir(dataset.name), 'model.prw'),
  )
  const modelReport = await readModelReport(modelFile)
  const heldOut = (modelReport?.settings as { validationFraction?: number } | undefined)
    ?.validationFraction
  if (values.on === 'validation' && !(heldOut !== undefined && heldOut >= valFraction)) {
    throw new Error(
      `--on validation needs a model trained with at least the last ${valFraction} of the ` +
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
  const { fit, validation } = splitValidation(dataset.train, valFraction)
  const pool = values.on === 'test' ? dataset.test : validation
  const trainCounts = countItems(values.on === 'test' ? dataset.train : fit, dataset.nItems)
  const selection = selectSessions(pool, minLength, count, seed)

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
    createMetricsAccumulator({
      nItems: dataset.nItems,
      popularItems: popularMask(trainCounts),
    }),
  )
  const runs: LocalTrainingResult[] = []
  const perSession: SessionOutcome[] = []
  const paired = { mrrBetter: 0, mrrWorse: 0, hitsBetter: 0, hitsWorse: 0 }
  const progress = createProgressLine(process.stderr, 15)
  console.error(
    `${dataset.name} (${values.on}): ${selection.sessions.length} of ${selection.eligible} ` +
      `sessions with ≥ ${minLength} items; fine-tuning ${JSON.stringify(settings)}`,
  )

  const globalScorer = createGruScorer(global)
  const { nItems } = dataset
  for (const [i, session] of selection.sessions.entries()) {
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
    if (tuned.reciprocal > base.reciprocal) paired.mrrBetter++
    if (tuned.reciprocal < base.reciprocal) paired.mrrWorse++
    if (tuned.hits > base.hits) paired.hitsBetter++
    if (tuned.hits < base.hits) paired.hitsWorse++

    const [g, l] = accumulators.map((a) => a.result().metrics)
    const elapsed = (performance.now() - started) / 1000
    const done = i + 1
    progress.update(
      `session ${done}/${selection.sessions.length} · R@20 ${percent(g!['recall@20']!)} → ` +
        `${percent(l!['recall@20']!)} · MRR@20 ${percent(g!['mrr@20']!)} → ${percent(l!['mrr@20']!)} · ` +
        `fine-tune ${Math.round(run.elapsedMs)} ms, ${run.steps} steps · ` +
        `ETA ${formatDuration((elapsed / done) * (selection.sessions.length - done))}`,
    )
  }
  progress.done()
  globalScorer.dispose?.()
  const [globalResult, localResult] = accumulators.map((a) => a.result())
  const diverged = runs.filter((r) => r.status === 'diverged').length
  const timing = {
    medianFineTuneMs: median(runs.map((r) => r.elapsedMs)),
    p90FineTuneMs: runs.length
      ? runs.map((r) => r.elapsedMs).sort((a, b) => a - b)[Math.floor(0.9 * (runs.length - 1))]!
      : NaN,
    medianSteps: median(runs.map((r) => r.steps)),
    meanSteps: runs.reduce((n, r) => n + r.steps, 0) / Math.max(1, runs.length),
    medianSlices: median(runs.map((r) => r.slices)),
    medianFineTuneCases: median(runs.map((r) => r.cases)),
    diverged,
  }
  const comparison = {
    sessions: runs.length,
    recall20DifferenceCI95: bootstrapDifference(
      perSession.map((p) => ({ cases: p.cases, global: p.globalHits20, local: p.localHits20 })),
      seed,
    ),
    mrr20DifferenceCI95: bootstrapDifference(
      perSession.map((p) => ({ cases: p.cases, global: p.globalRR20, local: p.localRR20 })),
      seed,
    ),
    mrr20: {
      improved: paired.mrrBetter,
      worsened: paired.mrrWorse,
      unchanged: runs.length - paired.mrrBetter - paired.mrrWorse,
      signTestP: signTestP(paired.mrrBetter, paired.mrrWorse),
    },
    hits20: {
      improved: paired.hitsBetter,
      worsened: paired.hitsWorse,
      unchanged: runs.length - paired.hitsBetter - paired.hitsWorse,
      signTestP: signTestP(paired.hitsBetter, paired.hitsWorse),
    },
  }

  console.log(
    `\n${dataset.name}, ${values.on} sessions with ≥ ${minLength} items: ${runs.length} sessions, ` +
      `second halves ranked over ${dataset.nItems} items (metrics in %)\n`,
  )
  console.log(
    formatTable([
      ['global model', globalResult!],
      ['+ local fine-tuning', localResult!],
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
      `${timing.medianFineTuneCases} cases; ${diverged} runs diverged and were rolled back`,
  )

  const suffix = values.on === 'validation' ? '-validation' : ''
  const out = path.resolve(
    values.results ?? path.join('bench', 'results', `sim-local-${dataset.name}${suffix}.json`),
  )
  await mkdir(path.dirname(out), { recursive: true })
  const summary = JSON.stringify(
    {
      dataset: dataset.name,
      on: values.on,
      date: new Date().toISOString(),
      machine: describeMachine(),
      backend: tf.getBackend(),
      command,
      seconds: (performance.now() - started) / 1000,
      model: {
        file: path.relative(process.cwd(), modelFile),
        parameters: global.parameterCount(),
        config: global.config,
        validationFractionHeldOut: heldOut,
      },
      selection: {
        minLength,
        requested: count,
        eligible: selection.eligible,
        sessions: selection.sessions.length,
        seed,
      },
      fineTuning: settings,
      global: globalResult,
      local: localResult,
      comparison,
      timing,
    },
    null,
    2,
  )
  // Aggregates only: per-session rows are derived from the log's sessions and would turn a
  // tracked results file into a copy of (part of) the dataset.
  await writeFile(out, summary + '\n')
  console.log(
    `\nwritten ${path.relative(process.cwd(), out)} in ${formatDuration((performance.now() - started) / 1000)}`,
  )
  local.dispose()
  global.dispose()
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? `${error.name}: ${error.message}` : error)
  process.exit(1)
})
