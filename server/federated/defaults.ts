// Default federation settings for a model (PROTOCOL.md P8, P16–P20, P28), sized from the model so
// a slice never exceeds its group: at most 16,384 dense values and 150 table rows, which keeps an
// update of a d = 100 model at 62,820 bytes, and a popularity sketch of up to 1,024 buckets in
// what is left of the 64 KB budget (64,872 bytes for DIGINETICA).
import type { ModelShape } from '../../shared/federation-layout'
import { updateByteLength, type UpdateLayout } from '../../shared/update-codec'
import type { FedBuffSettings } from './fedbuff'
import { DEFAULT_POPULARITY } from './popularity'

export const DEFAULT_DENSE_COORDINATES = 16_384
export const DEFAULT_SLICE_ROWS = 150
export const DEFAULT_POPULARITY_BUCKETS = 1024
/** The budget of one update (the "≤ 64 KB per device per round"). */
export const UPDATE_BYTE_BUDGET = 64 * 1024

/**
 * P28: as many buckets as fit the budget beside the model's values, at most 1,024 (BENCHMARKS.md:
 * 150 buckets ranked popular items no better than the pre-training log); none below 256.
 */
export function popularityBucketsFor(layout: UpdateLayout): number {
  // One bucket's update (the longer header included), then two bytes for each further bucket.
  const room = (UPDATE_BYTE_BUDGET - updateByteLength({ ...layout, popularityBuckets: 1 })) / 2
  const buckets = Math.min(DEFAULT_POPULARITY_BUCKETS, 1 + Math.floor(room))
  return buckets >= 256 ? buckets : 0
}

export function defaultSettings(shape: ModelShape): FedBuffSettings {
  const layout: UpdateLayout = {
    denseCoordinates: Math.min(DEFAULT_DENSE_COORDINATES, shape.denseSize),
    sliceRows: Math.min(DEFAULT_SLICE_ROWS, shape.nItems),
    embedDim: shape.embedDim,
  }
  const popularityBuckets = popularityBucketsFor(layout)
  return {
    layout: popularityBuckets > 0 ? { ...layout, popularityBuckets } : layout,
    // The noise of a release is σ·C per coordinate over the c updates covering it, so a release
    // needs many updates before the noise stops drowning the signal: with σ = 1 and K = 10,
    // `npm run sim` on YooChoose took Recall@20 from 26.5 to 0.6 in one release (BENCHMARKS.md).
    // A shop with few shoppers therefore publishes rarely or never; its model stays the trained one.
    bufferSize: 1000,
    minBuffer: 200,
    maxWaitMs: 60 * 60_000,
    maxStaleness: 5,
    // One session is a few cases: with E = 100 its weight was 0.04 and a release moved the
    // model by 4 % of its updates' mean. E = 4 gives most single-session devices weight 1.
    exampleCap: 4,
    clipNorm: 1,
    serverLearningRate: 1,
    noiseMultiplier: 1,
    popularity: DEFAULT_POPULARITY,
  }
}

/** How a device trains the global weights for an update (the manifest's federation block). */
export interface UpdateTraining {
  learningRate: number
  denseLearningRate?: number
  epochs: number
}

/**
 * Plain SGD (P7), chosen on YooChoose's validation split (never a test split) with `npm run
 * tune:update-training`: one epoch over 1,000 later sessions at 0.5 for the item rows and 0.001
 * for the other weights took Recall@20 from 26.88 to 32.56, where one rate for all (0.5: 3.00,
 * 0.005: 28.76), 0.5/0.005 (31.87) or Adam (0.001: 31.33, and sign-like updates, train-step.ts)
 * did worse.
 */
export const DEFAULT_UPDATE_TRAINING: UpdateTraining = {
  learningRate: 0.5,
  denseLearningRate: 0.001,
  epochs: 1,
}

/**
 * The sparse update (P29) of issue 12, chosen on DIGINETICA's validation split with `npm run sim
 * -- --channel sparse-plaintext` (BENCHMARKS.md, "Sparse updates"): at 8,000 devices a local rate
 * of 0.05 for the rows (0.5, P7's, overshoots once a row moves by one device's whole change) and
 * 64 public negatives sent reached 33.82 against the central ceiling's 33.64. C = 30 clips
 * nothing without noise (median norm 0.47) and keeps K · C under 2^15 for K = 1,000.
 */
export const DEFAULT_SPARSE = {
  layout: { maxRows: 32, denseCoordinates: 8192, negativeRows: 64 },
  training: { learningRate: 0.05, denseLearningRate: 0.001, epochs: 1 } as UpdateTraining,
  clipNorm: 30,
  bufferSize: 1000,
} as const

export interface RateLimits {
  /** Tokens, and uploads, per issued client id a minute (counted apart). */
  perClientPerMinute: number
  /**
   * New client ids issued per site a minute (P21); replays of a solved challenge are not counted.
   * Tokens and uploads have no site-wide quota: ids are what cost work, and a site-wide quota on
   * tokens let 11,927 free ids lock every device out for a minute. Counted by each replica apart.
   */
  perSitePerMinute: number
  /** Keys each rate limiter holds at most (rate-limiter.ts): its memory is bounded. */
  maxKeys: number
}

/**
 * PROTOCOL.md P21, Defaults. 1,200 new ids a minute leaves room for a busy shop's new shoppers;
 * an attacker who pays for more holds back only devices that have no id yet.
 */
export const DEFAULT_RATE_LIMITS: RateLimits = {
  perClientPerMinute: 30,
  perSitePerMinute: 1200,
  maxKeys: 100_000,
}

/** How client ids are issued (P21): the work asked for, and how long challenges and ids live. */
export interface ClientIdSettings {
  /** Leading zero bits of SHA-256 a device must find: 2^bits hashes on average. */
  bits: number
  challengeTtlMs: number
  /** An id is refused (E_CLIENT) this long after its challenge's expiry; the device re-solves. */
  idTtlMs: number
}

/**
 * 20 bits: 1.7 s on average in a Chromium worker on this machine, once a week per device (phones
 * several times that), and 1,829 CPU-s with node:crypto, 135 natively, for the 1,000 ids that
 * flood one release (`npm run bench:client-id`, BENCHMARKS.md). Each bit doubles both sides.
 */
export const DEFAULT_CLIENT_IDS: ClientIdSettings = {
  bits: 20,
  challengeTtlMs: 10 * 60_000,
  idTtlMs: 7 * 24 * 60 * 60_000,
}
