// The leader's upload on the two-server channel (PROTOCOL.md P29c): the device's leader body
// (party 0, shared/secure-update.ts) followed by its score of the base version (P27), the one
// plaintext a device tells the leader beyond the header: cases scored and hits@20 (u16 each) and
// Σ 1/rank over the hits (float32), 8 bytes. The helper's upload is its body alone.
import { readShareHeader, shareBodyBytes, type SecureParams } from './secure-update'

/** Cases a device scores the base version on (P27); the rest of its cases go unscored. */
export const MAX_SCORED_CASES = 100

/** Full-ranking results of the base version on a device's cases, summed (P27). */
export interface DeviceScore {
  /** Cases scored, 0 … MAX_SCORED_CASES (0: not scored). */
  cases: number
  /** Cases whose next item ranked in the top 20. */
  hits20: number
  /** Σ 1/rank over those hits (MRR@20 × cases). */
  reciprocalRank20: number
}

export const NO_SCORE: DeviceScore = { cases: 0, hits20: 0, reciprocalRank20: 0 }

export const SCORE_BYTES = 8

/** A leader upload's exact size for `params`. */
export function leaderUploadBytes(params: SecureParams): number {
  return shareBodyBytes(params, 0) + SCORE_BYTES
}

/** Why a score is not one a device could have measured, or null when it is. */
export function scoreProblem(score: DeviceScore): string | null {
  const { cases, hits20, reciprocalRank20: rr } = score
  // Each hit adds 1/rank with rank 1 … 20; float32 storage rounds the sum by a hair.
  const slack = 1e-3 * Math.max(1, hits20)
  const counts = (n: number) => Number.isInteger(n) && n >= 0 && n <= MAX_SCORED_CASES
  const fine =
    counts(cases) &&
    counts(hits20) &&
    hits20 <= cases &&
    Number.isFinite(rr) &&
    rr >= hits20 / 20 - slack &&
    rr <= hits20 + slack
  return fine
    ? null
    : `expected a score of 0–${MAX_SCORED_CASES} cases, hits ≤ cases and hits/20 ≤ Σ1/rank ≤ hits, got ${JSON.stringify(score)}`
}

export function encodeLeaderUpload(body: Uint8Array, score: DeviceScore): Uint8Array {
  const problem = scoreProblem(score)
  if (problem) throw new RangeError(problem)
  if (readShareHeader(body).party !== 0)
    throw new RangeError('expected the leader’s body (party 0)')
  const bytes = new Uint8Array(body.length + SCORE_BYTES)
  bytes.set(body)
  const view = new DataView(bytes.buffer, body.length, SCORE_BYTES)
  view.setUint16(0, score.cases, true)
  view.setUint16(2, score.hits20, true)
  view.setFloat32(4, score.reciprocalRank20, true)
  return bytes
}

/**
 * The body and score of a leader upload for `params`; throws a RangeError naming what is wrong
 * (size, magic, party, score). The body's keys are checked later, at the release.
 */
export function decodeLeaderUpload(
  bytes: Uint8Array,
  params: SecureParams,
): { body: Uint8Array; score: DeviceScore } {
  const expected = leaderUploadBytes(params)
  if (bytes.length !== expected)
    throw new RangeError(`expected a leader upload of ${expected} bytes, got ${bytes.length}`)
  const body = bytes.subarray(0, bytes.length - SCORE_BYTES)
  if (readShareHeader(body).party !== 0)
    throw new RangeError('expected the leader’s body (party 0), got the helper’s')
  const view = new DataView(bytes.buffer, bytes.byteOffset + body.length, SCORE_BYTES)
  const score = {
    cases: view.getUint16(0, true),
    hits20: view.getUint16(2, true),
    reciprocalRank20: view.getFloat32(4, true),
  }
  const problem = scoreProblem(score)
  if (problem) throw new RangeError(problem)
  return { body, score }
}
