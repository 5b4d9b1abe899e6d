// npm run sim -- [--scenario plaintext|secure|ceiling-parts|noise] [--data <folder>] [--devices 2000] …:
// federated training on a real log. A model is pre-trained on the first 20 % of the training
// sessions (file order is time order); then devices, one per later training session, train with
// the worker's own code (compute-sparse-update.ts) and send their sparse contributions through
// the channel (bench/sim/sparse-channel.ts), K per release. Published versions are evaluated
// with the SR-GNN protocol (full ranking) on the first `--eval-cases` cases of the test split or
// of the validation split (`--on validation`), beside the central ceilings. Prints and writes
// accuracy per version to bench/results/sim-federated-<dataset>.json. (Before 2026-12-04 the
// scenarios were flags: --channel sparse-plaintext|sparse-secure, --ceiling-parts, --noise σ.)
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { exportModelWeights } from '../../model/model-weights'
import { DEFAULT_SPARSE } from '../../server/federated/defaults'
import { splitWeights } from '../../shared/federation-layout'
import { decodeWeights, encodeWeights, type WeightsFile } from '../../shared/weights-codec'
import { countItems, splitForFederation } from '../../train/data/examples'
import { loadDataset } from '../../train/data/load-dataset'
import type { SessionDataset } from '../../train/data/types'
import type { TargetGroup } from '../../model/eval/evaluate'
import { evaluateWeights } from '../../model/eval/gru-scorer'
import { defaultModelDir } from '../../train/model-file'
import { setNodeBackend } from '../../model/node-backend'
import { DEFAULT_TRAIN_SETTINGS, trainOnDataset } from '../../train/train-model'
import { deviceSessions } from './ceilings'
import { simulateSparse, type SparseSimulation } from './sparse-simulation'
import { runBenchmark, type BenchRun } from '../harness'
import {
  choice,
  int,
  num,
  optionalInt,
  optionalNum,
  readOptions,
  text,
  type Options,
} from '../options'

/**
 * Named scenarios instead of diagnostic switches: each fixes the channel and what is measured
 * beside the curve; the numeric knobs below stay flags.
 */
export const SCENARIOS = {
  /** The devices' sparse contributions in the clear to an in-process server that steps each row
   * by its own mean (sparse-channel.ts): the curve the product's channel must reach. */
  plaintext: { channel: 'sparse-plaintext', ceilingParts: false, noise: false },
  /** The same contributions through the two-server channel as well (DPF keys and additive shares
   * to an in-process leader and helper), published from the combined shares: the model hashes
   * must equal the plaintext scenario's. */
  secure: { channel: 'sparse-secure', ceilingParts: false, noise: false },
  /** Also score each ceiling with only its item table (the pre-trained rest) and with only its
   * other weights (the pre-trained table): which part of the central gain the rows carry. */
  'ceiling-parts': { channel: 'sparse-plaintext', ceilingParts: true, noise: false },
  /** Lab, not in the product: Gaussian noise of σ = --sigma on each release's sums, as the two
   * servers' halves add up to; rows whose noisy count is under --min-count do not move. */
  noise: { channel: 'sparse-plaintext', ceilingParts: false, noise: true },
} as const
type ScenarioName = keyof typeof SCENARIOS

export const SIM_FLAGS = {
  scenario: choice(Object.keys(SCENARIOS) as ScenarioName[], 'plaintext'),
  data: text('../shared/data/diginetica-srgnn'),
  pretrainFraction: num(0.2, 0.001, 0.999),
  pretrainEpochs: int(3),
  devices: int(2000, 0),
  /** K, C: default DEFAULT_SPARSE's. */
  buffer: int(DEFAULT_SPARSE.bufferSize),
  clip: num(DEFAULT_SPARSE.clipNorm, 1e-12),
  /** η of the rows (each moves by η × its mean change), and of the dense weights and negatives. */
  serverLr: num(1, 0),
  denseServerLr: optionalNum(0),
  /** The layout: rows per update, dense coordinates, public negatives; default DEFAULT_SPARSE's. */
  maxRows: int(DEFAULT_SPARSE.layout.maxRows),
  dense: int(DEFAULT_SPARSE.layout.denseCoordinates, 0),
  negatives: int(DEFAULT_SPARSE.layout.negativeRows, 0),
  /** Devices' SGD rates (item rows, other weights) and epochs; default DEFAULT_SPARSE's. */
  lr: num(DEFAULT_SPARSE.training.learningRate, 0),
  denseLr: num(DEFAULT_SPARSE.training.denseLearningRate!, 0),
  epochs: int(DEFAULT_SPARSE.training.epochs),
  evalCases: int(10_000),
  evalEvery: int(5),
  /** Which sessions score the versions: `test` or `validation` (the last 5 % of training). */
  on: choice(['test', 'validation'] as const, 'test'),
  /**
   * Device counts N, comma-separated (default: --devices; `none` skips): the pre-trained model
   * trained on, centrally, for one epoch on the sessions N devices hold — what the federation
   * could reach with that much data if nothing were lost in clipping or averaging.
   */
  ceiling: text(),
  /** The noise scenario's σ and count floor (default ⌈3σ√maxRows⌉, three standard deviations
   * of a count's noise). */
  sigma: num(1, 1e-12),
  minCount: optionalInt(0),
  /** Where the pre-trained model is cached; default models/<dataset>. */
  models: text(),
  results: text(),
}
type SimOptions = Options<typeof SIM_FLAGS>

/**
 * How many devices could teach the federation each new item: for every case of the scored split
 * whose target no pre-training session holds, the later sessions holding that item (percentiles).
 */
function describeNewTargets(scored: Int32Array[], later: Int32Array[], earlyCounts: Int32Array) {
  const holders = holdersOf(later, earlyCounts.length)
  const distinct = holders.reduce((n, h) => n + h, 0)
  const counts: number[] = []
  for (const session of scored) {
    for (let k = 1; k < session.length; k++) {
      if (earlyCounts[session[k]!] === 0) counts.push(holders[session[k]!]!)
    }
  }
  counts.sort((a, b) => a - b)
  const at = (q: number) => counts[Math.floor(q * (counts.length - 1))] ?? 0
  return {
    cases: counts.length,
    holders: { p10: at(0.1), median: at(0.5), p90: at(0.9) },
    distinctItemsPerLaterSession: later.length ? distinct / later.length : 0,
  }
}

/** For every item, how many of `sessions` hold it (each session is one device). */
function holdersOf(sessions: readonly Int32Array[], nItems: number): Int32Array {
  const holders = new Int32Array(nItems)
  for (const session of sessions) for (const item of new Set(session)) holders[item]! += 1
  return holders
}

export async function simFederated(options: SimOptions, run: BenchRun): Promise<void> {
  const started = performance.now()
  const scenario = SCENARIOS[options.scenario]
  await setNodeBackend('wasm')
  const dataset = await loadDataset(options.data)
  // --on validation: the last 5 % of the training sessions are held out from the devices and
  // score every version instead of the test split, so that settings are chosen without it.
  const onValidation = options.on === 'validation'
  const split = splitForFederation(dataset.train, options.pretrainFraction, onValidation)
  const early: SessionDataset = { ...dataset, train: split.early }
  const scoredSessions = onValidation ? split.validation : dataset.test
  const global = await pretrained(
    early,
    options.pretrainEpochs,
    options.pretrainFraction,
    options.models ?? defaultModelDir(dataset.name),
  )
  const sessions = deviceSessions(split.later, options.devices)
  // Items the pre-trained model never saw: a third of DIGINETICA's validation targets, whose
  // rows only the later sessions (the devices') can train.
  const earlyCounts = countItems(split.early, dataset.nItems)
  const newTargets = describeNewTargets(scoredSessions, split.later, earlyCounts)
  console.log(
    `targets new since pre-training: ${newTargets.cases} cases; later sessions holding their item: ` +
      `10th percentile ${newTargets.holders.p10}, median ${newTargets.holders.median}, 90th ${newTargets.holders.p90} ` +
      `(of ${split.later.length}; ${newTargets.distinctItemsPerLaterSession.toFixed(1)} distinct items per session)`,
  )
  const evaluate = versionScorer(
    scoredSessions,
    countItems(dataset.train, dataset.nItems),
    options.evalCases,
    targetGroups(earlyCounts, holdersOf(sessions, dataset.nItems)),
  )
  const summary = await simulateSparse({
    channel: scenario.channel,
    global,
    sessions,
    later: split.later,
    evaluate,
    log: (line) => console.log(line),
    evalEvery: options.evalEvery,
    ceiling: { spec: options.ceiling, parts: scenario.ceilingParts },
    settings: channelSettings(options, splitWeights(global).shape.embedDim),
    started,
  })
  await run.write(
    options.results ?? path.join('bench', 'results', `sim-federated-${dataset.name}.json`),
    {
      dataset: dataset.name,
      scenario: options.scenario,
      pretrain: { sessions: split.early.length, epochs: options.pretrainEpochs },
      evalCases: options.evalCases,
      scoredOn: onValidation ? 'validation (last 5 % of training)' : 'test',
      newTargets,
      ...summary,
    },
  )
}

/**
 * Every version is scored as a whole and on four groups of targets: those the pre-training saw
 * and new ones; and, since under noise only rows many devices trained can move (the bar
 * is on targets at least 100 devices hold), the head and tail of what the devices hold.
 */
function targetGroups(earlyCounts: Int32Array, holders: Int32Array): TargetGroup[] {
  return [
    { name: 'seen in pre-training', holds: (item) => earlyCounts[item]! > 0 },
    { name: 'new since', holds: (item) => earlyCounts[item] === 0 },
    { name: 'held by ≥ 100 devices', holds: (item) => holders[item]! >= 100 },
    { name: 'held by < 100 devices', holds: (item) => holders[item]! < 100 },
  ]
}

function versionScorer(
  scored: Int32Array[],
  trainCounts: Int32Array,
  maxCases: number,
  groups: TargetGroup[],
) {
  return async (file: WeightsFile) => {
    const report = await evaluateWeights(file, scored, {
      trainCounts,
      maxCases,
      targetGroups: groups,
    })
    return {
      recall20: report.metrics['recall@20']! * 100,
      mrr20: report.metrics['mrr@20']! * 100,
      cases: report.cases,
      byTarget: report.groups!,
    }
  }
}

function channelSettings(options: SimOptions, embedDim: number): SparseSimulation['settings'] {
  const noise = SCENARIOS[options.scenario].noise
  return {
    layout: {
      maxRows: options.maxRows,
      embedDim,
      denseCoordinates: options.dense,
      negativeRows: options.negatives,
    },
    buffer: options.buffer,
    clipNorm: options.clip,
    ...(noise && {
      noise: {
        multiplier: options.sigma,
        minCount: options.minCount ?? Math.ceil(3 * options.sigma * Math.sqrt(options.maxRows)),
      },
    }),
    step: { tableRate: options.serverLr, denseRate: options.denseServerLr ?? options.serverLr },
    training: {
      learningRate: options.lr,
      denseLearningRate: options.denseLr,
      epochs: options.epochs,
    },
  }
}

/** The model trained on the early sessions only, cached under models/<dataset>/. */
async function pretrained(
  early: SessionDataset,
  epochs: number,
  fraction: number,
  dir: string,
): Promise<WeightsFile> {
  const file = path.join(dir, `pretrain-${fraction}-e${epochs}.prw`)
  if (existsSync(file)) {
    console.log(`pre-trained model: ${path.relative(process.cwd(), file)} (cached)`)
    return decodeWeights(await readFile(file))
  }
  const settings = { ...DEFAULT_TRAIN_SETTINGS, fit: { ...DEFAULT_TRAIN_SETTINGS.fit, epochs } }
  const { model } = await trainOnDataset(early, settings)
  const weights = await exportModelWeights(model)
  model.dispose()
  await mkdir(path.dirname(file), { recursive: true })
  await writeFile(file, encodeWeights(weights, { dtype: 'float32' }))
  return weights
}

runBenchmark({ script: 'sim', parse: (argv) => readOptions(SIM_FLAGS, argv), run: simFederated })
