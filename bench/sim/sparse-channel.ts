// `npm run sim` (its plaintext scenario): the plaintext sparse channel of issue 12, simulation
// only and never served. Each device trains with the worker's own code (compute-sparse-update.ts)
// from the served (float16) model and hands its contribution *in the clear* to one in-process
// server, which adds it into the release's sums (shared/sparse-update.ts) and, every K devices,
// steps each row by its own mean. It is exactly what the two servers of the secure channel
// compute, with nothing hidden: the accuracy the secure channel inherits. With `secure` (the
// simulation's secure scenario) every contribution also travels as two share bodies (shared/secure-update.ts)
// to an in-process leader and helper, the release is made from their combined shares, and the
// run stops if those differ by one bit from the plaintext sums.
import { createHash } from 'node:crypto'
import { computeSparseUpdate } from '../../client/worker/federated/compute-sparse-update'
import { createNodeCipher } from '../../server/federated/node-cipher'
import { createNobleCipher } from '../../shared/noble-cipher'
import { placeRows } from '../../shared/row-buckets'
import {
  addShareBodies,
  combineShares,
  splitContribution,
  secureParamsFor,
  verifyShareBody,
  type SecureParams,
} from '../../shared/secure-update'
import { joinWeights, splitWeights } from '../../shared/federation-layout'
import { createRandom, standardNormal } from '../../shared/random'
import {
  addContribution,
  applySparseSums,
  checkContribution,
  createSparseSums,
  FIXED_POINT_RANGE,
  toFixed,
  withoutRows,
  type SparseContribution,
  type SparseLayout,
  type SparseShape,
  type SparseStep,
  type SparseSums,
} from '../../shared/sparse-update'
import { decodeWeights, encodeWeights, type WeightsFile } from '../../shared/weights-codec'
import type { LocalTrainerOptions } from '../../model/train-local'
import { createProgressLine, formatDuration } from '../../train/progress'
import { median } from '../stats'

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
  /**
   * Carry every contribution through the two-server channel (shared/secure-update.ts) as well,
   * publish from the combined shares, and stop if they differ from the plaintext sums by a bit.
   */
  secure?: boolean
  seed?: number
  /**
   * Lab (issue 12's noise, not in the product yet): Gaussian noise on each release's sums, as
   * the two servers' halves would add up to (one draw of the sum's variance): N(0, σ²C²) on every
   * row, window and negative coordinate, N(0, σ²·maxRows) on every row's count (a device's
   * counts have L2 norm ≤ √maxRows); rows whose noisy count is under `minCount` do not move.
   */
  noise?: { multiplier: number; minCount: number }
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
  /** Rows cuckoo placement could not fit (row-buckets.ts): sent by neither channel. */
  droppedRows: number
  /** SHA-256 of each published version's float16 model, v2 on: equal across channels. */
  modelHashes: string[]
  /**
   * With `secure`: the largest body per server, and the median ms per update of each side (a
   * server's: verifying its keys at intake, plus its part of the release's batch add).
   */
  secure?: {
    leaderBytes: number
    helperBytes: number
    deviceMs: number
    leaderMs: number
    helperMs: number
  }
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
  // Both channels place the viewed rows in the public buckets, so that they sum the same rows.
  const params = secureParamsFor(o.layout, shape)
  const secure = o.secure ? createSecureChannel(params, shape) : undefined
  secure?.reset(negativeRows)
  let droppedRows = 0
  const modelHashes: string[] = []
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
    const slice = Math.floor(random() * 2 ** 32)
    const update = await computeSparseUpdate(served, [o.sessions[i]!], {
      slice,
      layout: o.layout,
      negativeRows,
      clipNorm: o.clipNorm,
      training: { ...o.training, seed: i + 1 },
    })
    if (update) {
      checkContribution(update.contribution, o.layout, shape)
      const placed = placeRows(update.contribution.rows, params.buckets.params, createRandom(i + 1))
      droppedRows += placed.dropped.length
      const contribution = withoutRows(update.contribution, placed.dropped, shape.embedDim)
      addContribution(sums, contribution, shape.embedDim)
      secure?.carry(contribution, placed.bucketRow, { baseVersion: version, slice }, i + 1)
      contributions++
      rows += contribution.rows.length
      norms.push(update.norm)
      if (update.clipped) clipped++
      if (update.viewed > o.layout.maxRows) truncated++
    }
    if (sums.contributions === o.buffer) {
      const combined = secure ? secure.release() : sums
      if (secure) expectSameSums(combined, sums, version + 1)
      const released = o.noise ? noised(combined, o.noise, o.layout, o.clipNorm, random) : combined
      const next = applySparseSums(splitWeights(master), released, o.step, shape.embedDim)
      master = joinWeights(master, next.dense, next.table)
      version++
      const published = encodeWeights(master, { dtype: 'float16' })
      modelHashes.push(createHash('sha256').update(published).digest('hex'))
      served = decodeWeights(published)
      negativeRows = drawNegatives(shape.nItems, o.layout.negativeRows, version)
      sums = createSparseSums(shape, negativeRows)
      secure?.reset(negativeRows)
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
    droppedRows,
    modelHashes,
    ...(secure && { secure: secure.report() }),
  }
}

/**
 * The two-server side: each contribution split into the device's two bodies, checked by both
 * servers at intake, kept, and added by each server in one batch at the release; the release
 * is the two shares combined. Times each party per update.
 */
function createSecureChannel(params: SecureParams, shape: SparseShape) {
  const ciphers = { device: createNobleCipher(), server: createNodeCipher() }
  const timings = { device: [] as number[], leader: [] as number[], helper: [] as number[] }
  const bodyBytes = [0, 0]
  // Each server's share of the release under way (reset() starts one), and the bodies it has
  // checked at intake and will add at the release.
  let shares = {
    leader: createSparseSums(shape, new Int32Array(0)),
    helper: createSparseSums(shape, new Int32Array(0)),
  }
  let kept = { leader: [] as Uint8Array[], helper: [] as Uint8Array[] }
  return {
    /** A new release, with its public negatives. */
    reset(negativeRows: Int32Array) {
      shares = {
        leader: createSparseSums(shape, negativeRows),
        helper: createSparseSums(shape, negativeRows),
      }
      kept = { leader: [], helper: [] }
    },
    carry(
      contribution: SparseContribution,
      bucketRow: Int32Array,
      header: { baseVersion: number; slice: number },
      device: number,
    ) {
      const t0 = performance.now()
      const bodies = splitContribution(
        contribution,
        bucketRow,
        { ...header, idempotencyKey: randomBytes(16) },
        params,
        randomBytes,
        ciphers.device,
      )
      const t1 = performance.now()
      // Check, then keep: each server proves its keys; an update whose two digests differ
      // enters neither sum (PROTOCOL.md P29b). The simulation's devices are honest.
      const leaderProof = verifyShareBody(bodies[0], 0, params, ciphers.server)
      const t2 = performance.now()
      const helperProof = verifyShareBody(bodies[1], 1, params, ciphers.server)
      if (!equalBytes(leaderProof, helperProof))
        throw new Error(`device ${device}: the servers' proofs differ for an honest update`)
      kept.leader.push(bodies[0])
      kept.helper.push(bodies[1])
      timings.device.push(t1 - t0)
      timings.leader.push(t2 - t1)
      timings.helper.push(performance.now() - t2)
      bodyBytes[0] = Math.max(bodyBytes[0]!, bodies[0].length)
      bodyBytes[1] = Math.max(bodyBytes[1]!, bodies[1].length)
    },
    release(): SparseSums {
      // Each server adds its release's bodies in one batch; the time is spread over them.
      for (const role of ['leader', 'helper'] as const) {
        const t0 = performance.now()
        addShareBodies(shares[role], kept[role], role === 'leader' ? 0 : 1, params, ciphers.server)
        const each = (performance.now() - t0) / kept[role].length
        const checks = timings[role]
        for (let k = checks.length - kept[role].length; k < checks.length; k++) checks[k]! += each
      }
      kept = { leader: [], helper: [] }
      return combineShares(shares.leader, shares.helper)
    },
    report() {
      return {
        leaderBytes: bodyBytes[0]!,
        helperBytes: bodyBytes[1]!,
        deviceMs: median(timings.device),
        leaderMs: median(timings.leader),
        helperMs: median(timings.helper),
      }
    },
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, k) => v === b[k])
}

function randomBytes(n: number): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(n))
}

/** The secure channel's release must be the plaintext one, bit for bit; anything else stops. */
function expectSameSums(a: SparseSums, b: SparseSums, version: number): void {
  const parts = ['table', 'counts', 'dense', 'denseCounts', 'negatives'] as const
  for (const part of parts) {
    const x = a[part]
    const y = b[part]
    if (x.length !== y.length || x.some((v, k) => v !== y[k]))
      throw new Error(`v${version}: the two servers' ${part} differ from the plaintext sums`)
  }
}

/**
 * `sums` with the release's noise (SparseChannelOptions.noise), in fixed point; a row whose noisy
 * count is under `minCount` gets count 0, so that applySparseSums leaves it as it was.
 */
function noised(
  sums: SparseSums,
  noise: { multiplier: number; minCount: number },
  layout: SparseLayout,
  clipNorm: number,
  random: () => number,
): SparseSums {
  const gaussian = () => standardNormal(random)
  const valueScale = noise.multiplier * clipNorm
  const noisy = (values: Int32Array) =>
    Int32Array.from(values, (v) => (v + toFixed(valueScale * gaussian())) | 0)
  const countScale = noise.multiplier * Math.sqrt(layout.maxRows)
  const counts = Int32Array.from(sums.counts, (c) => {
    const n = Math.round(c + countScale * gaussian())
    return n >= noise.minCount ? n : 0
  })
  return {
    ...sums,
    table: noisy(sums.table),
    counts,
    dense: noisy(sums.dense),
    negatives: noisy(sums.negatives),
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
