// npm run sim -- [--data <folder>] [--devices 2000] [--channel sparse-plaintext|sparse-secure] …:
// federated training on a real log. A model is pre-trained on the first 20 % of the training
// sessions (file order is time order); then devices, one per later training session, train with
// the worker's own code (compute-sparse-update.ts) and send their sparse contributions through
// the channel (bench/sim/sparse-channel.ts), K per release. Published versions are evaluated
// with the SR-GNN protocol (full ranking) on the first `--eval-cases` cases of the test split or
// of the validation split (`--on validation`), beside the central ceilings. Prints and writes
// accuracy per version to bench/results/sim-federated-<dataset>.json. (The slice layout's
// `--channel server`, issue 4, left with that layout; its numbers stay in BENCHMARKS.md.)
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { parseArgs } from 'node:util'
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
import { simulateSparse } from './sparse-simulation'

const OPTIONS = {
  data: { type: 'string', default: '../shared/data/diginetica-srgnn' },
  'pretrain-fraction': { type: 'string', default: '0.2' },
  'pretrain-epochs': { type: 'string', default: '3' },
  devices: { type: 'string', default: '2000' },
  /** K, C; default DEFAULT_SPARSE's. */
  buffer: { type: 'string' },
  clip: { type: 'string' },
  /** η of the rows (each moves by η × its mean change). */
  'server-lr': { type: 'string', default: '1' },
  /** Dense coordinates an update carries; default DEFAULT_SPARSE's. */
  dense: { type: 'string' },
  /** Devices' SGD rates (item rows, other weights) and epochs; default DEFAULT_SPARSE's. */
  lr: { type: 'string' },
  'dense-lr': { type: 'string' },
  epochs: { type: 'string' },
  'eval-cases': { type: 'string', default: '10000' },
  'eval-every': { type: 'string', default: '5' },
  /** Which sessions score the versions: `test` or `validation` (the last 5 % of training). */
  on: { type: 'string', default: 'test' },
  /**
   * Device counts N, comma-separated (default: --devices; `none` skips): the pre-trained model
   * trained on, centrally, for one epoch on the sessions N devices hold — what the federation
   * could reach with that much data if nothing were lost in slicing, clipping or averaging.
   */
  ceiling: { type: 'string' },
  /**
   * Diagnostic: also score each ceiling with only its item table (the pre-trained rest) and with
   * only its other weights (the pre-trained table): which part of the central gain the item rows
   * carry.
   */
  'ceiling-parts': { type: 'boolean', default: false },
  /** Where the pre-trained model is cached; default models/<dataset>. */
  models: { type: 'string' },
  results: { type: 'string' },
  /**
   * `sparse-plaintext` (issue 12, simulation only): devices send the rows they viewed and a dense
   * window in the clear to an in-process server that steps each row by its own mean
   * (bench/sim/sparse-channel.ts); --server-lr is the rows' η, --dense the window.
   * `sparse-secure`: the same contributions through the two-server channel as well (DPF keys and
   * additive shares to an in-process leader and helper), published from the combined shares.
   */
  channel: { type: 'string', default: 'sparse-plaintext' },
  /**
   * Rows per update; public negatives per release (devices push them down and every update
   * carries their changes); the η of the dense weights and negatives. Defaults: DEFAULT_SPARSE.
   */
  'max-rows': { type: 'string' },
  /**
   * Lab (not in the product yet): σ of the Gaussian noise on each release's sums (0: none), as
   * the two servers' halves add up to; rows whose noisy count is under --min-count do not move
   * (default ⌈3σ√maxRows⌉, three standard deviations of a count's noise).
   */
  noise: { type: 'string', default: '0' },
  'min-count': { type: 'string' },
  negatives: { type: 'string' },
  'dense-server-lr': { type: 'string' },
} as const

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

async function main(): Promise<void> {
  const { values } = parseArgs({ options: OPTIONS, strict: true })
  const number = (name: keyof typeof OPTIONS) => {
    const value = Number(values[name])
    if (!Number.isFinite(value) || value < 0)
      throw new Error(`--${name}: expected a number ≥ 0, got ${values[name]}`)
    return value
  }
  const numberOr = (name: keyof typeof OPTIONS, fallback: number) =>
    values[name] === undefined ? fallback : number(name)
  await setNodeBackend('wasm')
  const started = performance.now()
  const dataset = await loadDataset(values.data!)
  // --on validation: the last 5 % of the training sessions are held out from the devices and
  // score every version instead of the test split, so that settings are chosen without it.
  const onValidation = values.on === 'validation'
  if (values.on !== 'test' && !onValidation)
    throw new Error(`--on: expected test or validation, got ${values.on}`)
  const split = splitForFederation(dataset.train, number('pretrain-fraction'), onValidation)
  const cut = split.early.length
  const early: SessionDataset = { ...dataset, train: split.early }
  const later = split.later
  const scoredSessions = onValidation ? split.validation : dataset.test
  const trainCounts = countItems(dataset.train, dataset.nItems)
  const evalCases = number('eval-cases')
  const log = (line: string) => console.log(line)

  const global = await pretrained(
    early,
    number('pretrain-epochs'),
    number('pretrain-fraction'),
    values.models ?? defaultModelDir(dataset.name),
  )
  // Items the pre-trained model never saw: a third of DIGINETICA's validation targets, whose
  // rows only the later sessions (the devices') can train.
  const earlyCounts = countItems(split.early, dataset.nItems)
  // And the head and tail of what the devices hold: under noise only rows many devices trained
  // can move (the bar is on targets at least 100 devices hold).
  const sessions = deviceSessions(later, number('devices'))
  const holders = holdersOf(sessions, dataset.nItems)
  const targetGroups: TargetGroup[] = [
    { name: 'seen in pre-training', holds: (item) => earlyCounts[item]! > 0 },
    { name: 'new since', holds: (item) => earlyCounts[item] === 0 },
    { name: 'held by ≥ 100 devices', holds: (item) => holders[item]! >= 100 },
    { name: 'held by < 100 devices', holds: (item) => holders[item]! < 100 },
  ]
  const newTargets = describeNewTargets(scoredSessions, later, earlyCounts)
  log(
    `targets new since pre-training: ${newTargets.cases} cases; later sessions holding their item: ` +
      `10th percentile ${newTargets.holders.p10}, median ${newTargets.holders.median}, 90th ${newTargets.holders.p90} ` +
      `(of ${later.length}; ${newTargets.distinctItemsPerLaterSession.toFixed(1)} distinct items per session)`,
  )
  const evaluate = async (file: WeightsFile) => {
    const report = await evaluateWeights(file, scoredSessions, {
      trainCounts,
      maxCases: evalCases,
      targetGroups,
    })
    return {
      recall20: report.metrics['recall@20']! * 100,
      mrr20: report.metrics['mrr@20']! * 100,
      cases: report.cases,
      byTarget: report.groups!,
    }
  }

  const out = path.resolve(
    values.results ?? path.join('bench', 'results', `sim-federated-${dataset.name}.json`),
  )
  await mkdir(path.dirname(out), { recursive: true })
  if (values.channel !== 'sparse-plaintext' && values.channel !== 'sparse-secure')
    throw new Error(`--channel: expected sparse-plaintext or sparse-secure, got ${values.channel}`)
  const { shape } = splitWeights(global)
  const serverLr = number('server-lr')
  await simulateSparse({
    channel: values.channel,
    global,
    sessions,
    later,
    evaluate,
    out,
    log,
    evalEvery: Math.max(1, number('eval-every')),
    ceiling: { spec: values.ceiling, parts: values['ceiling-parts']! },
    settings: {
      layout: {
        maxRows: numberOr('max-rows', DEFAULT_SPARSE.layout.maxRows),
        embedDim: shape.embedDim,
        denseCoordinates: numberOr('dense', DEFAULT_SPARSE.layout.denseCoordinates),
        negativeRows: numberOr('negatives', DEFAULT_SPARSE.layout.negativeRows),
      },
      buffer: numberOr('buffer', DEFAULT_SPARSE.bufferSize),
      clipNorm: numberOr('clip', DEFAULT_SPARSE.clipNorm),
      ...(number('noise') > 0 && {
        noise: {
          multiplier: number('noise'),
          minCount: numberOr(
            'min-count',
            Math.ceil(
              3 * number('noise') * Math.sqrt(numberOr('max-rows', DEFAULT_SPARSE.layout.maxRows)),
            ),
          ),
        },
      }),
      step: { tableRate: serverLr, denseRate: numberOr('dense-server-lr', serverLr) },
      training: {
        learningRate: numberOr('lr', DEFAULT_SPARSE.training.learningRate),
        denseLearningRate: numberOr('dense-lr', DEFAULT_SPARSE.training.denseLearningRate!),
        epochs: numberOr('epochs', DEFAULT_SPARSE.training.epochs),
      },
    },
    summary: {
      dataset: dataset.name,
      pretrain: { sessions: cut, epochs: number('pretrain-epochs') },
      evalCases,
      scoredOn: onValidation ? 'validation (last 5 % of training)' : 'test',
      newTargets,
    },
    started,
  })
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

main().catch((error: unknown) => {
  console.error(error instanceof Error ? `${error.name}: ${error.message}` : error)
  process.exit(1)
})
