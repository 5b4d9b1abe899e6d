import { describe, expect, it } from 'vitest'
import { createNodeCipher } from '../server/federated/node-cipher'
import { createNobleCipher } from './noble-cipher'
import { createRandom } from './random'
import { buildBucketLayout, placeRows } from './row-buckets'
import {
  addShareBody,
  combineShares,
  readShareHeader,
  shareBodyBytes,
  splitContribution,
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

function run(params: SecureParams, updates: number, seed: number) {
  const random = createRandom(seed)
  const negatives = Int32Array.from({ length: params.layout.negativeRows }, (_, k) => k * 3)
  const plain = createSparseSums(params.shape, negatives)
  const leader = createSparseSums(params.shape, negatives)
  const helper = createSparseSums(params.shape, negatives)
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
    addShareBody(leader, toLeader, 0, params, server)
    addShareBody(helper, toHelper, 1, params, server)
  }
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
    expect(() => addShareBody(sums, bodies[1], 0, params, server)).toThrow(
      /body for party 0, got one for party 1/,
    )
    expect(() => addShareBody(sums, bodies[0].subarray(0, 100), 0, params, server)).toThrow(
      /share body of \d+ bytes, got 100/,
    )
    const broken = bodies[0].slice()
    broken[32] = 9 // the first key's format byte
    expect(() => addShareBody(sums, broken, 0, params, server)).toThrow(/DPF key format/)
    const badMagic = bodies[0].slice()
    badMagic[0] = 0
    expect(() => addShareBody(sums, badMagic, 0, params, server)).toThrow(/magic PRK1/)
    expect(sums).toEqual(before)
  })
})
