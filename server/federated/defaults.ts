// Default federation settings (PROTOCOL.md P14–P16, P21, P26, P28, P29): when a release happens,
// how devices train for an update, the sparse layout, how client ids and rate limits work, and
// how versions are scored. server/config.ts applies them.
import type { FedBuffSettings } from './fedbuff'
import { DEFAULT_POPULARITY } from './popularity'

/** The buffer's defaults (the channel's own settings come with the helper, secure-channel.ts). */
export function defaultSettings(): FedBuffSettings {
  return {
    // Privacy noise (not built yet on the two-server channel, issue 12) needs many updates per
    // release before it stops drowning the signal: with σ = 1 and K = 10 one release took
    // YooChoose's Recall@20 from 26.5 to 0.6 in `npm run sim` (BENCHMARKS.md). A shop with few
    // shoppers therefore publishes rarely or never; its model stays the trained one.
    bufferSize: 1000,
    minBuffer: 200,
    maxWaitMs: 60 * 60_000,
    maxStaleness: 5,
    popularity: DEFAULT_POPULARITY,
    // The helper's defaults (server/helper/service.ts): a batch's totals show no device alone,
    // and the two halves of the noise make σ = 1 clip per cell.
    outcomes: { minBatch: 200, sigma: 1 },
  }
}

/** How a device trains the global weights for an update (the manifest's federation block). */
export interface UpdateTraining {
  learningRate: number
  denseLearningRate?: number
  epochs: number
}

/**
 * The sparse update (P29) of issue 12, chosen on DIGINETICA's validation split with `npm run sim
 * -- --channel sparse-plaintext` (BENCHMARKS.md, "Sparse updates"): a local rate of 0.05 for the
 * rows (0.5, P7's, overshoots once a row moves by one device's whole change), 64 public negatives
 * sent, two local epochs, C = 1 and no dense window. The window carried nothing the rows do not
 * and two epochs learn more: at 8,000 devices 34.74 against 33.82 (one epoch, C = 30, 8,192
 * window coordinates) and the central ceiling's 33.64; at 35,000 38.58 against 36.82 (38.26
 * with two epochs; ceiling 41.74); at all 140,003 40.86 against 40.64 (ceiling 50.94). C = 1
 * clips one update in six to ten (median norm 0.47–0.59) and keeps K · C far under 2^15.
 * Without the window a helper body is 32 KB smaller and fits 64 KiB up to a million items.
 */
export const DEFAULT_SPARSE = {
  layout: { maxRows: 32, denseCoordinates: 0, negativeRows: 64 },
  training: { learningRate: 0.05, denseLearningRate: 0.001, epochs: 2 } as UpdateTraining,
  clipNorm: 1,
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

/** How the server scores versions on the operator's validation set (P26). */
export interface EvaluationSettings {
  /** Cases scored per version (the first N of the set, deterministic). */
  maxCases: number
  /** `evaluated` promotion: a candidate may trail "current" by this many Recall@20 points. */
  tolerancePoints: number
}

export const DEFAULT_EVALUATION: EvaluationSettings = { maxCases: 5_000, tolerancePoints: 0.5 }
