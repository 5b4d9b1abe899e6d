import { describe, expect, it } from 'vitest'
import { createNodeCipher } from '../server/federated/node-cipher'
import { createNobleCipher } from './noble-cipher'
import { createRandom } from './random'
import { buildBucketLayout, placeRows } from './row-buckets'
import { dpfKeyBytes } from './dpf'
import {
  addShareBodies,
  combineShares,
  dpfParams,
  readShareHeader,
  shareBodyBytes,
  splitContribution,
  verifyShareBody,
  type SecureParams,
} from './secure-update'
import {
  addContribution,
  createSparseSums,
  withoutRows,
  type SparseContribution,
  type SparseSums,
} from './sparse-update'

const device = createNobleCipher()
const server = createNodeCipher()
const randomBytes = (n: number) => globalThis.crypto.getRandomValues(new Uint8Array(n))

function paramsFor(
  shape: SecureParams['shape'],
  maxRows: number,
  buckets: number,
  denseCoordinates: number,
  negativeRows: number,
): SecureParams {
  return {
    shape,
    layout: { maxRows, embedDim: shape.embedDim, denseCoordinates, negativeRows },
    buckets: buildBucketLayout({ nItems: shape.nItems, buckets, hashes: 3, seed: 11 }),
  }
}

/** A random contribution with values across the whole int32 range, as shares must handle. */
function randomContribution(params: SecureParams, random: () => number): SparseContribution {
  const { shape, layout } = params
  const rows = new Set<number>()
  const count = 1 + Math.floor(random() * layout.maxRows)
  while (rows.size < count) rows.add(Math.floor(random() * shape.nItems))
  const word = () => Math.floor(random() * 2 ** 32) | 0
  return {
    rows: Int32Array.from(rows),
    rowValues: Int32Array.from({ length: rows.size * shape.embedDim }, word),
    denseStart: 0,
    dense: Int32Array.from({ length: layout.denseCoordinates }, word),
    negatives: Int32Array.from({ length: layout.negativeRows * shape.embedDim }, word),
  }
}

/**
 * The servers' intake of one update: each computes its body's digest, they exchange them, and
 * each keeps its body for the release only if the two are equal. Returns whether it was kept.
 */
function acceptUpdate(
  kept: { leader: Uint8Array[]; helper: Uint8Array[] },
  bodies: Uint8Array[],
  params: SecureParams,
): boolean {
  const digests = [0, 1].map((party) =>
    Buffer.from(verifyShareBody(bodies[party]!, party as 0 | 1, params, server)),
  )
  expect(digests.map((d) => d.length)).toEqual([32, 32])
  if (!digests[0]!.equals(digests[1]!)) return false
  kept.leader.push(bodies[0]!)
  kept.helper.push(bodies[1]!)
  return true
}

/** `acceptUpdate`, then each server adds its kept body at once. */
function addIfAccepted(
  leader: SparseSums,
  helper: SparseSums,
  bodies: Uint8Array[],
  params: SecureParams,
): boolean {
  const kept = { leader: [] as Uint8Array[], helper: [] as Uint8Array[] }
  if (!acceptUpdate(kept, bodies, params)) return false
  addShareBodies(leader, kept.leader, 0, params, server)
  addShareBodies(helper, kept.helper, 1, params, server)
  return true
}

function run(params: SecureParams, updates: number, seed: number) {
  const random = createRandom(seed)
  const negatives = Int32Array.from({ length: params.layout.negativeRows }, (_, k) => k * 3)
  const plain = createSparseSums(params.shape, negatives)
  const leader = createSparseSums(params.shape, negatives)
  const helper = createSparseSums(params.shape, negatives)
  const kept = { leader: [] as Uint8Array[], helper: [] as Uint8Array[] }
  for (let n = 0; n < updates; n++) {
    const slice = Math.floor(random() * 2 ** 32)
    const drawn = randomContribution(params, random)
    const placed = placeRows(drawn.rows, params.buckets.params, random)
    const denseStart = Number(
      (BigInt(slice) * BigInt(params.layout.denseCoordinates)) % BigInt(params.shape.denseSize),
    )
    const c = { ...withoutRows(drawn, placed.dropped, params.shape.embedDim), denseStart }
    addContribution(plain, c, params.shape.embedDim)
    const header = { baseVersion: 7, slice, idempotencyKey: randomBytes(16) }
    const [toLeader, toHelper] = splitContribution(
      c,
      placed.bucketRow,
      header,
      params,
      randomBytes,
      device,
    )
    expect(toLeader.length).toBe(shareBodyBytes(params, 0))
    expect(toHelper.length).toBe(shareBodyBytes(params, 1))
    // An honest device's bodies always pass the servers' check.
    expect(acceptUpdate(kept, [toLeader, toHelper], params)).toBe(true)
  }
  // The leader adds the release's bodies in one batch, the helper in batches of two and one:
  // how a server batches them changes no bit of its share.
  addShareBodies(leader, kept.leader, 0, params, server)
  for (let n = 0; n < kept.helper.length; n += 2)
    addShareBodies(helper, kept.helper.slice(n, n + 2), 1, params, server)
  return { plain, leader, helper }
}

/** Bit for bit; vitest's deep equality is far too slow for 4.3 million-entry tables. */
function expectSameSums(a: SparseSums, b: SparseSums) {
  const bytes = (x: Int32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength)
  for (const part of ['table', 'counts', 'dense', 'denseCounts', 'negatives'] as const)
    expect(bytes(a[part]).equals(bytes(b[part])), part).toBe(true)
  expect(a.contributions).toBe(b.contributions)
}

describe('the two-server channel (PROTOCOL.md P29)', () => {
  it('sums, over both servers, exactly what the plaintext channel sums (small domain)', () => {
    const params = paramsFor({ denseSize: 37, nItems: 200, embedDim: 4 }, 5, 8, 8, 3)
    const { plain, leader, helper } = run(params, 40, 1)
    expectSameSums(combineShares(leader, helper), plain)
    // Neither server alone holds the sums, nor the counts of what shoppers viewed.
    expect(leader.table.some((v, k) => v !== plain.table[k])).toBe(true)
    expect(helper.counts.some((v, k) => v !== plain.counts[k])).toBe(true)
  })

  it('does so at DIGINETICA size, with each body under 64 KB', () => {
    const params = paramsFor(
      { denseSize: 100_700, nItems: 43_097, embedDim: 100 },
      32,
      48,
      8192,
      64,
    )
    expect(shareBodyBytes(params, 0)).toBeLessThanOrEqual(64 * 1024)
    expect(shareBodyBytes(params, 1)).toBeLessThanOrEqual(64 * 1024)
    const { plain, leader, helper } = run(params, 3, 2)
    expectSameSums(combineShares(leader, helper), plain)
  })

  it('refuses a body of the other party, of the wrong size or with a broken key, changing nothing', () => {
    const params = paramsFor({ denseSize: 37, nItems: 200, embedDim: 4 }, 5, 8, 8, 3)
    const random = createRandom(3)
    const c = randomContribution(params, random)
    const placed = placeRows(c.rows, params.buckets.params, random)
    const bodies = splitContribution(
      withoutRows(c, placed.dropped, 4),
      placed.bucketRow,
      { baseVersion: 1, slice: 0, idempotencyKey: randomBytes(16) },
      params,
      randomBytes,
      device,
    )
    expect(readShareHeader(bodies[0]).idempotencyKey).toEqual(
      readShareHeader(bodies[1]).idempotencyKey,
    )
    const sums = createSparseSums(params.shape, Int32Array.of(0, 3, 6))
    const before = structuredClone(sums)
    expect(() => addShareBodies(sums, [bodies[1]], 0, params, server)).toThrow(
      /body for party 0, got one for party 1/,
    )
    expect(() => verifyShareBody(bodies[1], 0, params, server)).toThrow(/body for party 0/)
    expect(() => verifyShareBody(bodies[0].subarray(0, 100), 0, params, server)).toThrow(
      /share body of \d+ bytes, got 100/,
    )
    expect(() => addShareBodies(sums, [bodies[0].subarray(0, 100)], 0, params, server)).toThrow(
      /share body of \d+ bytes, got 100/,
    )
    const broken = bodies[0].slice()
    broken[32] = 9 // the first key's format byte
    // In a batch, one broken body stops the whole batch before anything is added.
    expect(() => addShareBodies(sums, [bodies[0], broken], 0, params, server)).toThrow(
      /DPF key format/,
    )
    expect(() => verifyShareBody(broken, 0, params, server)).toThrow(/DPF key format/)
    // A body whose header says leader but whose last key is the helper's: refused up front,
    // not halfway through the batch's buckets.
    const keyBytes = dpfKeyBytes(dpfParams(params))
    const mixed = bodies[0].slice()
    mixed.set(
      bodies[1].subarray(
        32 + (params.buckets.params.buckets - 1) * keyBytes,
        32 + params.buckets.params.buckets * keyBytes,
      ),
      32 + (params.buckets.params.buckets - 1) * keyBytes,
    )
    expect(() => addShareBodies(sums, [bodies[0], mixed], 0, params, server)).toThrow(
      /DPF key for party 0/,
    )
    const badMagic = bodies[0].slice()
    badMagic[0] = 0
    expect(() => addShareBodies(sums, [badMagic], 0, params, server)).toThrow(/magic PRK1/)
    expect(sums).toEqual(before)
  })

  it('[P29b] a body pair with a bucket key pair that is not a point function is added by neither server', () => {
    const params = paramsFor({ denseSize: 37, nItems: 200, embedDim: 4 }, 5, 8, 8, 3)
    const random = createRandom(4)
    const drawn = randomContribution(params, random)
    const placed = placeRows(drawn.rows, params.buckets.params, random)
    const contribution = withoutRows(drawn, placed.dropped, 4)
    const header = { baseVersion: 1, slice: 5, idempotencyKey: randomBytes(16) }
    const bodies = splitContribution(
      contribution,
      placed.bucketRow,
      header,
      params,
      randomBytes,
      device,
    )
    // The device flips both control-bit corrections of the last level in one bucket's keys, in
    // both bodies: the bucket's row and its neighbour in the bucket now both change.
    const b = placed.bucketRow.findIndex((row) => row >= 0)
    const dpf = dpfParams(params)
    const lastLevel = 32 + b * dpfKeyBytes(dpf) + 24 + 17 * (dpf.domainBits - 1) + 16
    const tampered = bodies.map((body) => {
      const copy = body.slice()
      copy[lastLevel]! ^= 3
      return copy
    })

    const negatives = Int32Array.of(0, 3, 6)
    const plain = createSparseSums(params.shape, negatives)
    addContribution(plain, { ...contribution, denseStart: (5 * 8) % 37 }, 4)
    // Were the servers to add it, the release would differ from the plaintext in two rows or more.
    const [leader, helper] = [0, 1].map(() => createSparseSums(params.shape, negatives))
    addShareBodies(leader!, [tampered[0]!], 0, params, server)
    addShareBodies(helper!, [tampered[1]!], 1, params, server)
    const combined = combineShares(leader!, helper!)
    const changed = new Set<number>()
    for (let k = 0; k < combined.table.length; k++)
      if (combined.table[k] !== plain.table[k]) changed.add(Math.floor(k / 4))
    for (let row = 0; row < combined.counts.length; row++)
      if (combined.counts[row] !== plain.counts[row]) changed.add(row)
    expect(changed.size).toBeGreaterThanOrEqual(2)

    // The servers' check: the digests differ, so neither adds anything.
    const sums = [0, 1].map(() => createSparseSums(params.shape, negatives))
    const before = structuredClone(sums)
    expect(addIfAccepted(sums[0]!, sums[1]!, tampered, params)).toBe(false)
    expect(sums).toEqual(before)
    // The honest bodies of the same update pass, and give the plaintext sums.
    expect(addIfAccepted(sums[0]!, sums[1]!, bodies, params)).toBe(true)
    expectSameSums(combineShares(sums[0]!, sums[1]!), plain)
  })

  it('[P29b] refuses bodies whose headers differ, or whose key pair differs in one body only', () => {
    const params = paramsFor({ denseSize: 37, nItems: 200, embedDim: 4 }, 5, 8, 8, 3)
    const random = createRandom(5)
    const c = randomContribution(params, random)
    const placed = placeRows(c.rows, params.buckets.params, random)
    const bodies = splitContribution(
      withoutRows(c, placed.dropped, 4),
      placed.bucketRow,
      { baseVersion: 1, slice: 9, idempotencyKey: randomBytes(16) },
      params,
      randomBytes,
      device,
    )
    const edited = (party: number, at: number, mask: number) =>
      bodies.map((body, p) => {
        const copy = body.slice()
        if (p === party) copy[at]! ^= mask
        return copy
      })
    const keyBytes = dpfKeyBytes(dpfParams(params))
    const cases: Array<[string, Uint8Array[]]> = [
      // Another slice would put the window's two shares at two places.
      ['the helper’s slice', edited(1, 12, 1)],
      ['the leader’s idempotency key', edited(0, 20, 0x80)],
      // The last key's payload word, in the leader's body only: it would add at half its rows.
      ['a CW^(n+1) word of the last bucket', edited(0, 32 + 8 * keyBytes - 4, 1)],
      ['a bit of s_CW in the helper’s first key', edited(1, 32 + 24 + 3, 0x10)],
    ]
    const sums = [0, 1].map(() => createSparseSums(params.shape, Int32Array.of(0, 3, 6)))
    const before = structuredClone(sums)
    for (const [name, pair] of cases)
      expect(addIfAccepted(sums[0]!, sums[1]!, pair, params), name).toBe(false)
    expect(sums).toEqual(before)
  })
})
