import { describe, expect, it } from 'vitest'
import { issueToken, sliceFor, signToken, verifyToken } from './tokens'

const secret = new TextEncoder().encode('another test secret')

describe('upload tokens (PROTOCOL.md P21)', () => {
  it('round-trips, and expires', () => {
    const { token, slice, exp } = issueToken('shop', 'c1', 4, secret, 1000, 500)
    expect(verifyToken(token, secret, 1499)).toEqual({
      ok: true,
      token: { site: 'shop', client: 'c1', version: 4, slice, exp },
    })
    expect(verifyToken(token, secret, 1500)).toMatchObject({
      ok: false,
      reason: 'the token has expired',
    })
  })

  it('refuses another secret, a changed payload and junk, without throwing', () => {
    const token = signToken({ site: 's', client: 'c', version: 1, slice: 2, exp: 10 }, secret)
    expect(verifyToken(token, new Uint8Array(4), 0).ok).toBe(false)
    const [payload, signature] = token.split('.')
    const changed = Buffer.from(
      JSON.stringify({ site: 's', client: 'c', version: 1, slice: 3, exp: 10 }),
    ).toString('base64url')
    expect(verifyToken(`${changed}.${signature}`, secret, 0).ok).toBe(false)
    for (const junk of [null, 42, '', '.', 'a.b.c', `${payload}.`, 'x'.repeat(5000)]) {
      expect(verifyToken(junk, secret, 0).ok).toBe(false)
    }
    const notAToken = signToken({ site: 's' } as never, secret)
    expect(verifyToken(notAToken, secret, 0)).toMatchObject({ ok: false })
  })

  it('P8: gives a client the same slice at a version, spread evenly over clients', () => {
    expect(sliceFor('c1', 7, secret)).toBe(sliceFor('c1', 7, secret))
    expect(sliceFor('c1', 8, secret)).not.toBe(sliceFor('c1', 7, secret))
    // 2,000 clients over 10 buckets of slice mod 10: each within ±30 % of 200.
    const buckets = new Array(10).fill(0)
    for (let i = 0; i < 2000; i++) buckets[sliceFor(`client-${i}`, 1, secret) % 10]++
    for (const count of buckets) expect(Math.abs(count - 200)).toBeLessThan(60)
  })
})
