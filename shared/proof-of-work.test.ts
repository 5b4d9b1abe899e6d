import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { checkWork, leadingZeroBits, solveWork } from './proof-of-work'

/** The work hash spelled out with node:crypto: SHA-256(SHA-256(challenge) ‖ nonce as u64 BE). */
function referenceHash(challenge: string, nonce: number): Buffer {
  const message = Buffer.alloc(40)
  createHash('sha256').update(challenge).digest().copy(message)
  message.writeBigUInt64BE(BigInt(nonce), 32)
  return createHash('sha256').update(message).digest()
}

describe('proof of work for client ids (PROTOCOL.md P21)', () => {
  it('counts leading zero bits from the first byte’s top bit', () => {
    expect(leadingZeroBits(Uint8Array.of(0x80, 0))).toBe(0)
    expect(leadingZeroBits(Uint8Array.of(0x01, 0xff))).toBe(7)
    expect(leadingZeroBits(Uint8Array.of(0, 0, 0x10))).toBe(19)
    expect(leadingZeroBits(new Uint8Array(4))).toBe(32)
  })

  it('[P21] finds the first nonce whose hash starts with the asked zero bits', async () => {
    const challenge = 'c2VlZC1mb3ItdGhlLXRlc3Q.10.1700000000000.c2lnbmF0dXJlLWlzLWhlcmU'
    const { nonce, hashes } = await solveWork(challenge, 10)
    expect(hashes).toBe(nonce + 1)
    expect(leadingZeroBits(referenceHash(challenge, nonce))).toBeGreaterThanOrEqual(10)
    for (let n = 0; n < nonce; n++) {
      expect(leadingZeroBits(referenceHash(challenge, n))).toBeLessThan(10)
    }
    expect(checkWork(challenge, nonce, 10)).toBe(true)
  })

  it('[P21] refuses a wrong nonce, another challenge’s nonce, and anything not a nonce', async () => {
    const challenge = 'one-challenge'
    const { nonce } = await solveWork(challenge, 12)
    expect(checkWork(challenge, nonce, 12)).toBe(true)
    expect(checkWork(challenge, nonce - 1, 12)).toBe(nonce === 0)
    expect(checkWork('another-challenge', nonce, 12)).toBe(
      leadingZeroBits(referenceHash('another-challenge', nonce)) >= 12,
    )
    for (const bad of [String(nonce), -1, 1.5, NaN, 2 ** 53, null, undefined, [nonce]]) {
      expect(checkWork(challenge, bad, 0)).toBe(false)
    }
  })

  it('gives the event loop a turn between time slices, and stops when aborted', async () => {
    let clock = 0
    let pauses = 0
    // Every clock read advances 1 ms: with 1 ms slices, each slice is one batch of 1,024 hashes.
    const { hashes } = await solveWork('sliced', 14, {
      sliceMs: 1,
      now: () => clock++,
      pause: async () => void pauses++,
    })
    expect(pauses).toBe(Math.floor((hashes - 1) / 1024))

    const stop = new AbortController()
    const solving = solveWork('never-finishes', 32, {
      signal: stop.signal,
      pause: async () => stop.abort(new Error('consent withdrawn')),
    })
    await expect(solving).rejects.toThrow('consent withdrawn')
  })

  it('asks for 0 to 32 bits only', async () => {
    await expect(solveWork('x', 33)).rejects.toThrow(RangeError)
    await expect(solveWork('x', -1)).rejects.toThrow(RangeError)
    expect((await solveWork('x', 0)).nonce).toBe(0)
  })
})
