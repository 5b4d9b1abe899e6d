// npm run bench:quality -- --data <folder>: trains the GRU if no matching model exists, then
// evaluates it and every baseline with one protocol and prints them beside the published numbers.
// Writes bench/results/quality-<dataset>.json. `--on validation` scores the trainer's held-out
// validation split instead (where settings are chosen); `--pq-codes 25,30` is the lab switch
// that chose the shipped pq8 code count (BENCHMARKS.md, "What the shipped model loses").
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { CO_VISIT_BONUS_SPAN } from '../model/co-visit-bonus'
import type { GruModel } from '../model/gru-model'
import { coVisitationLists } from '../train/artifacts/co-visitation'
import { countItems, splitValidation } from '../train/data/examples'
import { loadDataset } from '../train/data/load-dataset'
import type { SessionDataset } from '../train/data/types'
import { createItemKnnScorer } from '../train/eval/baselines/item-knn'
import { createPopScorer } from '../train/eval/baselines/pop'
import { createSKnnScorer } from '../train/eval/baselines/s-knn'
import { createSPopScorer } from '../train/eval/baselines/s-pop'
import { evaluateScorer, type EvalReport } from '../model/eval/evaluate'
import { PUBLISHED } from '../train/eval/published'
import type { SessionScorer } from '../model/eval/scorer'
import { createGruScorer } from '../model/eval/gru-scorer'
import { exportModelWeights, importModelWeights } from '../model/model-weights'
import { SHIPPED_MODEL_ENCODING } from '../shared/shipped-model'
import { decodeWeights, encodeWeights, type EncodeWeightsOptions } from '../shared/weights-codec'
import { defaultModelDir, loadModel, saveModel } from '../train/model-file'
import { setNodeBackend, type NodeBackend } from '../model/node-backend'
import { createProgressLine, describeMachine, formatDuration } from '../train/progress'
import {
  chooseBonuses,
  trainOnDataset,
  type TrainReport,
  type TrainSettings,
} from '../train/train-model'
import { runBenchmark, type BenchRun } from './harness'
import {
  backendFromArgs,
  settingsFromArgs,
  TRAIN_OPTIONS,
  tuneMinutesFromArgs,
} from '../train/cli/train-options'
import { printTrials, trainTuned, tuneSettings } from '../train/tune'

const BASELINES = new Map<string, (train: Int32Array[], nItems: number) => SessionScorer>([
  ['POP', createPopScorer],
  ['S-POP', createSPopScorer],
  ['Item-KNN', createItemKnnScorer],
  ['S-KNN', createSKnnScorer],
])

/** Reuses models/<dataset>/ when it was trained with exactly these settings. */
async function obtainModel(
  dataset: SessionDataset,
  settings: TrainSettings,
  retrain: boolean,
  command: string,
  train: () => Promise<{ model: GruModel; report: TrainReport }> = () =>
    trainOnDataset(dataset, settings),
) {
  const dir = defaultModelDir(dataset.name)
  const reportFile = path.join(dir, 'report.json')
  if (!retrain && existsSync(reportFile) && existsSync(path.join(dir, 'model.prw'))) {
    const saved = JSON.parse(await readFile(reportFile, 'utf8'))
    if (
      JSON.stringify(saved.settings) === JSON.stringify(settings) &&
      saved.dataset === dataset.name
    ) {
      console.error(`using the model in ${dir} (trained ${saved.date}; --retrain to train again)`)
      const model = await loadModel(path.join(dir, 'model.prw'))
      if (model.config.coVisitBonus !== undefined || settings.model.repeatBonus !== undefined)
        return { model, report: saved }
      // Trained before the scoring bonuses: chosen now on the same validation split, and kept.
      const chosen = await chooseBonuses(model, dataset, settings)
      const report = {
        ...saved,
        repeatBonus: chosen.repeatBonus,
        coVisitBonus: chosen.coVisitBonus,
      }
      await saveModel(chosen.model, dir, report)
      return { model: chosen.model, report }
    }
    console.error(`the model in ${dir} was trained with other settings: training again`)
  }
  const { model, report } = await train()
  const full = { ...report, command, machine: describeMachine(), date: new Date().toISOString() }
  const bytes = await saveModel(model, dir, full)
  return { model, report: { ...full, bytes } }
}

async function evaluateWithProgress(
  scorer: SessionScorer,
  dataset: SessionDataset,
  maxPrefixLen?: number,
): Promise<EvalReport> {
  const progress = createProgressLine(process.stderr, 15)
  const started = performance.now()
  const report = await evaluateScorer(scorer, dataset.test, {
    nItems: dataset.nItems,
    trainCounts: countItems(dataset.train, dataset.nItems),
    maxPrefixLen,
    onProgress: (done, total) => progress.update(`${scorer.name}: ${done}/${total} cases`),
  })
  progress.done(
    `${scorer.name}: ${report.cases} cases in ${formatDuration((performance.now() - started) / 1000)}`,
  )
  return report
}

function percent(x: number | undefined): string {
  return x === undefined ? '' : (100 * x).toFixed(2)
}

/** A report with the size of the weights file that was scored, for the GRU's rows. */
type ScoredReport = EvalReport & { modelBytes?: number }

function formatTable(
  reports: ScoredReport[],
  published: { model: string; recall20: number; mrr20: number }[],
): string {
  const header = [
    'model',
    'R@5',
    'R@10',
    'R@20',
    'MRR@5',
    'MRR@10',
    'MRR@20',
    'NDCG@20',
    'MAP@20',
    'cov@20',
    'top1%@20',
    'model MB',
    'published R@20 / MRR@20',
  ]
  const rows = reports.map((r) => {
    const pub = published.find((p) => r.scorer.startsWith(p.model))
    return [
      r.scorer,
      ...[
        'recall@5',
        'recall@10',
        'recall@20',
        'mrr@5',
        'mrr@10',
        'mrr@20',
        'ndcg@20',
        'map@20',
      ].map((m) => percent(r.metrics[m as 'recall@5'])),
      percent(r['coverage@20']),
      percent(r['popShare@20']),
      r.modelBytes === undefined ? '' : (r.modelBytes / 1e6).toFixed(2),
      pub ? `${pub.recall20.toFixed(2)} / ${pub.mrr20.toFixed(2)}` : '',
    ]
  })
  for (const p of published) {
    if (!reports.some((r) => r.scorer.startsWith(p.model))) {
      const blank = new Array<string>(header.length - 2).fill('')
      rows.push([
        `${p.model} (published)`,
        ...blank,
        `${p.recall20.toFixed(2)} / ${p.mrr20.toFixed(2)}`,
      ])
    }
  }
  return [header, header.map(() => '---'), ...rows]
    .map((cells) => `| ${cells.join(' | ')} |`)
    .join('\n')
}

export interface QualityOptions {
  data: string
  backend: NodeBackend
  settings: TrainSettings
  retrain: boolean
  skipBaselines: Set<string>
  results?: string
  /** Which split is scored: test (the published protocol) or the trainer's validation split. */
  on: 'test' | 'validation'
  /**
   * A lab switch: instead of the float16, int8 and shipped rows, one row per pq8 code count (code
   * bytes per item row), the rest of the model shipped as usual.
   */
  pqCodes?: number[]
  /** Minutes of settings search on the validation split first (train/tune.ts), if given. */
  tune?: number
}

const QUALITY_OPTIONS = {
  ...TRAIN_OPTIONS,
  on: { type: 'string' },
  'pq-codes': { type: 'string' },
} as const

/** `train`'s flags (train-options.ts), since the model bench:quality scores is trained alike. */
export function parseQualityOptions(argv: string[]): QualityOptions {
  const { values } = parseArgs({ args: argv, options: QUALITY_OPTIONS, strict: true })
  if (!values.data)
    throw new Error('expected --data <folder> (e.g. ../shared/data/diginetica-srgnn)')
  const backend = backendFromArgs(values.backend)
  const skipBaselines = new Set((values['skip-baselines'] ?? '').split(',').filter(Boolean))
  for (const name of skipBaselines) {
    if (!BASELINES.has(name)) {
      throw new Error(
        `--skip-baselines: expected some of ${[...BASELINES.keys()].join(', ')}, got ${name}`,
      )
    }
  }
  const on = values.on ?? 'test'
  if (on !== 'test' && on !== 'validation') {
    throw new Error(`--on: expected test or validation, got ${JSON.stringify(values.on)}`)
  }
  const pqCodes = values['pq-codes']?.split(',').map(Number)
  if (pqCodes?.some((n) => !(Number.isInteger(n) && n >= 1))) {
    throw new Error(`--pq-codes: expected positive integers, got ${values['pq-codes']}`)
  }
  const tune = tuneMinutesFromArgs(values)
  return {
    data: values.data,
    on,
    ...(tune === undefined ? {} : { tune }),
    ...(pqCodes === undefined ? {} : { pqCodes }),
    backend,
    settings: settingsFromArgs(values),
    retrain: values.retrain === true,
    skipBaselines,
    ...(values.results ? { results: values.results } : {}),
  }
}

export async function benchQuality(options: QualityOptions, run: BenchRun): Promise<void> {
  const started = performance.now()
  await setNodeBackend(options.backend)
  const dataset = await loadDataset(options.data)
  // --tune: the settings are searched on the trainer's validation split first, never on test.
  // Its journal sits beside the model: the same command resumes a search cut short (tune.ts).
  const tuned = options.tune
    ? await tuneSettings(dataset, options.settings, {
        budgetMinutes: options.tune,
        journal: path.join(defaultModelDir(dataset.name), 'tune'),
      })
    : undefined
  if (tuned) printTrials(tuned)
  const { model, report: trainReport } = await obtainModel(
    dataset,
    tuned?.best ?? options.settings,
    options.retrain,
    run.stamp().command,
    tuned && (() => trainTuned(dataset, tuned)),
  )
  // On validation, everything is scored on the split the trainer held out, baselines fitted
  // without it: the place to choose settings (the pq8 code count), never the test split.
  const { fit, validation } = splitValidation(dataset.train, options.settings.validationFraction)
  // On test, every case of the split as published: an item unseen in training is a miss (issue 16).
  const scored =
    options.on === 'test'
      ? { ...dataset, test: dataset.testAsPublished ?? dataset.test }
      : { ...dataset, train: fit, test: validation }
  const reports: ScoredReport[] = []
  // The co-visitation bonus reads the lists devices get: the pools', from the scored split's training.
  const coVisitation = coVisitationLists(scored.train, dataset.nItems, CO_VISIT_BONUS_SPAN)
  const gruScorer = createGruScorer(model as GruModel, 'GRU + attention (ours)', { coVisitation })
  const weights = await exportModelWeights(model)
  const float32Bytes = encodeWeights(weights).byteLength
  reports.push({
    ...(await evaluateWithProgress(gruScorer, scored, model.config.maxLen)),
    modelBytes: float32Bytes,
  })
  gruScorer.dispose?.()
  // What devices would download: the same weights quantised, decoded back to float32. "shipped"
  // is exactly the form the export and the server's releases send (shared/shipped-model.ts).
  const encodings: Array<[string, EncodeWeightsOptions]> = options.pqCodes
    ? options.pqCodes.map((codes) => [
        `shipped with ${codes} pq8 codes a row`,
        { ...SHIPPED_MODEL_ENCODING, pq: { subspaces: codes } },
      ])
    : [
        ['float16', { dtype: 'float16' }],
        ['int8', { dtype: 'int8' }],
        ['shipped: pq8 items, int6', SHIPPED_MODEL_ENCODING],
      ]
  for (const [label, encoding] of encodings) {
    const bytes = encodeWeights(weights, encoding)
    const quantised = importModelWeights(decodeWeights(bytes))
    const scorer = createGruScorer(quantised, `GRU, ${label} weights (ours)`, { coVisitation })
    const report = await evaluateWithProgress(scorer, scored, quantised.config.maxLen)
    reports.push({ ...report, modelBytes: bytes.byteLength })
    scorer.dispose?.()
    quantised.dispose()
  }
  for (const [name, create] of BASELINES) {
    if (options.skipBaselines.has(name)) continue
    const scorer = create(scored.train, dataset.nItems)
    reports.push(await evaluateWithProgress(scorer, scored))
    scorer.dispose?.()
  }

  const published = PUBLISHED[dataset.name] ?? []
  const { unknownTargets, unknownPrefixes } = reports[0]!
  console.log(
    `\n${dataset.name}: ${reports[0]!.cases} ${options.on} cases, full ranking over ${dataset.nItems} items (metrics in %); ` +
      `${unknownTargets} with a target unseen in training and ${unknownPrefixes} with no known item before it, all counted as misses\n`,
  )
  console.log(formatTable(reports, published))
  await run.write(
    options.results ??
      path.join(
        'bench',
        'results',
        `quality-${dataset.name}${options.on === 'test' ? '' : `-${options.on}`}.json`,
      ),
    {
      dataset: dataset.name,
      split: options.on,
      benchSeconds: (performance.now() - started) / 1000,
      model: { parameters: model.parameterCount(), config: model.config, training: trainReport },
      ...(tuned ? { tune: { trials: tuned.trials, seconds: tuned.seconds } } : {}),
      reports,
      published,
    },
  )
  console.log(`in ${formatDuration((performance.now() - started) / 1000)}`)
  model.dispose()
}

runBenchmark({ script: 'bench:quality', parse: parseQualityOptions, run: benchQuality })
