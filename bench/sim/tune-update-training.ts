// npm run tune:update-training -- [--data <folder>] [--optimizer sgd|adam] [--lr 0.5]
// [--dense-lr 0.001] [--trainable all|items] [--sessions 1000] [--epochs 1]
// How a device should train for a federated update, chosen without the test split: the model
// pre-trained on the first 20 % of the training sessions (as `npm run sim` caches it) is trained
// in one process with the worker's own local trainer, as createUpdateTrainer configures it
// (no in-session negatives), on the first N later sessions, and scored on the validation split
// (the last 5 % of the training sessions, which `npm run sim -- --on validation` holds out too).
// Appends its run to bench/results/tune-update-training-<dataset>.json.
import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { createLocalTrainer } from '../../client/worker/federated/train-local'
import { exportModelWeights, importModelWeights } from '../../model/model-weights'
import { decodeWeights, encodeWeights, type WeightsFile } from '../../shared/weights-codec'
import { countItems, splitForFederation } from '../../train/data/examples'
import { loadDataset } from '../../train/data/load-dataset'
import { evaluateWeights } from '../../model/eval/gru-scorer'
import { defaultModelDir } from '../../train/model-file'
import { setNodeBackend } from '../../model/node-backend'
import { describeCommand, describeMachine } from '../../train/progress'

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: '../shared/data/yoochoose-clicks-100k-sessionrec' },
    optimizer: { type: 'string', default: 'sgd' },
    lr: { type: 'string', default: '0.5' },
    'dense-lr': { type: 'string' },
    trainable: { type: 'string', default: 'all' },
    sessions: { type: 'string', default: '1000' },
    epochs: { type: 'string', default: '1' },
    pretrain: { type: 'string', default: 'pretrain-0.2-e1.prw' },
  },
  strict: true,
})

async function main(): Promise<void> {
  const optimizer = values.optimizer
  if (optimizer !== 'sgd' && optimizer !== 'adam')
    throw new Error(`--optimizer: expected sgd or adam, got ${optimizer}`)
  const trainable = values.trainable
  if (trainable !== 'all' && trainable !== 'items')
    throw new Error(`--trainable: expected all or items, got ${trainable}`)
  await setNodeBackend('wasm')
  const dataset = await loadDataset(values.data!)
  const pretrainFile = path.join(defaultModelDir(dataset.name), values.pretrain!)
  if (!existsSync(pretrainFile)) {
    throw new Error(
      `expected ${pretrainFile}: npm run sim -- --data ${values.data} --pretrain-epochs 1 --devices 0 makes it`,
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
  const sessions = later.slice(0, Number(values.sessions))
  const run = await createLocalTrainer(model, {
    learningRate: Number(values.lr),
    denseLearningRate: values['dense-lr'] === undefined ? undefined : Number(values['dense-lr']),
    epochs: Number(values.epochs),
    trainable,
    optimizer,
    inBatchNegatives: false,
    maxCases: 1_000_000,
    sliceMs: 1e9,
  }).train(sessions)
  const after = await score(await exportModelWeights(model))
  model.dispose()
  const row = {
    date: new Date().toISOString(),
    command: describeCommand('tune:update-training'),
    machine: describeMachine(),
    settings: { ...values, sessions: sessions.length },
    status: run.status,
    validationCases: after.cases,
    recall20Before: before.recall20,
    recall20After: after.recall20,
  }
  console.log(
    `${optimizer} lr ${values.lr} dense ${values['dense-lr'] ?? values.lr} ${trainable}, ${sessions.length} sessions: ` +
      `validation Recall@20 ${before.recall20.toFixed(2)} → ${after.recall20.toFixed(2)} (${after.cases} cases)`,
  )
  const out = path.resolve('bench', 'results', `tune-update-training-${dataset.name}.json`)
  // A results file, one entry per measured run (not a table of sessions).
  const runs = existsSync(out)
    ? (JSON.parse(await readFile(out, 'utf8')) as { runs: unknown[] }).runs
    : []
  const results = { tool: 'tune-update-training', dataset: dataset.name, runs: [...runs, row] }
  await writeFile(out, JSON.stringify(results, null, 2) + '\n')
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? `${error.name}: ${error.message}` : error)
  process.exit(1)
})
