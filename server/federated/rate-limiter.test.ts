import { describe, expect, it } from 'vitest'
import { createRateLimiter } from './rate-limiter'

describe('the bounded rate limiter (PROTOCOL.md P21)', () => {
  it('allows `limit` calls per key and window, keys apart', () => {
    let now = 0
    const limiter = createRateLimiter({ limit: 2, maxKeys: 10, now: () => now })
    expect([limiter.take('a'), limiter.take('a'), limiter.take('a')]).toEqual([true, true, false])
    expect(limiter.take('b')).toBe(true)
    now += 59_999
    expect(limiter.take('a')).toBe(false)
    now += 1
    expect(limiter.take('a')).toBe(true)
  })

  it('[P21] never holds more than maxKeys keys, however many it is given', () => {
    const limiter = createRateLimiter({ limit: 1, maxKeys: 1000, now: () => 0 })
    for (let i = 0; i < 250_000; i++) limiter.take(`fresh-${i}`)
    expect(limiter.size).toBe(1000)
  })

  it('[P21] makes room by evicting the key whose window started first', () => {
    let now = 0
    const limiter = createRateLimiter({ limit: 1, maxKeys: 2, now: () => now })
    limiter.take('a')
    now += 10
    limiter.take('b')
    now += 10
    // a is used after b, but its window started first and ends first: it makes room.
    expect(limiter.take('a')).toBe(false)
    expect(limiter.take('c')).toBe(true)
    expect(limiter.has('a')).toBe(false)
    expect([limiter.has('b'), limiter.has('c')]).toEqual([true, true])
    expect(limiter.take('b')).toBe(false) // still counted
    now = 60_000
    expect(limiter.take('b')).toBe(false) // b's window started at 10
    now = 60_010
    expect(limiter.take('b')).toBe(true) // a new window for b, now the newest
    expect(limiter.take('d')).toBe(true) // evicts c, the oldest window
    expect([limiter.has('b'), limiter.has('c'), limiter.has('d')]).toEqual([true, false, true])
  })

  it('drops windows that have ended as new keys arrive', () => {
    let now = 0
    const limiter = createRateLimiter({ limit: 1, maxKeys: 100, now: () => now })
    for (let i = 0; i < 50; i++) limiter.take(`old-${i}`)
    now = 60_000
    for (let i = 0; i < 25; i++) limiter.take(`new-${i}`)
    // Each call drops up to two ended windows from the front: 50 old ones in 25 calls.
    expect(limiter.size).toBe(25)
    expect(limiter.has('old-49')).toBe(false)
  })

  it('remembers keys for windowMs with no limit (the replay memory of client ids)', () => {
    let now = 0
    const seen = createRateLimiter({
      limit: Infinity,
      windowMs: 600_000,
      maxKeys: 3,
      now: () => now,
    })
    expect(seen.has('id')).toBe(false)
    seen.take('id')
    now = 599_999
    expect(seen.has('id')).toBe(true)
    now = 600_000
    expect(seen.has('id')).toBe(false)
    expect(() => createRateLimiter({ limit: 1, maxKeys: 0, now: () => 0 })).toThrow(RangeError)
  })
})
