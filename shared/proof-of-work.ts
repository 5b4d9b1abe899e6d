// The proof of work a device does once for its client id (PROTOCOL.md P21), checked by the server
// with the same code: find a nonce such that SHA-256(SHA-256(challenge) ‖ nonce) starts with
// `bits` zero bits. The inner hash makes every attempt one 40-byte message (one compression).
import { sha256 } from '@noble/hashes/sha2.js'

/** Above this a device would hash for hours (2³² ≈ 4.3 billion attempts on average). */
export const MAX_WORK_BITS = 32

export interface SolvedWork {
  nonce: number
  /** Attempts made, this one included: 2^bits on average. */
  hashes: number
}

export interface SolveOptions {
  /** Hash this long, then give the event loop a turn (the worker answers `recommend` meanwhile). */
  sliceMs?: number
  /** Stops the search between slices (consent withdrawn, worker closing). */
  signal?: AbortSignal
  now?: () => number
  /** How a slice ends; default a `setTimeout(0)` turn, as the local trainer's slices. */
  pause?: () => Promise<void>
}

const HASHES_PER_CLOCK_READ = 1024

/** Whether `nonce` solves `challenge` at `bits`; false for anything that is not a valid nonce. */
export function checkWork(challenge: string, nonce: unknown, bits: number): boolean {
  if (!isNonce(nonce)) return false
  const { message, nonceView } = workMessage(challenge)
  writeNonce(nonceView, nonce)
  return leadingZeroBits(sha256(message)) >= bits
}

/**
 * Tries nonces 0, 1, 2, … in time slices until one meets `bits`. Throws the signal's reason when
 * aborted. The attempts reuse one hasher: noble's one-shot `sha256()` allocates a hasher per call
 * and ran at half the rate in Node (bench/client-id.ts).
 */
export async function solveWork(
  challenge: string,
  bits: number,
  options: SolveOptions = {},
): Promise<SolvedWork> {
  if (!Number.isInteger(bits) || bits < 0 || bits > MAX_WORK_BITS) {
    throw new RangeError(`expected work bits from 0 to ${MAX_WORK_BITS}, got ${bits}`)
  }
  const { sliceMs = 30, signal, now = () => performance.now() } = options
  const pause = options.pause ?? (() => new Promise<void>((resolve) => setTimeout(resolve, 0)))
  const { message, nonceView } = workMessage(challenge)
  const fresh = sha256.create()
  const hasher = sha256.create()
  const digest = new Uint8Array(32)
  let nonce = 0
  for (;;) {
    signal?.throwIfAborted()
    const sliceStart = now()
    do {
      for (let i = 0; i < HASHES_PER_CLOCK_READ; i++, nonce++) {
        if (nonce > Number.MAX_SAFE_INTEGER) throw new RangeError('ran out of nonces')
        writeNonce(nonceView, nonce)
        fresh._cloneInto(hasher) // back to the initial state without allocating
        hasher.update(message)
        hasher.digestInto(digest)
        if (leadingZeroBits(digest) >= bits) return { nonce, hashes: nonce + 1 }
      }
    } while (now() - sliceStart < sliceMs)
    await pause()
  }
}

/** Zero bits before the first one bit, most significant bit of byte 0 first. */
export function leadingZeroBits(hash: Uint8Array): number {
  let bits = 0
  for (const byte of hash) {
    if (byte === 0) {
      bits += 8
      continue
    }
    return bits + Math.clz32(byte) - 24
  }
  return bits
}

/** SHA-256 of the challenge's UTF-8 bytes, then 8 bytes for the nonce (`nonceView`). */
function workMessage(challenge: string): { message: Uint8Array; nonceView: DataView } {
  const message = new Uint8Array(40)
  message.set(sha256(new TextEncoder().encode(challenge)))
  return { message, nonceView: new DataView(message.buffer, 32, 8) }
}

/** The nonce as an unsigned 64-bit big-endian integer. */
function writeNonce(view: DataView, nonce: number): void {
  view.setUint32(0, Math.floor(nonce / 2 ** 32))
  view.setUint32(4, nonce >>> 0)
}

function isNonce(raw: unknown): raw is number {
  return Number.isSafeInteger(raw) && (raw as number) >= 0
}
