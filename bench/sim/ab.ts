// npm run sim:ab -- [--data <folder>] [--model <file>]: does the trained model earn more clicks
// than popularity, and does the experiment machinery say so without crying wolf? Held-out
// sessions are devices; at each step a device is shown a list of `--list` items by its arm and
// clicks when the session's next item is on it (the click model). Devices send the
// product's outcome reports (clipped, per random group, split into two servers' shares), a
// release of `--batch` at a time, each server adding half of the noise σ (each of `--sigmas`);
// the operator looks after every release (bench/sim/ab-experiment.ts). Then
// `--aa` A/A experiments (both arms the model, a fresh hash key each) count how often the
// always-valid test, and how often peeking at the one-look interval, flags a difference that
// is not there. Writes bench/results/sim-ab-<dataset>.json.
import path from 'node:path'
import { loadShippedModel, modelTopLists } from '../model-lists'
import type { GruModel } from '../../model/gru-model'
import { topKIndices } from '../../model/eval/metrics'
import { setNodeBackend } from '../../model/node-backend'
import type { Experiment } from '../../shared/experiments'
import { ratioSums } from '../../shared/experiment-looks'
import { OUTCOME_CLIPS } from '../../shared/outcome-report'
import { createRandom, shuffleInPlace } from '../../shared/random'
import { countItems } from '../../train/data/examples'
import { loadDataset } from '../../train/data/load-dataset'
import { defaultModelDir } from '../../train/model-file'
import { createProgressLine, formatDuration } from '../../train/progress'
import { runBenchmark, type BenchRun } from '../harness'
import { int, num, numList, readOptions, text, type Options } from '../options'
import {
  clippedByArm,
  runExperiment,
  type DeviceOutcomes,
  type ExperimentRun,
} from './ab-experiment'

const AB_FLAGS = {
  data: text('../shared/data/diginetica-srgnn'),
  /** Default: the dataset's trained model in models/<dataset>/model.prw, run in shipped form. */
  model: text(),
  list: int(20),
  /** Devices a release sums: the federation's K (server/federated/defaults.ts). */
  batch: int(1000),
  sigmas: numList([0, 1], 0),
  aa: int(100),
  alpha: num(0.05, 1e-6, 0.5),
  /** mSPRT's τ relative to the arms' mean rate at the first look (mixtureTau). */
  minimumLift: num(0.1, 1e-6),
  seed: int(1, 0),
  /** Default: bench/results/sim-ab-<dataset>.json. */
  results: text(),
}
type AbOptions = Options<typeof AB_FLAGS>

const ARMS = ['popularity', 'model'] as const

/** Lists shown and clicked per session, under popularity and under the shipped model. */
async function deviceOutcomes(options: AbOptions): Promise<{
  devices: DeviceOutcomes[]
  dataset: string
  nItems: number
}> {
  const dataset = await loadDataset(options.data)
  const file = options.model ?? path.join(defaultModelDir(dataset.name), 'model.prw')
  const shipped = await loadShippedModel(file)
  const popular = new Set(
    topKIndices(
      Float32Array.from(countItems(dataset.train, dataset.nItems)),
      0,
      dataset.nItems,
      options.list,
    ),
  )
  const sessions = dataset.test.filter((s) => s.length >= 2)
  const clicks = await modelClicks(shipped, sessions, options.list)
  shipped.dispose()
  const devices = sessions.map((session, i): DeviceOutcomes => {
    let popularClicks = 0
    for (let k = 1; k < session.length; k++) if (popular.has(session[k]!)) popularClicks++
    return {
      id: `sim-device-${i}`,
      byArm: [
        [session.length - 1, popularClicks],
        [session.length - 1, clicks[i]!],
      ],
    }
  })
  shuffleInPlace(devices, createRandom(options.seed))
  return { devices, dataset: dataset.name, nItems: dataset.nItems }
}

/** Per session, how many of its steps had the next item in the model's top `list`. */
async function modelClicks(model: GruModel, sessions: Int32Array[], list: number) {
  const progress = createProgressLine(process.stderr, 15)
  const started = performance.now()
  const tops = await modelTopLists(model, sessions, list, (done, total) =>
    progress.update(`model lists: ${done}/${total}`),
  )
  let step = 0
  const clicks = Int32Array.from(sessions, (session) => {
    let hits = 0
    for (let k = 1; k < session.length; k++) if (tops[step++]!.includes(session[k]!)) hits++
    return hits
  })
  progress.done(`model lists: ${step} in ${formatDuration((performance.now() - started) / 1000)}`)
  return clicks
}

const experiment = (key: string, arms: readonly string[]): Experiment => ({
  id: 'sim-ab',
  key,
  arms: arms.map((name) => ({ name, share: 1 })),
})

/**
 * How far the servers' totals are from the devices' own, over the cells of the lists and clicks
 * they reported (every arm and group), against what the noise was stated to be: σ times the
 * metric's clip per cell and release, so σ · 20 · √releases for both.
 */
function noiseCheck(run: ExperimentRun, sigma: number) {
  let squares = 0
  let cells = 0
  for (const arm of [0, 1]) {
    for (const metric of ['lists', 'clicks'] as const) {
      const got = ratioSums(run.serverTotals, arm, 'for-you', metric).y
      const want = ratioSums(run.trueTotals, arm, 'for-you', metric).y
      for (const [g, value] of got.entries()) {
        squares += (value - want[g]!) ** 2
        cells++
      }
    }
  }
  const stated = sigma * OUTCOME_CLIPS.lists * Math.sqrt(run.looks.length)
  return { statedSd: stated, measuredRms: Math.sqrt(squares / cells), cells }
}

function summarise(run: ExperimentRun, sigma: number) {
  const last = run.looks.at(-1)!
  return {
    noise: noiseCheck(run, sigma),
    decidedAtDevices: run.decidedAt,
    devices: last.devices,
    armDevices: last.armDevices,
    rates: last.rates,
    lift: last.lift,
    interval: last.interval,
    alwaysValid: last.alwaysValid,
    pValue: last.pValue,
    serverEqualsTrue: run.serverTotals.every((v, c) => v === run.trueTotals[c]),
  }
}

const pct = (x: number) => `${(100 * x).toFixed(2)}`
const range = ([lo, hi]: [number, number]) => `[${pct(lo)}, ${pct(hi)}]`

async function simAb(options: AbOptions, run: BenchRun): Promise<void> {
  await setNodeBackend('wasm')
  const { devices, dataset, nItems } = await deviceOutcomes(options)
  const rows = []
  for (const sigma of options.sigmas) {
    const settings = { ...options, sigma, split: true }
    const ab = runExperiment(experiment(`sim-ab-${options.seed}`, ARMS), devices, settings)
    const summary = summarise(ab, sigma)
    // A/A: both arms the model; each run its own key (another split of the same devices).
    const sameArms = devices.map((d) => ({ id: d.id, byArm: [d.byArm[1]!, d.byArm[1]!] }))
    const clipped = sameArms.map(clippedByArm)
    let sequential = 0
    let peeking = 0
    for (let r = 0; r < options.aa; r++) {
      const key = `sim-aa-${options.seed}-${r}`
      const seed = options.seed * 1000 + r
      const aa = runExperiment(
        experiment(key, ['a', 'b']),
        sameArms,
        { ...settings, seed, split: false },
        clipped,
      )
      if (aa.decidedAt !== null) sequential++
      if (aa.peekingFlagged) peeking++
    }
    console.log(
      `\nσ = ${sigma}: CTR popularity ${pct(summary.rates[0]!)} %, model ${pct(summary.rates[1]!)} %` +
        ` over ${summary.devices} devices (${summary.armDevices.join(' / ')}); lift ${pct(summary.lift)} points,` +
        ` always-valid ${range(summary.alwaysValid)}, one-look ${range(summary.interval)};` +
        ` interval excludes 0 after ${summary.decidedAtDevices ?? 'never'} devices.` +
        `\n  The servers' totals against the devices' own, per cell: RMS ${summary.noise.measuredRms.toFixed(1)},` +
        ` stated σ·clip·√releases ${summary.noise.statedSd.toFixed(1)} (${summary.noise.cells} cells).` +
        `\n  A/A, ${options.aa} runs: the always-valid test flagged ${sequential},` +
        ` peeking at the one-look interval after every release flagged ${peeking}.`,
    )
    rows.push({ sigma, ...summary, aa: { runs: options.aa, sequential, peeking }, looks: ab.looks })
  }
  await run.write(options.results ?? path.join('bench', 'results', `sim-ab-${dataset}.json`), {
    dataset,
    nItems,
    devices: devices.length,
    arms: ARMS,
    options,
    rows,
  })
}

runBenchmark({ script: 'sim:ab', parse: (argv) => readOptions(AB_FLAGS, argv), run: simAb })
