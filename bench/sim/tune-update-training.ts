// npm run tune:update-training -- [--data <folder>] [--optimizer sgd|adam] [--lr 0.5]
// [--dense-lr 0.001] [--trainable all|items] [--sessions 1000] [--epochs 1]
// How a device should train for a federated update, chosen without the test split: the model
// pre-trained on the first 20 % of the training sessions (as `npm run sim` caches it) is trained
// in one process with the worker's own local trainer, as createUpdateTrainer configures it
// (no in-session negatives), on the first N later sessions, and scored on the validation split
// (the last 5 % of the training sessions, which `npm run sim -- --on validation` holds out too).
// Appends its run to bench/results/tune-update-training-<dataset>.json.
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { createLocalTrainer } from '../../model/train-local'
import { exportModelWeights, importModelWeights } from '../../model/model-weights'
import { decodeWeights, encodeWeights, type WeightsFile } from '../../shared/weights-codec'
import { countItems, splitForFederation } from '../../train/data/examples'
import { loadDataset } from '../../train/data/load-dataset'
import { evaluateWeights } from '../../model/eval/gru-scorer'
import { defaultModelDir } from '../../train/model-file'
import { setNodeBackend } from '../../model/node-backend'
import { runBenchmark, type BenchRun } from '../harness'
import { choice, int, num, optionalNum, readOptions, text, type Options } from '../options'

export const TUNE_FLAGS = {
  data: text('../shared/data/yoochoose-clicks-100k-sessionrec'),
  optimizer: choice(['sgd', 'adam'] as const, 'sgd'),
  lr: num(0.5, 1e-12),
  /** Default: --lr. */
  denseLr: optionalNum(0),
  trainable: choice(['all', 'items'] as const, 'all'),
  sessions: int(1000),
  epochs: int(1),
  pretrain: text('pretrain-0.2-e1.prw'),
  results: text(),
}

export async function tuneUpdateTraining(
  options: Options<typeof TUNE_FLAGS>,
  run: BenchRun,
): Promise<void> {
  await setNodeBackend('wasm')
  const dataset = await loadDataset(options.data)
  const pretrainFile = path.join(defaultModelDir(dataset.name), options.pretrain)
  if (!existsSync(pretrainFile)) {
    throw new Error(
      `expected ${pretrainFile}: npm run sim -- --data ${options.data} --pretrain-epochs 1 --devices 0 makes it`,
    )
  }
  const { later, validation } = splitForFederation(dataset.train, 0.2, true)
  const counts = countItems(dataset.train, dataset.nItems)
  // The float16 release devices download.
  const global = decodeWeights(
    encodeWeights(decodeWeights(await readFile(pretrainFile)), { dtype: 'float16' }),
  )
  const score = async (file: WeightsFile) => {
    const report = await evaluateWeights(file, validation, { trainCounts: counts })
    return { recall20: report.metrics['recall@20']! * 100, cases: report.cases }
  }
  const before = await score(global)
  const model = importModelWeights(global)
  const sessions = later.slice(0, options.sessions)
  const result = await createLocalTrainer(model, {
    learningRate: options.lr,
    denseLearningRate: options.denseLr,
    epochs: options.epochs,
    trainable: options.trainable,
    optimizer: options.optimizer,
    inBatchNegatives: false,
    maxCases: 1_000_000,
    sliceMs: 1e9,
  }).train(sessions)
  const after = await score(await exportModelWeights(model))
  model.dispose()
  console.log(
    `${options.optimizer} lr ${options.lr} dense ${options.denseLr ?? options.lr} ${options.trainable}, ${sessions.length} sessions: ` +
      `validation Recall@20 ${before.recall20.toFixed(2)} → ${after.recall20.toFixed(2)} (${after.cases} cases)`,
  )
  // A results file, one entry per measured run (not a table of sessions).
  await run.append(
    options.results ?? path.join('bench', 'results', `tune-update-training-${dataset.name}.json`),
    { tool: 'tune-update-training', dataset: dataset.name },
    {
      settings: { ...options, sessions: sessions.length },
      status: result.status,
      validationCases: after.cases,
      recall20Before: before.recall20,
      recall20After: after.recall20,
    },
  )
}

runBenchmark({
  script: 'tune:update-training',
  parse: (argv) => readOptions(TUNE_FLAGS, argv),
  run: tuneUpdateTraining,
})
