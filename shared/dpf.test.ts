import { chacha20 } from '@noble/ciphers/chacha.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex } from '@noble/hashes/utils.js'
import { describe, expect, it } from 'vitest'
import { createNodeCipher } from '../server/federated/node-cipher'
import {
  type DpfParams,
  dpfKeyBytes,
  evaluateDpfAt,
  evaluateDpfInto,
  generateDpfKeys,
  parseDpfKey,
} from './dpf'
import { createNobleCipher } from './noble-cipher'
import { createRandom } from './random'

// Keys are made with noble (the worker's AES) throughout; the full domain of the real size is
// evaluated with node:crypto (the server's), since noble's table AES would take a few seconds for
// the twenty evaluations there. One test evaluates that size with both and compares bit for bit.
const noble = createNobleCipher()
const node = createNodeCipher()

/** Reproducible key randomness: a ChaCha20 stream (a CSPRNG) under a key made from `seed`. */
function createRandomBytes(seed: number): (n: number) => Uint8Array {
  const key = new Uint8Array(32)
  new DataView(key.buffer).setUint32(0, seed, true)
  let call = 0
  return (n) => {
    const nonce = new Uint8Array(12)
    new DataView(nonce.buffer).setUint32(0, call++, true)
    return chacha20(key, nonce, new Uint8Array(n))
  }
}

/**
 * Where two int32 arrays first differ, with both values, or null: vitest's deep equality walks a
 * 4.3-million-entry typed array element by element and takes seconds.
 */
function firstDifference(actual: Int32Array, expected: Int32Array) {
  if (actual.length !== expected.length) return { length: actual.length, expected: expected.length }
  for (let i = 0; i < actual.length; i++)
    if (actual[i] !== expected[i]) return { at: i, actual: actual[i], expected: expected[i] }
  return null
}

function randomBeta(m: number, random: () => number): Int32Array {
  return Int32Array.from({ length: m }, () => (random() * 2 ** 32) | 0)
}

/** Both servers' full-domain shares, and their sum (what the aggregate reveals). */
function evaluateBoth(
  keys: Uint8Array[][],
  params: DpfParams,
  domainSize: number,
  cipher = noble,
): { shares: [Int32Array, Int32Array]; sum: Int32Array } {
  const shares: [Int32Array, Int32Array] = [
    new Int32Array(domainSize * params.payloadLength),
    new Int32Array(domainSize * params.payloadLength),
  ]
  for (const pair of keys)
    for (const party of [0, 1] as const)
      evaluateDpfInto(pair[party]!, party, params, domainSize, cipher, shares[party])
  return { shares, sum: shares[0].map((v, i) => (v + shares[1][i]!) | 0) }
}

/** The plaintext the shares must add up to: Σ β_i placed at α_i. */
function pointSums(points: Array<[number, Int32Array]>, domainSize: number, m: number) {
  const sums = new Int32Array(domainSize * m)
  for (const [alpha, beta] of points)
    for (let k = 0; k < m; k++) sums[alpha * m + k] = (sums[alpha * m + k]! + beta[k]!) | 0
  return sums
}

describe('DPF: a small domain (2^4 points, 13 evaluated, m = 3)', () => {
  const params = { domainBits: 4, payloadLength: 3 }
  const domainSize = 13

  it('the two shares add up to β at α and to 0 everywhere else, for every α', () => {
    const random = createRandom(1)
    const randomBytes = createRandomBytes(1)
    for (let alpha = 0; alpha < domainSize; alpha++) {
      const beta = randomBeta(3, random)
      const keys = generateDpfKeys(params, alpha, beta, randomBytes, noble)
      const { shares, sum } = evaluateBoth([keys], params, domainSize)
      expect(sum).toEqual(pointSums([[alpha, beta]], domainSize, 3))
      // Each share alone is noise, not f: it is nonzero off α too.
      expect(shares[0].some((v, i) => v !== 0 && Math.floor(i / 3) !== alpha)).toBe(true)
    }
  })

  it('a point beyond domainSize (a pruned subtree) adds 0 to every evaluated x', () => {
    const randomBytes = createRandomBytes(2)
    for (const alpha of [13, 14, 15]) {
      const keys = generateDpfKeys(params, alpha, Int32Array.of(1, 2, 3), randomBytes, noble)
      expect(evaluateBoth([keys], params, domainSize).sum).toEqual(new Int32Array(domainSize * 3))
      const at = [0, 1].map((p) => evaluateDpfAt(keys[p]!, p as 0 | 1, params, alpha, noble))
      expect(at[0]!.map((v, k) => (v + at[1]![k]!) | 0)).toEqual(Int32Array.of(1, 2, 3))
    }
  })

  it('evaluateDpfAt gives each party the share that the full evaluation gives', () => {
    const random = createRandom(3)
    const randomBytes = createRandomBytes(3)
    for (let alpha = 0; alpha < domainSize; alpha += 4) {
      const keys = generateDpfKeys(params, alpha, randomBeta(3, random), randomBytes, noble)
      const { shares } = evaluateBoth([keys], params, domainSize)
      for (const party of [0, 1] as const)
        for (let x = 0; x < domainSize; x++)
          expect(evaluateDpfAt(keys[party]!, party, params, x, noble)).toEqual(
            shares[party].slice(3 * x, 3 * x + 3),
          )
    }
  })

  it('wraps mod 2^32: β of int32 extremes comes back exactly', () => {
    const beta = Int32Array.of(-(2 ** 31), 2 ** 31 - 1, -1)
    const keys = generateDpfKeys(params, 5, beta, createRandomBytes(4), noble)
    expect(evaluateBoth([keys], params, domainSize).sum).toEqual(
      pointSums([[5, beta]], domainSize, 3),
    )
  })
})

describe('DPF: the real size (2^16 points, 43,097 rows, m = 101)', () => {
  const params = { domainBits: 16, payloadLength: 101 }
  const domainSize = 43_097
  const m = params.payloadLength

  it('a key is 700 bytes: 24 + 17 per level + 4 per value', () => {
    expect(dpfKeyBytes(params)).toBe(24 + 17 * 16 + 4 * 101)
    expect(dpfKeyBytes(params)).toBe(700)
    const keys = generateDpfKeys(params, 7, new Int32Array(m), createRandomBytes(5), noble)
    expect(keys.map((k) => k.length)).toEqual([700, 700])
  })

  it('adds β at α (the last row) and 0 at the 43,096 others', () => {
    const beta = randomBeta(m, createRandom(6))
    const keys = generateDpfKeys(params, domainSize - 1, beta, createRandomBytes(6), noble)
    const { sum } = evaluateBoth([keys], params, domainSize, node)
    expect(firstDifference(sum, pointSums([[domainSize - 1, beta]], domainSize, m))).toBeNull()
  })

  it('ten keys in one buffer per server sum to the ten points, two on one α included', () => {
    const random = createRandom(7)
    const randomBytes = createRandomBytes(7)
    const alphas = [0, 1, 2, 4_096, 20_000, 20_000, 32_767, 32_768, 43_000, 43_096]
    const points = alphas.map((alpha): [number, Int32Array] => {
      const beta = randomBeta(m, random)
      beta[m - 1] = 1 // the count, as the sparse update sends it
      return [alpha, beta]
    })
    const keys = points.map(([alpha, beta]) =>
      generateDpfKeys(params, alpha, beta, randomBytes, noble),
    )
    const { sum } = evaluateBoth(keys, params, domainSize, node)
    expect(firstDifference(sum, pointSums(points, domainSize, m))).toBeNull()
    expect(sum[20_000 * m + m - 1]).toBe(2)
  })
})

describe('DPF: the ciphers', () => {
  it('noble and node:crypto encrypt identically, and match AES-128 of the public key', () => {
    // Independent answer: `openssl enc -aes-128-ecb -nopad -K 706f636b…7631` of 16 zero bytes.
    expect(bytesToHex(noble.encryptBlocks(new Uint8Array(16)))).toBe(
      '0d70a665bcd0ce245f824f48126e85a0',
    )
    const randomBytes = createRandomBytes(8)
    for (const blocks of [0, 1, 4, 1_000]) {
      const input = randomBytes(16 * blocks)
      expect(bytesToHex(node.encryptBlocks(input))).toBe(bytesToHex(noble.encryptBlocks(input)))
    }
    // A view at an odd offset into a larger buffer reads only its own bytes.
    const backing = randomBytes(16 * 9 + 3)
    const view = backing.subarray(3, 3 + 16 * 9)
    expect(bytesToHex(node.encryptBlocks(view))).toBe(bytesToHex(noble.encryptBlocks(view.slice())))
    expect(() => node.encryptBlocks(new Uint8Array(15))).toThrow(/whole 16-byte blocks/)
  })

  it('keys made with either cipher are the same bytes and evaluate the same with either', () => {
    const params = { domainBits: 16, payloadLength: 101 }
    const beta = randomBeta(101, createRandom(9))
    const [byNoble, byNode] = [noble, node].map((cipher) =>
      generateDpfKeys(params, 12_345, beta, createRandomBytes(9), cipher),
    )
    expect(byNode!.map(bytesToHex)).toEqual(byNoble!.map(bytesToHex))
    const [withNoble, withNode] = [noble, node].map(
      (cipher) => evaluateBoth([byNoble!], params, 43_097, cipher).shares,
    )
    expect(firstDifference(withNode![0], withNoble![0])).toBeNull()
    expect(firstDifference(withNode![1], withNoble![1])).toBeNull()
  })

  it('the key format is pinned: fixed seeds give the same bytes in every release', () => {
    // Devices and servers of different releases must agree on tweaks, bit order and layout:
    // change these only with the format byte. The digests were reproduced by a separate Python
    // implementation of Fig. 1 written from this file's format description (AES from the
    // cryptography package), so they check the layout, not only its stability.
    const counting = (from: number) => () => Uint8Array.from({ length: 32 }, (_, i) => from + i)
    const small = generateDpfKeys(
      { domainBits: 4, payloadLength: 6 },
      9,
      Int32Array.of(1, -2, 3, -4, 5, -6),
      counting(0),
      noble,
    )
    const beta = Int32Array.from({ length: 101 }, (_, k) => (7919 * k * k - 2 ** 31 + k) | 0)
    const real = generateDpfKeys(
      { domainBits: 16, payloadLength: 101 },
      43_096,
      beta,
      counting(100),
      noble,
    )
    expect([...small, ...real].map((k) => bytesToHex(sha256(k)))).toEqual([
      '9c7efd14e4a76683750da96de4d1edd75d1edc352e8c6646d9319a9aa01fda9c',
      '298665ad2e88c62cad2184713b6fef5202499870c4fb8e687144b06a4ddd44fc',
      '84b347e4152127fd85c1d2d729d6e0c7d8c9991d2e4a4ef1d0dea3793de72dc3',
      '7c4ba76c5e504d717f72d4e9d960e76c6ad7930160ca73828685cad73667cb31',
    ])
  })
})

describe('DPF: hostile keys', () => {
  const params = { domainBits: 4, payloadLength: 3 }
  const [key0, key1] = generateDpfKeys(
    params,
    6,
    Int32Array.of(1, 2, 3),
    createRandomBytes(11),
    noble,
  )
  const edited = (at: number, value: number) => {
    const copy = key0!.slice()
    copy[at] = value
    return copy
  }

  it('rejects a wrong length, format, party, domain, payload length or control byte', () => {
    expect(dpfKeyBytes(params)).toBe(104)
    const cases: Array<[Uint8Array, RegExp]> = [
      [key0!.subarray(0, 103), /expected a DPF key of 104 bytes .* got 103/],
      [new Uint8Array([...key0!, 0]), /expected a DPF key of 104 bytes .* got 105/],
      [new Uint8Array(0), /expected a DPF key of 104 bytes .* got 0/],
      [key0!.subarray(0, 5), /got 5/],
      [edited(0, 2), /expected DPF key format 1, got 2/],
      [edited(1, 2), /expected a DPF key for party 0 or 1, got 2/],
      [edited(2, 16), /expected a DPF key for domainBits 4, got 16/],
      [edited(3, 1), /expected a zero reserved header byte, got 1/],
      [edited(4, 101), /expected a DPF key for payloadLength 3, got 101/],
      [edited(24 + 16, 4), /expected control-bit corrections 0–3 at level 0, got 4/],
    ]
    for (const [bytes, message] of cases) {
      expect(() => parseDpfKey(bytes, params)).toThrow(RangeError)
      expect(() => parseDpfKey(bytes, params)).toThrow(message)
    }
    // The same key, read with other parameters, names the mismatch rather than the length.
    expect(() => parseDpfKey(key0!, { domainBits: 16, payloadLength: 3 })).toThrow(
      /domainBits 16, got 4/,
    )
  })

  it('rejects a key evaluated as the other party, bad domain sizes and short buffers', () => {
    const into = new Int32Array(16 * 3)
    expect(() => evaluateDpfInto(key1!, 0, params, 13, noble, into)).toThrow(
      /expected a DPF key for party 0, got one for party 1/,
    )
    expect(() => evaluateDpfAt(key0!, 1, params, 3, noble)).toThrow(/party 1/)
    expect(() => evaluateDpfInto(key0!, 0, params, 17, noble, into)).toThrow(/\[0, 16\], got 17/)
    expect(() => evaluateDpfInto(key0!, 0, params, 13, noble, new Int32Array(38))).toThrow(
      /at least 39 sums/,
    )
    expect(() => evaluateDpfAt(key0!, 0, params, 16, noble)).toThrow(/x in \[0, 16\), got 16/)
    expect(() =>
      generateDpfKeys(params, 16, Int32Array.of(1, 2, 3), createRandomBytes(0), noble),
    ).toThrow(/alpha in \[0, 16\), got 16/)
    expect(() =>
      generateDpfKeys(params, 1, Int32Array.of(1, 2), createRandomBytes(0), noble),
    ).toThrow(/expected 3 values of beta, got 2/)
    expect(() => dpfKeyBytes({ domainBits: 31, payloadLength: 3 })).toThrow(/domainBits in/)
    expect(() => dpfKeyBytes({ domainBits: 4, payloadLength: 0 })).toThrow(/payloadLength in/)
  })

  it('random key bodies under a valid header write only into [0, domainSize·m)', () => {
    const randomBytes = createRandomBytes(12)
    const random = createRandom(12)
    for (let trial = 0; trial < 200; trial++) {
      const key = new Uint8Array([...key0!.subarray(0, 8), ...randomBytes(96)])
      for (let level = 0; level < 4; level++) key[24 + 17 * level + 16]! &= 3
      const domainSize = 1 + Math.floor(random() * 16)
      const sentinel = 0x5a5a5a5a
      const into = new Int32Array(16 * 3 + 8).fill(sentinel)
      evaluateDpfInto(key, 0, params, domainSize, noble, into)
      expect(into.subarray(domainSize * 3).every((v) => v === sentinel)).toBe(true)
    }
  })
})

describe('DPF: one server learns nothing about α', () => {
  it('the output conversion separates its blocks: no two 4-value blocks of a share coincide', () => {
    // With one tweak for every block, Convert(s) would repeat every 4 values, and the key's
    // CW_k − CW_(k+4) = ±(β_k − β_(k+4)) would hand each server differences of β.
    const params = { domainBits: 4, payloadLength: 12 }
    const keys = generateDpfKeys(params, 2, new Int32Array(12), createRandomBytes(17), noble)
    const share = new Int32Array(16 * 12)
    evaluateDpfInto(keys[0], 0, params, 16, noble, share)
    const blocks = new Set<string>()
    for (let at = 0; at < share.length; at += 4) blocks.add(share.subarray(at, at + 4).join())
    expect(blocks.size).toBe(share.length / 4)
  })

  // 2,000 keys with α = 3 and 2,000 with α = 9 (their first bits differ: 0011, 1001). Either
  // party's key bodies must look like uniform bits in both groups, alike. Bounds are z = 6.5 per bit
  // (≈ 8·10⁻¹¹ each for uniform bits, < 10⁻⁶ over all of them) and a χ² far in its tail.
  const params = { domainBits: 4, payloadLength: 3 }
  const keysPerGroup = 2_000
  const bodyBits = (dpfKeyBytes(params) - 8) * 8

  /** Bits the format fixes: each s_CW's lowest bit (a control bit's place) and 6 padding bits. */
  function isFixedBit(bit: number): boolean {
    const byte = 8 + (bit >> 3) // offset in the key
    const inLevel = byte - 24
    if (inLevel < 0 || inLevel >= 17 * params.domainBits) return false
    const at = inLevel % 17
    return (at === 0 && (bit & 7) === 0) || (at === 16 && (bit & 7) >= 2)
  }

  /** Per body bit, how many of the group's party-0 keys have it set. */
  function countBits(features: Uint8Array[]): Int32Array {
    const counts = new Int32Array(features[0]!.length * 8)
    for (const bytes of features)
      for (let bit = 0; bit < counts.length; bit++)
        counts[bit]! += (bytes[bit >> 3]! >> (bit & 7)) & 1
    return counts
  }

  function groupKeys(alpha: number, seed: number, count = keysPerGroup) {
    const random = createRandom(seed)
    const randomBytes = createRandomBytes(seed)
    return Array.from({ length: count }, () =>
      generateDpfKeys(params, alpha, randomBeta(3, random), randomBytes, noble),
    )
  }

  it.each([0, 1])('party %i key bits are uniform and alike for α = 3 and α = 9', (party) => {
    const [three, nine] = [groupKeys(3, 13), groupKeys(9, 14)].map((keys) =>
      countBits(keys.map((pair) => pair[party]!.subarray(8))),
    )
    const n = keysPerGroup
    const z = 6.5
    let chiUniform = 0
    let chiAlike = 0
    let free = 0
    for (let bit = 0; bit < bodyBits; bit++) {
      const [a, b] = [three![bit]!, nine![bit]!]
      if (isFixedBit(bit)) {
        expect([a, b]).toEqual([0, 0])
        continue
      }
      free++
      // Uniform: a count of Binomial(n, ½) has sd √n / 2; two groups' difference sd √(n / 2).
      expect(Math.abs(a - n / 2)).toBeLessThan((z * Math.sqrt(n)) / 2)
      expect(Math.abs(b - n / 2)).toBeLessThan((z * Math.sqrt(n)) / 2)
      expect(Math.abs(a - b)).toBeLessThan(z * Math.sqrt(n / 2))
      chiUniform += ((2 * a - n) ** 2 + (2 * b - n) ** 2) / n
      chiAlike += (a - b) ** 2 / (n / 2)
    }
    // Many small shifts would slip under the per-bit bound; summed they would not. χ²(k) has
    // mean k and sd √(2k); 8 sd above the mean is a tail below 10⁻¹⁰ (Wilson–Hilferty).
    expect(free).toBe(bodyBits - 4 * 7)
    expect(chiUniform).toBeLessThan(2 * free + 8 * Math.sqrt(4 * free))
    expect(chiAlike).toBeLessThan(free + 8 * Math.sqrt(2 * free))
  })

  it('the same statistic tells the groups apart from both servers together', () => {
    // The test has power: the two shares at x = 3 add up to β (random bits) or to 0.
    const [three, nine] = [groupKeys(3, 15, 200), groupKeys(9, 16, 200)].map((keys) =>
      countBits(
        keys.map(([key0, key1]) => {
          const [a, b] = [
            evaluateDpfAt(key0, 0, params, 3, noble),
            evaluateDpfAt(key1, 1, params, 3, noble),
          ]
          return new Uint8Array(a.map((v, k) => (v + b[k]!) | 0).buffer)
        }),
      ),
    )
    const n = 200
    const far = three!.filter((a, bit) => Math.abs(a - nine![bit]!) > 6.5 * Math.sqrt(n / 2))
    expect(far.length).toBeGreaterThan(80)
  })
})
