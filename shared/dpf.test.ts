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
  verifyDpfKey,
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

  it('a key is 732 bytes: 24 + 17 per level + 32 of cs + 4 per value', () => {
    expect(dpfKeyBytes(params)).toBe(24 + 17 * 16 + 32 + 4 * 101)
    expect(dpfKeyBytes(params)).toBe(732)
    const keys = generateDpfKeys(params, 7, new Int32Array(m), createRandomBytes(5), noble)
    expect(keys.map((k) => k.length)).toEqual([732, 732])
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

  it('the key format and the proof are pinned: fixed seeds give the same bytes in every release', () => {
    // Devices and servers of different releases must agree on tweaks, bit order and layout:
    // change these only with the format byte. The digests (format 2, which added cs) were
    // reproduced by a separate Python implementation of Fig. 1 and of the proof written from
    // dpf.ts's format description (AES from the cryptography package), so they check the layout
    // and the proof's hashes, not only their stability.
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
      'e6bbb5e1b67ef94edeaad277352b11d438fa9e7cea071e52ca3abe0f8a81b481',
      'c869c787ab9acacc011dadfbdccf2383566edb307865a8cbe77813a10a788832',
      'f63e8dfe40e0c2240eb7a85ad02ac9f8c8ead09efdedb4819f15722dc7f801b5',
      '5352449b7d36f420527c67e9a6a558535810e00ab878f1f8e8c07aeb8623c9ef',
    ])
    const proofs = [
      ...[0, 1].map((p) =>
        verifyDpfKey(small[p]!, p as 0 | 1, { domainBits: 4, payloadLength: 6 }, 13, noble),
      ),
      ...[0, 1].map((p) =>
        verifyDpfKey(real[p]!, p as 0 | 1, { domainBits: 16, payloadLength: 101 }, 43_097, node),
      ),
    ]
    expect(proofs.map(bytesToHex)).toEqual([
      '871b59385c3d5114fefc1c7ec0d161a834fbe6f3cd3e08a1a0a329bc0d8780da',
      '871b59385c3d5114fefc1c7ec0d161a834fbe6f3cd3e08a1a0a329bc0d8780da',
      '45a09c082577103e092679da6db08bb8e638601d1959d34760e173ff6b9b02a4',
      '45a09c082577103e092679da6db08bb8e638601d1959d34760e173ff6b9b02a4',
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

  it('rejects a wrong length, format, party, domain, payload length or correction word', () => {
    expect(dpfKeyBytes(params)).toBe(136)
    const cases: Array<[Uint8Array, RegExp]> = [
      [key0!.subarray(0, 135), /expected a DPF key of 136 bytes .* got 135/],
      [new Uint8Array([...key0!, 0]), /expected a DPF key of 136 bytes .* got 137/],
      [new Uint8Array(0), /expected a DPF key of 136 bytes .* got 0/],
      [key0!.subarray(0, 5), /got 5/],
      [edited(0, 3), /expected DPF key format 2, got 3$/],
      // A key of the first format (no cs) is refused by name, whatever its length.
      [edited(0, 1), /expected DPF key format 2, got 1: a format-1 key has no proof correction/],
      [key0!.slice(0, 104).fill(1, 0, 1), /format-1 key/],
      [edited(1, 2), /expected a DPF key for party 0 or 1, got 2/],
      [edited(2, 16), /expected a DPF key for domainBits 4, got 16/],
      [edited(3, 1), /expected a zero reserved header byte, got 1/],
      [edited(4, 101), /expected a DPF key for payloadLength 3, got 101/],
      [edited(24 + 16, 4), /expected control-bit corrections 0–3 at level 0, got 4/],
      // s_CW's lowest bit would set a corrected seed's, where the proof hashes the control bit.
      [edited(24 + 17, key0![24 + 17]! | 1), /lowest bit of s_CW at level 1 to be 0, got 1/],
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
    expect(() => verifyDpfKey(key1!, 0, params, 13, noble)).toThrow(/party 0, got one for party 1/)
    expect(() => verifyDpfKey(key0!, 0, params, 17, noble)).toThrow(/\[0, 16\], got 17/)
    expect(() => verifyDpfKey(key0!, 0, params, 2.5, noble)).toThrow(/\[0, 16\], got 2.5/)
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
      const key = new Uint8Array([...key0!.subarray(0, 8), ...randomBytes(128)])
      for (let level = 0; level < 4; level++) {
        key[24 + 17 * level]! &= ~1
        key[24 + 17 * level + 16]! &= 3
      }
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

describe('VDPF: the servers prove a key pair is a point function (de Castro–Polychroniadou)', () => {
  const params = { domainBits: 4, payloadLength: 3 }
  const domainSize = 13
  const levelAt = (level: number) => 24 + 17 * level
  const csAt = levelAt(params.domainBits)
  const valuesAt = csAt + 32

  /** Both parties' proofs over [0, size), as hex. */
  function proofsOf(keys: Uint8Array[], p: DpfParams = params, size = domainSize, cipher = noble) {
    return [0, 1].map((party) =>
      bytesToHex(verifyDpfKey(keys[party]!, party as 0 | 1, p, size, cipher)),
    )
  }

  /** The x in [0, domainSize) where the two shares do not add up to zero. */
  function nonZeroRows(keys: Uint8Array[]): number[] {
    const { sum } = evaluateBoth([keys], params, domainSize)
    const rows: number[] = []
    for (let x = 0; x < domainSize; x++)
      if (sum.subarray(3 * x, 3 * x + 3).some((v) => v !== 0)) rows.push(x)
    return rows
  }

  /** A copy of `key` with byte `at` XORed with `mask`. */
  function flipped(key: Uint8Array, at: number, mask: number): Uint8Array {
    const copy = key.slice()
    copy[at]! ^= mask
    return copy
  }

  function honestPair(alpha: number, seed: number): Uint8Array[] {
    return generateDpfKeys(params, alpha, Int32Array.of(5, -6, 1), createRandomBytes(seed), noble)
  }

  it('honest pairs give equal 32-byte proofs for every α, in the domain or past it', () => {
    for (let alpha = 0; alpha < 16; alpha++) {
      const keys = honestPair(alpha, 20 + alpha)
      for (const size of [0, 1, 7, 13, 16]) {
        const [p0, p1] = proofsOf(keys, params, size)
        expect(p0, `α = ${alpha}, domainSize ${size}`).toBe(p1)
        expect(p0).toHaveLength(64)
      }
      // A proof is about one domain: the same key over another gives another proof.
      expect(proofsOf(keys, params, 13)[0]).not.toBe(proofsOf(keys, params, 12)[0])
    }
  })

  it('honest pairs verify at the real sizes: 2^12 over 2,700 rows and 2^16 over 43,097', () => {
    const random = createRandom(21)
    const randomBytes = createRandomBytes(21)
    const cases: Array<[DpfParams, number, number[]]> = [
      // A bucket of the cuckoo layout; 4,000 is past the bucket's rows (a padding-like key).
      [{ domainBits: 12, payloadLength: 101 }, 2_700, [0, 1_337, 2_699, 4_000]],
      [{ domainBits: 16, payloadLength: 101 }, 43_097, [0, 43_096]],
    ]
    for (const [p, size, alphas] of cases)
      for (const alpha of alphas) {
        const keys = generateDpfKeys(p, alpha, randomBeta(101, random), randomBytes, noble)
        const [p0, p1] = proofsOf(keys, p, size, node)
        expect(p0, `2^${p.domainBits}, α = ${alpha}`).toBe(p1)
      }
    // The worker's AES gives the server's proof (a 2^12 bucket: noble is slow on more).
    const keys = generateDpfKeys(cases[0]![0], 5, randomBeta(101, random), randomBytes, noble)
    expect(proofsOf(keys, cases[0]![0], 2_700, noble)).toEqual(
      proofsOf(keys, cases[0]![0], 2_700, node),
    )
  })

  it('tampered and spliced pairs that are not point functions give different proofs', () => {
    // α = 6 = 0110: the path goes left, right, right, left; each tamper spreads the output to
    // at least two rows of [0, 13), which the test checks before it checks the proofs.
    const [key0, key1] = honestPair(6, 22)
    const other = honestPair(11, 23)
    const both = (at: number, mask: number) => [flipped(key0!, at, mask), flipped(key1!, at, mask)]
    const cases: Array<[string, Uint8Array[]]> = [
      ...[0, 1, 2, 3].map((level): [string, Uint8Array[]] => [
        `a bit of s_CW at level ${level}, in both keys`,
        both(levelAt(level) + 5, 1 << 3),
      ]),
      ...[0, 1, 2].map((level): [string, Uint8Array[]] => [
        `t_CW^L and t_CW^R at level ${level}, in both keys`,
        both(levelAt(level) + 16, 3),
      ]),
      // The sibling of α (7) has the losing side: its control bits come apart.
      ['t_CW^R at the last level, in both keys', both(levelAt(3) + 16, 2)],
      // Party 1's root control bit is 1: it applies the level-0 words to both children.
      ['a bit of s_CW at level 0, in one key', [key0!, flipped(key1!, levelAt(0) + 9, 1 << 6)]],
      ['a bit of the leader’s root seed', [flipped(key0!, 8 + 4, 1 << 2), key1!]],
      ['the leader’s key of one pair, the helper’s of another', [key0!, other[1]!]],
      [
        'both root seeds of one pair, the correction words of another',
        [0, 1].map((party) => {
          const spliced = other[party]!.slice()
          spliced.set([key0!, key1!][party]!.subarray(8, 24), 8)
          return spliced
        }),
      ],
    ]
    for (const [name, keys] of cases) {
      expect(nonZeroRows(keys).length, name).toBeGreaterThanOrEqual(2)
      const [p0, p1] = proofsOf(keys)
      expect(p0, name).not.toBe(p1)
    }
  })

  it('cs is part of the proof: a point function with a wrong cs is refused', () => {
    const [key0, key1] = honestPair(6, 24)
    for (const bit of [0, 77, 255]) {
      const keys = [key0!, key1!].map((key) => flipped(key, csAt + (bit >> 3), 1 << (bit & 7)))
      expect(nonZeroRows(keys)).toEqual([6])
      const [p0, p1] = proofsOf(keys)
      expect(p0).not.toBe(p1)
    }
  })

  it('does not check the payload: a CW^(n+1) changed in both keys verifies, and changes β', () => {
    // By design (PROTOCOL.md P29b): a device may send any row change and any count, and the
    // servers cannot tell. Only the *shape* (one row at most) is proven.
    const [key0, key1] = honestPair(6, 25)
    const keys = [key0!, key1!].map((key) => {
      const copy = key.slice()
      const view = new DataView(copy.buffer)
      view.setInt32(valuesAt + 8, view.getInt32(valuesAt + 8, true) + 1_000, true) // the count
      return copy
    })
    const [p0, p1] = proofsOf(keys)
    expect(p0).toBe(p1)
    expect(nonZeroRows(keys)).toEqual([6])
    const { sum } = evaluateBoth([keys], params, domainSize)
    expect(Math.abs(sum[3 * 6 + 2]! - 1)).toBe(1_000)
  })

  it('refuses a CW^(n+1) that differs between the keys: it would add at every leaf with t = 1', () => {
    // The leaves' seeds and control bits are those of an honest pair, so every π_x matches; what
    // tells the proofs apart is the keys' public part, which the proof hashes.
    const [key0, key1] = honestPair(6, 26)
    const keys = [key0!, flipped(key1!, valuesAt, 1 << 4)]
    expect(nonZeroRows(keys).length).toBeGreaterThanOrEqual(2)
    const [p0, p1] = proofsOf(keys)
    expect(p0).not.toBe(p1)
  })

  // The device's own evaluator, written from dpf.ts's format description as an attacker would:
  // a leaf's seed and control bit, and the proof's leaf hash H(x ‖ s ‖ t).
  function mmo(input: Int32Array): Int32Array {
    const out = new Int32Array(
      noble.encryptBlocks(new Uint8Array(input.slice().buffer)).slice().buffer,
    )
    for (let i = 0; i < out.length; i++) out[i]! ^= input[i]!
    return out
  }
  function leafOf(key: Uint8Array, x: number) {
    const n = params.domainBits
    let seed: Int32Array = new Int32Array(key.slice(8, 24).buffer)
    let control = key[1]!
    for (let level = 0; level < n; level++) {
      const d = (x >>> (n - 1 - level)) & 1
      const input = seed.slice()
      input[3]! ^= d
      const g = mmo(input)
      let t = g[0]! & 1
      g[0]! &= ~1
      if (control) {
        const at = levelAt(level)
        const cw = new Int32Array(key.slice(at, at + 16).buffer)
        for (let w = 0; w < 4; w++) g[w]! ^= cw[w]!
        t ^= (key[at + 16]! >> d) & 1
      }
      seed = g
      control = t
    }
    return { seed, control }
  }
  function leafHash(x: number, { seed, control }: { seed: Int32Array; control: number }) {
    const input = new Int32Array(8)
    for (let j = 0; j < 2; j++)
      input.set([seed[0]! | control, seed[1]!, seed[2]! ^ x, seed[3]! ^ (0x70690000 + j)], 4 * j)
    return mmo(input)
  }
  /** The cs that makes both parties' π_x agree at x (where their control bits differ). */
  function csFor(keys: Uint8Array[], x: number): Uint8Array {
    const [h0, h1] = keys.map((key) => leafHash(x, leafOf(key, x)))
    return new Uint8Array(h0!.map((v, w) => v ^ h1![w]!).buffer)
  }
  const withCs = (key: Uint8Array, cs: Uint8Array) => {
    const copy = key.slice()
    copy.set(cs, csAt)
    return copy
  }

  it('refuses a naive two-point pair: both children of α’s parent made to differ', () => {
    // The attacker's evaluator agrees with dpf.ts: it recomputes an honest pair's cs.
    const honest = honestPair(6, 27)
    expect(bytesToHex(csFor(honest, 6))).toBe(bytesToHex(honest[0]!.subarray(csAt, csAt + 32)))
    // Flipping the last level's t_CW^R makes α's sibling (7) a second point; the tree's own
    // output there is CW^(n+1), so a device could steer it. Whichever leaf cs is made for, the
    // other one's hashes differ.
    const twoPoints = honest.map((key) => flipped(key, levelAt(3) + 16, 2))
    expect(nonZeroRows(twoPoints)).toEqual([6, 7])
    for (const x of [6, 7]) {
      const keys = twoPoints.map((key) => withCs(key, csFor(twoPoints, x)))
      expect(nonZeroRows(keys)).toEqual([6, 7])
      const [p0, p1] = proofsOf(keys)
      expect(p0, `cs made for x = ${x}`).not.toBe(p1)
    }
  })

  it('refuses a pair whose leaves share their seeds but not their control bits (cs = 0)', () => {
    // Root seeds equal, every s_CW = 0 and t_CW = (1, 1): at every leaf both parties hold the
    // same seed and opposite control bits, so the shares add up to ±CW^(n+1) at every row.
    // With the paper's H(x ‖ s) alone every π̃_x would match and cs = 0 would pass them all;
    // hashing t with the seed makes each leaf need its own cs.
    const [key0, key1] = honestPair(6, 28)
    const keys = [key0!, key1!].map((key, party) => {
      const copy = key.slice()
      copy.set(key0!.subarray(8, 24), 8)
      copy.fill(0, 24, valuesAt)
      for (let level = 0; level < 4; level++) copy[levelAt(level) + 16] = 3
      copy[1] = party
      return copy
    })
    expect(nonZeroRows(keys)).toHaveLength(domainSize)
    const [p0, p1] = proofsOf(keys)
    expect(p0).not.toBe(p1)
  })

  it('random edits of a pair: equal proofs only where at most one row is non-zero', () => {
    const random = createRandom(29)
    const randomBytes = createRandomBytes(29)
    let refused = 0
    for (let trial = 0; trial < 300; trial++) {
      const alpha = Math.floor(random() * 16)
      const keys = generateDpfKeys(params, alpha, randomBeta(3, random), randomBytes, noble)
      // One to three bit flips past the header, each in one key or in both at the same place.
      for (let edit = 0; edit < 1 + Math.floor(random() * 3); edit++) {
        const at = 8 + Math.floor(random() * (keys[0].length - 8))
        const bit = Math.floor(random() * 8)
        const which = Math.floor(random() * 3)
        for (const party of [0, 1])
          if (which === 2 || which === party) keys[party]![at]! ^= 1 << bit
      }
      // Keep the keys parseable: the flips that parseDpfKey refuses are tested above.
      for (const key of keys)
        for (let level = 0; level < 4; level++) {
          key[levelAt(level)]! &= ~1
          key[levelAt(level) + 16]! &= 3
        }
      const rows = nonZeroRows(keys)
      const [p0, p1] = proofsOf(keys)
      if (p0 === p1) expect(rows.length, `trial ${trial}`).toBeLessThanOrEqual(1)
      else if (rows.length >= 2) refused++
    }
    // The test has power: most edits do spread the output, and all of those were refused.
    expect(refused).toBeGreaterThan(150)
  })
})
