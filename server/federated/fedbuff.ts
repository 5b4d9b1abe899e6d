// Buffered asynchronous releases (PROTOCOL.md P14–P16), as pure functions: how an update's base
// version relates to the current one, and when the buffer is published. What a release computes
// from the buffer is the two-server channel's (P29–P29c: secure-publisher.ts).
import type { PopularitySettings } from './popularity'
import type { SecureChannelSettings } from './secure-channel'

export interface FedBuffSettings {
  /** Updates per release: `K`. */
  bufferSize: number
  /** A release also happens `maxWaitMs` after the buffer's first update if it holds this many. */
  minBuffer: number
  maxWaitMs: number
  /** `S`: older base versions are rejected (an update must also have the current model, P29c). */
  maxStaleness: number
  /** P28: how the releases' item counts become pools. */
  popularity: PopularitySettings
  /** P30c: when a batch of outcome reports is summed, and the leader's half of its noise. */
  outcomes: OutcomeSettings
  /**
   * The two-server channel (P29–P29c): the helper, the sparse layout, the clip bound and the
   * step. Absent (no helper paired): the server takes no updates.
   */
  secure?: SecureChannelSettings
}

export interface OutcomeSettings {
  /** Reports of one experiment per batch at least (the helper has its own floor too). */
  minBatch: number
  /** The noise multiplier of the leader's half of the noise, N(0, (σ·clip)²/2) per cell. */
  sigma: number
}

export type VersionCheck = 'current' | 'stale-ok' | 'too-stale' | 'unknown'

/** P14: how an update's base version relates to the current one. */
export function checkVersion(base: number, current: number, maxStaleness: number): VersionCheck {
  if (base > current || base < 1) return 'unknown'
  const staleness = current - base
  if (staleness > maxStaleness) return 'too-stale'
  return staleness === 0 ? 'current' : 'stale-ok'
}

/** P16: publish at K updates, or after the wait with at least Kmin. */
export function shouldPublish(
  buffer: { updates: number; firstAtMs: number | null },
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
