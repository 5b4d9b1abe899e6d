// `npm run sim -- --channel sparse-plaintext`: the plaintext sparse channel of issue 12, simulation
// only and never served. Each device trains with the worker's own code (compute-sparse-update.ts)
// from the served (float16) model and hands its contribution *in the clear* to one in-process
// server, which adds it into the release's sums (shared/sparse-update.ts) and, every K devices,
// steps each row by its own mean. It is exactly what the two servers of the secure channel
// compute, with nothing hidden: the accuracy the secure channel inherits.
import { computeSparseUpdate } from '../../client/worker/federated/compute-sparse-update'
import { joinWeights, splitWeights } from '../../shared/federation-layout'
import { createRandom } from '../../shared/random'
import {
  addContribution,
  applySparseSums,
  checkContribution,
  createSparseSums,
  FIXED_POINT_RANGE,
  type SparseLayout,
  type SparseStep,
} from '../../shared/sparse-update'
import { decodeWeights, encodeWeights, type WeightsFile } from '../../shared/weights-codec'
import type { LocalTrainerOptions } from '../../client/worker/federated/train-local'
import { createProgressLine, formatDuration } from '../progress'

export interface SparseChannelOptions {
  global: WeightsFile
  /** One session per device, in the order they arrive. */
  sessions: readonly Int32Array[]
  layout: SparseLayout
  /** K: contributions per release. */
  buffer: number
  clipNorm: number
  step: SparseStep
  training: LocalTrainerOptions
  evalEvery: number
  /** Scores a published version (the simulation's, not the federation's, time). */
  evaluate: (file: WeightsFile, version: number, devices: number) => Promise<void>
  seed?: number
}

export interface SparseChannelReport {
  versions: number
  contributions: number
  clipped: number
  /** Devices that viewed more rows than an update carries. */
  truncated: number
  /** Mean rows per contribution, and contributions per second (evaluation excluded). */
  rowsPerContribution: number
  contributionsPerSecond: number
  /** Median norm before clipping: what `--clip` cut. */
  medianNorm: number
}

/** Runs the devices through the channel; calls `evaluate` on v1's successors as configured. */
export async function runSparseChannel(o: SparseChannelOptions): Promise<SparseChannelReport> {
  const shape = splitWeights(o.global).shape
  if (o.buffer * o.clipNorm >= FIXED_POINT_RANGE)
    throw new RangeError(
      `--buffer × --clip must stay under ${FIXED_POINT_RANGE} (int32 fixed-point sums), got ${o.buffer * o.clipNorm}`,
    )
  const random = createRandom(o.seed ?? 1)
  let master = o.global
  let version = 1
  // What devices download: the float16 model the server publishes (P10), not the float32 master.
  let served = decodeWeights(encodeWeights(master, { dtype: 'float16' }))
  let negativeRows = drawNegatives(shape.nItems, o.layout.negativeRows, version)
  let sums = createSparseSums(shape, negativeRows)
  let contributions = 0
  let clipped = 0
  let truncated = 0
  let rows = 0
  const norms: number[] = []
  let evalMs = 0
  let evaluated = 1
  const started = performance.now()
  const progress = createProgressLine()
  for (let i = 0; i < o.sessions.length; i++) {
    const update = await computeSparseUpdate(served, [o.sessions[i]!], {
      slice: Math.floor(random() * 2 ** 32),
      layout: o.layout,
      negativeRows,
      clipNorm: o.clipNorm,
      training: { ...o.training, seed: i + 1 },
    })
    if (update) {
      checkContribution(update.contribution, o.layout, shape)
      addContribution(sums, update.contribution, shape.embedDim)
      contributions++
      rows += update.contribution.rows.length
      norms.push(update.norm)
      if (update.clipped) clipped++
      if (update.viewed > o.layout.maxRows) truncated++
    }
    if (sums.contributions === o.buffer) {
      const next = applySparseSums(splitWeights(master), sums, o.step, shape.embedDim)
      master = joinWeights(master, next.dense, next.table)
      version++
      served = decodeWeights(encodeWeights(master, { dtype: 'float16' }))
      negativeRows = drawNegatives(shape.nItems, o.layout.negativeRows, version)
      sums = createSparseSums(shape, negativeRows)
      if ((version - 1) % o.evalEvery === 0 || i === o.sessions.length - 1) {
        const t0 = performance.now()
        await o.evaluate(served, version, i + 1)
        evaluated = version
        evalMs += performance.now() - t0
      }
    }
    const seconds = (performance.now() - started - evalMs) / 1000
    progress.update(
      `device ${i + 1}/${o.sessions.length} · ${(contributions / seconds).toFixed(1)} contributions/s · v${version} · ETA ${formatDuration(((o.sessions.length - i - 1) * seconds) / (i + 1))}`,
    )
  }
  const seconds = (performance.now() - started - evalMs) / 1000
  if (evaluated !== version) await o.evaluate(served, version, o.sessions.length)
  norms.sort((a, b) => a - b)
  return {
    versions: version,
    contributions,
    clipped,
    truncated,
    rowsPerContribution: contributions ? rows / contributions : 0,
    contributionsPerSecond: contributions / seconds,
    medianNorm: norms[Math.floor(norms.length / 2)] ?? 0,
  }
}

/** The release's public negatives: `count` distinct rows, uniformly, seeded by the version. */
export function drawNegatives(nItems: number, count: number, version: number): Int32Array {
  const random = createRandom(version * 2_654_435_761)
  const chosen = new Set<number>()
  const n = Math.min(count, nItems)
  while (chosen.size < n) chosen.add(Math.floor(random() * nItems))
  return Int32Array.from(chosen)
}
