// The two-server channel's settings on the leader (PROTOCOL.md P29–P29c): where the helper is,
// the sparse layout devices split their updates for, the release's public negatives and the
// server's step. Plain data: the job thread gets a copy.
import { createHash } from 'node:crypto'
import { createRandom } from '../../shared/random'
import { secureParamsFor, type SecureParams } from '../../shared/secure-update'
import type { SparseLayout, SparseShape, SparseStep } from '../../shared/sparse-update'
import { DEFAULT_SPARSE } from './defaults'

export interface SecureChannelSettings {
  /**
   * Where devices send their helper bodies (the manifest's `federation.helper`): the helper's
   * origin, or a path on the leader's own (the `npm start` stand-in mounts one at /helper).
   */
  helperUrl: string
  /** How the leader reaches the helper (absolute); the same as `helperUrl` when that is. */
  helperLink: string
  /** The pairing secret the helper was started with; never served. */
  helperToken: string
  layout: SparseLayout
  /** The model's shape: the layout's parameters and the negatives depend on it. */
  shape: SparseShape
  /** P11's bound of every contribution (C); K · C must stay under 2^15 (P29). */
  clipNorm: number
  /** The server's step: η of the rows, and of the dense window and the negatives (P29). */
  step: SparseStep
}

/** The channel for a model of `shape` with DEFAULT_SPARSE's layout and a step of 1. */
export function defaultSecureChannel(
  shape: SparseShape,
  helper: Pick<SecureChannelSettings, 'helperUrl' | 'helperLink' | 'helperToken'>,
): SecureChannelSettings {
  const { maxRows, denseCoordinates, negativeRows } = DEFAULT_SPARSE.layout
  return {
    ...helper,
    layout: {
      maxRows,
      embedDim: shape.embedDim,
      denseCoordinates: Math.min(denseCoordinates, shape.denseSize),
      negativeRows: Math.min(negativeRows, shape.nItems),
    },
    shape,
    clipNorm: DEFAULT_SPARSE.clipNorm,
    step: { tableRate: 1, denseRate: 1 },
  }
}

/** What the GET /v1/federation counters may show of the channel: all but the pairing secret. */
export function publicChannel(settings: SecureChannelSettings) {
  const { helperToken: _secret, helperLink: _link, ...shown } = settings
  return shown
}

/**
 * The public negatives of a version (P29): `count` distinct rows drawn from its model's SHA-256,
 * so that every replica, the manifest and the release agree without storing them, and versions
 * with the same model (a shop change, P25) have the same ones.
 */
export function negativesFor(modelSha256: string, shape: SparseShape, count: number): Int32Array {
  const seed = createHash('sha256').update(`negatives:${modelSha256}`).digest().readUInt32LE(0)
  const random = createRandom(seed)
  const chosen = new Set<number>()
  const n = Math.min(count, shape.nItems)
  while (chosen.size < n) chosen.add(Math.floor(random() * shape.nItems))
  return Int32Array.from(chosen)
}

/** The channel's public parameters (secureParamsFor keeps the last ones built). */
export function channelParams(settings: SecureChannelSettings): SecureParams {
  return secureParamsFor(settings.layout, settings.shape)
}
