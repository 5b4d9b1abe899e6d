// npm run bench:train [-- --data <folder>]: training examples/s and forward + top-20 latency for
// one session, per Node backend (cpu, wasm), at the dataset's full catalogue size. Medians over
// repeated runs; writes bench/results/train-speed.json (finetune-speed.json with --measures
// finetune: on-device fine-tuning steps, dense vs row-wise Adam, side by side).
import * as tf from '@tensorflow/tfjs-core'
import path from 'node:path'
import { runBenchmark, type BenchRun } from './harness'
import { int, list, text, readOptions, type Options } from './options'
import type { SessionDataset } from '../train/data/types'
import { createGruModel, DEFAULT_GRU_CONFIG, type GruModel } from '../model/gru-model'
import { createPopularitySampler } from '../model/negative-sampler'
import { createRandom } from '../shared/random'
import { encodeSessionBatch } from '../model/session-batch'
import { createTrainer, type LossKind, type Trainer } from '../model/train-step'
import type { PrefixCase } from '../model/prefix-cases'
import { countItems } from '../train/data/examples'
import { expandPrefixes } from '../model/prefix-cases'
import { loadDataset } from '../train/data/load-dataset'
import { sharedDataDir } from '../train/data/paths'
import { topKIndices } from '../model/eval/metrics'
import { planBatches } from '../train/fit'
import { setNodeBackend, type NodeBackend } from '../model/node-backend'
import { median } from './stats'

interface Row {
  backend: NodeBackend
  measure: string
  medianMs: number
  runs: number
  examplesPerSec?: number
}

export const TRAIN_SPEED_FLAGS = {
  data: text(path.join(sharedDataDir(), 'diginetica-srgnn')),
  backends: list(['wasm', 'cpu'] as const, ['wasm', 'cpu']),
  batch: int(512),
  /** train: offline steps and forward latency; finetune: on-device steps, dense vs sparse. */
  measures: list(['train', 'finetune'] as const, ['train', 'finetune']),
  /** Default: train-speed.json, or finetune-speed.json for a fine-tuning-only run (which must
   * not overwrite the offline rows). */
  results: text(),
}

export async function benchTrainSpeed(
  options: Options<typeof TRAIN_SPEED_FLAGS>,
  run: BenchRun,
): Promise<void> {
  const dataset = await loadDataset(options.data)
  const cases = expandPrefixes(dataset.train, { maxPrefixLen: DEFAULT_GRU_CONFIG.maxLen })
  const batches = planBatches(cases, options.batch, createRandom(1))
  const sessions = dataset.test.slice(0, 200)
  const measures = new Set(options.measures)
  const rows: Row[] = []
  for (const backend of options.backends) {
    await setNodeBackend(backend)
    if (measures.has('finetune')) {
      rows.push(...(await benchFineTuning(backend, dataset.nItems, sessions)))
    }
    if (measures.has('train'))
      rows.push(...(await benchOffline(backend, dataset, batches, sessions)))
  }
  const table = [
    '| backend | measure | median ms | examples/s | runs |',
    '| --- | --- | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.backend} | ${r.measure} | ${r.medianMs.toFixed(2)} | ${r.examplesPerSec ? Math.round(r.examplesPerSec) : ''} | ${r.runs} |`,
    ),
  ].join('\n')
  console.log(
    `\n${dataset.name}: ${dataset.nItems} items, d = ${DEFAULT_GRU_CONFIG.embedDim}\n\n${table}`,
  )
  const out =
    options.results ??
    path.join(
      'bench',
      'results',
      measures.has('train') ? 'train-speed.json' : 'finetune-speed.json',
    )
  await run.write(out, { dataset: dataset.name, nItems: dataset.nItems, rows })
}

/** Offline training steps (full and sampled softmax), then a device's forward + top-20. */
async function benchOffline(
  backend: NodeBackend,
  dataset: SessionDataset,
  batches: PrefixCase[][],
  sessions: Int32Array[],
): Promise<Row[]> {
  const rows: Row[] = []
  const batchSize = batches[0]?.length ?? 0
  // The pure-JS backend is ~50× slower: fewer repetitions keep the run short.
  const [warmup, steps, latencyRuns] = backend === 'cpu' ? [1, 3, 10] : [3, 15, 100]
  for (const loss of ['full', 'sampled'] as LossKind[]) {
    const model = createGruModel({ ...DEFAULT_GRU_CONFIG, nItems: dataset.nItems }, 1)
    const trainer = createTrainer(model, {
      learningRate: 0.001,
      loss,
      sampler: createPopularitySampler(countItems(dataset.train, dataset.nItems)),
      negatives: 2048,
    })
    const { times, examples } = await timeSteps(
      trainer,
      batches,
      model.config.maxLen,
      warmup,
      steps,
    )
    const total = times.reduce((a, b) => a + b, 0)
    rows.push({
      backend,
      measure: `train step, batch ${batchSize}, ${loss} softmax`,
      medianMs: median(times),
      runs: times.length,
      examplesPerSec: (examples / total) * 1000,
    })
    console.error(`${backend} ${loss}: ${median(times).toFixed(1)} ms/step`)
    trainer.dispose()
    if (loss === 'full') rows.push(await forwardLatency(backend, model, sessions, latencyRuns))
    model.dispose()
  }
  return rows
}

/** Inference as a device runs it: item vectors prepared once, then one session at a time. */
async function forwardLatency(
  backend: NodeBackend,
  model: GruModel,
  sessions: Int32Array[],
  runs: number,
): Promise<Row> {
  const itemsT = tf.tidy(() => tf.transpose(model.itemVectors()))
  const latencies: number[] = []
  for (let i = 0; i < runs + 5; i++) {
    const session = sessions[i % sessions.length]!
    const t0 = performance.now()
    const logits = tf.tidy(() =>
      tf.matMul(
        tf.mul(
          model.encode(encodeSessionBatch([session], model.config.maxLen)),
          model.config.scale,
        ),
        itemsT,
      ),
    )
    const scores = (await logits.data()) as Float32Array
    topKIndices(scores, 0, model.config.nItems, 20)
    logits.dispose()
    if (i >= 5) latencies.push(performance.now() - t0)
  }
  itemsT.dispose()
  return {
    backend,
    measure: 'forward + top-20, one session',
    medianMs: median(latencies),
    runs: latencies.length,
  }
}

/**
 * On-device fine-tuning steps as train-local.ts runs them (item table only, batch 16, 256 uniform
 * negatives), with dense Adam and with the row-wise Adam, side by side on the same batches. A run
 * is 40 steps from a fresh optimiser: the touched rows (and the sparse cost) grow along it.
 */
async function benchFineTuning(
  backend: NodeBackend,
  nItems: number,
  sessions: Int32Array[],
): Promise<Row[]> {
  const cases = expandPrefixes(sessions, { maxPrefixLen: DEFAULT_GRU_CONFIG.maxLen })
  const batches = planBatches(cases, 16, createRandom(2))
  const steps = backend === 'cpu' ? 10 : 40
  const rows: Row[] = []
  for (const sparseItems of [false, true]) {
    const model = createGruModel({ ...DEFAULT_GRU_CONFIG, nItems }, 1)
    const items = {
      ...model,
      variables: new Map([['item_embedding', model.variables.get('item_embedding')!]]),
    }
    const trainer = createTrainer(items, {
      learningRate: 0.003,
      loss: 'sampled',
      sampler: createPopularitySampler(new Int32Array(nItems).fill(1), { seed: 2 }),
      negatives: 256,
      sparseItems,
    })
    const { times } = await timeSteps(trainer, batches, model.config.maxLen, 0, steps)
    trainer.dispose()
    model.dispose()
    const adam = sparseItems ? 'row-wise Adam' : 'dense Adam'
    rows.push({
      backend,
      measure: `fine-tuning step, items only, batch 16, 256 negatives, ${adam} (steps 1–${steps})`,
      medianMs: median(times),
      runs: times.length,
      examplesPerSec: (16 * times.length * 1000) / times.reduce((a, b) => a + b, 0),
    })
    console.error(`${backend} fine-tuning, ${adam}: ${median(times).toFixed(1)} ms/step`)
  }
  return rows
}

/** Times `steps` trainer steps on `batches` (cycled) after `warmup` untimed ones. */
async function timeSteps(
  trainer: Trainer,
  batches: PrefixCase[][],
  maxLen: number,
  warmup: number,
  steps: number,
): Promise<{ times: number[]; examples: number }> {
  const times: number[] = []
  let examples = 0
  for (let i = 0; i < warmup + steps; i++) {
    const batch = batches[i % batches.length]!
    const encoded = encodeSessionBatch(
      batch.map((c) => c.prefix),
      maxLen,
    )
    const t0 = performance.now()
    await trainer.step(
      encoded,
      Int32Array.from(batch, (c) => c.target),
    )
    if (i >= warmup) {
      times.push(performance.now() - t0)
      examples += batch.length
    }
  }
  return { times, examples }
}

runBenchmark({
  script: 'bench:train',
  parse: (argv) => readOptions(TRAIN_SPEED_FLAGS, argv),
  run: benchTrainSpeed,
})
