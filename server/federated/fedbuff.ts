// Buffered asynchronous federated averaging (PROTOCOL.md P14–P18), as pure functions over flat
// arrays: where each update's values land, how much it weighs, when the buffer is published, and
// the noised, count-normalised step it makes. Storage and HTTP sit around this, never inside it.
import { addUpdateValues, type ModelShape } from '../../shared/federation-layout'
import type { UpdateLayout } from '../../shared/update-codec'
import type { PopularitySettings } from './popularity'
import type { SecureChannelSettings } from './secure-channel'

export { sliceSpan, type ModelShape } from '../../shared/federation-layout'

export interface FedBuffSettings {
  layout: UpdateLayout
  /** Updates per release: `K`. */
  bufferSize: number
  /** A release also happens `maxWaitMs` after the buffer's first update if it holds this many. */
  minBuffer: number
  maxWaitMs: number
  /** `S`: older base versions are rejected. */
  maxStaleness: number
  /** `E`: example counts above it weigh the same. */
  exampleCap: number
  /** `C`: the L2 bound of every update (P11). */
  clipNorm: number
  /** `η`. */
  serverLearningRate: number
  /**
   * P18's step: `sgd` adds η·Δ; `adam` is FedAdam (Reddi et al., 2021), η·m̂/(√v̂ + τ) from
   * moments of Δ kept across releases. Absent: `sgd`.
   */
  serverOptimizer?: 'sgd' | 'adam'
  /**
   * P18b, how a table row's Δ is normalised: `mean` (absent) divides by the updates covering the
   * row, as for dense weights; `sum` scales that mean by the buffer's size, so that Δ estimates
   * the buffer's total change of the row, as sequential SGD over the same sessions would make it.
   */
  tableAggregation?: 'mean' | 'sum'
  /**
   * Which table rows a release may move (1) or must keep (0); absent: all. A server that knows
   * which items its model never saw (added to the catalogue since it was trained) can confine
   * the table's noisy step (a sketch's, P8b) to them and leave trained rows as they are.
   */
  tableRows?: Uint8Array
  /** `σ`: the noise's standard deviation is σ·C; 0 turns noise off. */
  noiseMultiplier: number
  /** P28: how device-reported popularity becomes pools (with `layout.popularityBuckets`). */
  popularity?: PopularitySettings
  /**
   * The two-server channel (P29–P29c): with it, devices send sparse updates as secret shares to
   * this server and a helper, and `layout`, `clipNorm` and the noise above do not apply.
   */
  secure?: SecureChannelSettings
}

export type VersionCheck = 'current' | 'stale-ok' | 'too-stale' | 'unknown'

/** P14: how an update's base version relates to the current one. */
export function checkVersion(base: number, current: number, maxStaleness: number): VersionCheck {
  if (base > current || base < 1) return 'unknown'
  const staleness = current - base
  if (staleness > maxStaleness) return 'too-stale'
  return staleness === 0 ? 'current' : 'stale-ok'
}

/** P17: w = min(examples, E)/E · (1 + τ)^(−1/2), in (0, 1]. */
export function updateWeight(examples: number, staleness: number, exampleCap: number): number {
  return (Math.min(examples, exampleCap) / exampleCap) * (1 + staleness) ** -0.5
}

/** The running sums of one buffer. */
export interface Buffer {
  /** Σ w·u per coordinate: P dense values, then nItems·embedDim table values. */
  sums: Float64Array
  /** Updates covering each dense coordinate (P values), then each table row (nItems values). */
  counts: Uint32Array
  updates: number
  /** When the first update arrived (ms), or null while empty. */
  firstAtMs: number | null
}

export function createBuffer(shape: ModelShape): Buffer {
  return {
    sums: new Float64Array(shape.denseSize + shape.nItems * shape.embedDim),
    counts: new Uint32Array(shape.denseSize + shape.nItems),
    updates: 0,
    firstAtMs: null,
  }
}

/** Adds one accepted update (already validated) with weight `weight` to the buffer, in place. */
export function accumulate(
  buffer: Buffer,
  shape: ModelShape,
  update: { slice: number; layout: UpdateLayout; values: Float32Array },
  weight: number,
  nowMs: number,
): void {
  const { counts } = buffer
  addUpdateValues(buffer.sums, update.values, weight, update.slice, update.layout, shape, (j) => {
    counts[j]!++
  })
  buffer.updates++
  buffer.firstAtMs ??= nowMs
}

/** P16: publish at K updates, or after the wait with at least Kmin. */
export function shouldPublish(
  buffer: Pick<Buffer, 'updates' | 'firstAtMs'>,
  nowMs: number,
  settings: FedBuffSettings,
): boolean {
  if (buffer.updates >= settings.bufferSize) return true
  return (
    buffer.firstAtMs !== null &&
    buffer.updates >= settings.minBuffer &&
    nowMs - buffer.firstAtMs >= settings.maxWaitMs
  )
}

/** FedAdam's constants (Reddi et al., 2021: β₁ 0.9, β₂ 0.99, τ 10⁻³). */
export const SERVER_ADAM = { beta1: 0.9, beta2: 0.99, tau: 1e-3 }

/** FedAdam's state: first and second moments of Δ, dense then table, and the releases so far. */
export interface ServerMoments {
  m: Float32Array
  v: Float32Array
  step: number
}

export function createMoments(shape: ModelShape): ServerMoments {
  const size = shape.denseSize + shape.nItems * shape.embedDim
  return { m: new Float32Array(size), v: new Float32Array(size), step: 0 }
}

/**
 * P18: Δ_j = (Σ w·u_j + N(0, σ²C²)) / c_j for every covered coordinate (table rows × the buffer's
 * size with `tableAggregation: 'sum'`, P18b), then θ_j + η·Δ_j, or with
 * FedAdam θ_j + η·m̂_j/(√v̂_j + τ) (moments updated for covered coordinates only); the others
 * keep θ. `gaussian` draws N(0, 1). Returns new arrays; the inputs are not changed.
 */
export function applyBuffer(
  weights: { dense: Float32Array; table: Float32Array },
  buffer: Buffer,
  shape: ModelShape,
  settings: FedBuffSettings,
  gaussian: () => number,
  moments?: ServerMoments,
): { dense: Float32Array; table: Float32Array; moments?: ServerMoments } {
  const { denseSize: P, embedDim: d } = shape
  const noiseScale = settings.noiseMultiplier * settings.clipNorm
  const eta = settings.serverLearningRate
  const delta = (sum: number, count: number) =>
    (sum + (noiseScale > 0 ? noiseScale * gaussian() : 0)) / count
  let step: (j: number, delta: number) => number = (_, value) => eta * value
  let next: ServerMoments | undefined
  if (settings.serverOptimizer === 'adam') {
    const { beta1, beta2, tau } = SERVER_ADAM
    const from = moments ?? createMoments(shape)
    next = { m: from.m.slice(), v: from.v.slice(), step: from.step + 1 }
    const { m, v } = next
    const correct1 = 1 - beta1 ** next.step
    const correct2 = 1 - beta2 ** next.step
    step = (j, value) => {
      m[j] = beta1 * m[j]! + (1 - beta1) * value
      v[j] = beta2 * v[j]! + (1 - beta2) * value * value
      return (eta * (m[j]! / correct1)) / (Math.sqrt(v[j]! / correct2) + tau)
    }
  }
  const dense = weights.dense.slice()
  for (let j = 0; j < P; j++) {
    const count = buffer.counts[j]!
    if (count > 0) dense[j] = dense[j]! + step(j, delta(buffer.sums[j]!, count))
  }
  const table = weights.table.slice()
  const rowScale = settings.tableAggregation === 'sum' ? buffer.updates : 1
  for (let row = 0; row < shape.nItems; row++) {
    const count = buffer.counts[P + row]!
    if (count === 0 || settings.tableRows?.[row] === 0) continue
    for (let c = 0; c < d; c++) {
      const i = row * d + c
      table[i] = table[i]! + step(P + i, rowScale * delta(buffer.sums[P + i]!, count))
    }
  }
  return next ? { dense, table, moments: next } : { dense, table }
}
