// The two-server channel for sparse contributions (PROTOCOL.md P29, issue 12): a device splits
// its contribution into two bodies, one for the leader (party 0) and one for the helper (party
// 1). Either body alone is pseudorandom; the two servers' sums over the same updates add up, in
// Z/2^32, to exactly the sums the plaintext channel would hold (shared/sparse-update.ts).
//
// - Viewed rows: cuckoo-placed into the public buckets (row-buckets.ts), one DPF key pair per
//   bucket (dpf.ts) whose point is the row's position in its bucket and whose payload is the
//   row's change and a count of 1; a bucket without a row gets a key pair of payload zero. So
//   every update carries the same number of keys, whatever the shopper viewed. The keys are
//   verifiable: the servers exchange `verifyShareBody` digests and add a pair of bodies only if
//   they are equal, so that no key pair adds into more than one row of its bucket.
// - Dense window and public negatives (their positions are public): additive shares, one of
//   each pair sent as a 16-byte PRG seed. The leader gets the window's seed and the negatives'
//   masked values, the helper the reverse, which keeps both bodies under 64 KB.
import { sha256 } from '@noble/hashes/sha2.js'
import type { BlockCipher, DpfParams } from './dpf'
import { dpfKeyBytes, evaluateDpfInto, generateDpfKeys, parseDpfKey, verifyDpfKey } from './dpf'
import { buildBucketLayout, positionInBucket, type BucketLayout } from './row-buckets'
import type { SparseContribution, SparseLayout, SparseShape, SparseSums } from './sparse-update'

/** Magic of a share body: `PRK1`. */
const MAGIC = 0x314b5250
const HEADER_BYTES = 32
const SEED_BYTES = 16
/** The PRG tweak of seed-expanded shares, apart from the DPF's tree, output and proof tweaks. */
const TWEAK_SHARE = 0x53484152
/** The body digest's domain separation. */
const DIGEST_TAG = new TextEncoder().encode('pocketrec share body digest v1')

export type Party = 0 | 1

/** What both servers and every device agree on for a model (all public). */
export interface SecureParams {
  layout: SparseLayout
  shape: SparseShape
  buckets: BucketLayout
}

/** The last parameters built: every caller asks for the same few, and 1M items take a while. */
let lastParams: { key: string; params: SecureParams } | undefined

/**
 * The public parameters of `layout` over a model of `shape`: ⌈1.5 · maxRows⌉ cuckoo buckets of 3
 * hashes (every placement of 2,000 random full updates succeeded, shared/row-buckets.test.ts).
 * The last ones asked for are kept: devices, intake and both servers' releases ask again for
 * every update.
 */
export function secureParamsFor(layout: SparseLayout, shape: SparseShape): SecureParams {
  const key = JSON.stringify([layout, shape])
  if (lastParams?.key !== key) {
    const buckets = buildBucketLayout({
      nItems: shape.nItems,
      buckets: Math.ceil(1.5 * layout.maxRows),
      hashes: 3,
      seed: 1,
    })
    lastParams = { key, params: { layout, shape, buckets } }
  }
  return lastParams.params
}

export function dpfParams(params: SecureParams): DpfParams {
  return { domainBits: params.buckets.domainBits, payloadLength: params.shape.embedDim + 1 }
}

/** A body's exact size for `party`. */
export function shareBodyBytes(params: SecureParams, party: Party): number {
  const keys = params.buckets.params.buckets * dpfKeyBytes(dpfParams(params))
  const dense = 4 * params.layout.denseCoordinates
  const negatives = 4 * params.layout.negativeRows * params.shape.embedDim
  return HEADER_BYTES + keys + (party === 0 ? SEED_BYTES + negatives : dense + SEED_BYTES)
}

export interface ShareHeader {
  party: Party
  baseVersion: number
  slice: number
  /** The same in both bodies of one update: how the servers pair them. */
  idempotencyKey: Uint8Array
}

/**
 * The contribution's two bodies. `bucketRow` is the placement of `contribution.rows` (placeRows):
 * every row of the contribution must sit in a bucket. `randomBytes` must be a CSPRNG.
 */
export function splitContribution(
  contribution: SparseContribution,
  bucketRow: Int32Array,
  header: Omit<ShareHeader, 'party'>,
  params: SecureParams,
  randomBytes: (n: number) => Uint8Array,
  cipher: BlockCipher,
): [Uint8Array, Uint8Array] {
  const { embedDim: d } = params.shape
  const B = params.buckets.params.buckets
  if (bucketRow.length !== B) throw new RangeError(`expected ${B} buckets, got ${bucketRow.length}`)
  const rowIndex = new Map(Array.from(contribution.rows, (row, k) => [row, k]))
  const placed = Array.from(bucketRow).filter((row) => row >= 0)
  if (placed.length !== rowIndex.size || placed.some((row) => !rowIndex.has(row)))
    throw new RangeError('expected every row of the contribution placed in exactly one bucket')

  const bodies: [Uint8Array, Uint8Array] = [
    new Uint8Array(shareBodyBytes(params, 0)),
    new Uint8Array(shareBodyBytes(params, 1)),
  ]
  bodies.forEach((body, party) => writeHeader(body, { ...header, party: party as Party }))
  const dpf = dpfParams(params)
  const keyBytes = dpfKeyBytes(dpf)
  const beta = new Int32Array(d + 1)
  for (let b = 0; b < B; b++) {
    const row = bucketRow[b]!
    const size = params.buckets.offsets[b + 1]! - params.buckets.offsets[b]!
    let alpha: number
    if (row >= 0) {
      const k = rowIndex.get(row)!
      beta.set(contribution.rowValues.subarray(k * d, k * d + d))
      beta[d] = 1
      alpha = positionInBucket(params.buckets, b, row)
    } else {
      beta.fill(0)
      alpha = uniformBelow(Math.max(1, size), randomBytes)
    }
    const keys = generateDpfKeys(dpf, alpha, beta, randomBytes, cipher)
    bodies[0].set(keys[0], HEADER_BYTES + b * keyBytes)
    bodies[1].set(keys[1], HEADER_BYTES + b * keyBytes)
  }
  const tail = HEADER_BYTES + B * keyBytes
  // The window: the leader's share is PRG(seed), the helper's the values minus it.
  const denseSeed = randomBytes(SEED_BYTES)
  bodies[0].set(denseSeed, tail)
  writeWords(
    bodies[1],
    tail,
    subtract(contribution.dense, expandSeed(denseSeed, contribution.dense.length, cipher)),
  )
  // The negatives: the helper's share is PRG(seed), the leader's the values minus it.
  const negativeSeed = randomBytes(SEED_BYTES)
  writeWords(
    bodies[0],
    tail + SEED_BYTES,
    subtract(
      contribution.negatives,
      expandSeed(negativeSeed, contribution.negatives.length, cipher),
    ),
  )
  bodies[1].set(negativeSeed, tail + 4 * contribution.dense.length)
  return bodies
}

export function readShareHeader(body: Uint8Array): ShareHeader {
  if (body.length < HEADER_BYTES)
    throw new RangeError(
      `expected a share body of at least ${HEADER_BYTES} bytes, got ${body.length}`,
    )
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength)
  if (view.getUint32(0, true) !== MAGIC) throw new RangeError('expected a share body (magic PRK1)')
  const party = body[4]
  if (party !== 0 && party !== 1) throw new RangeError(`expected party 0 or 1, got ${party}`)
  return {
    party,
    baseVersion: view.getUint32(8, true),
    slice: view.getUint32(12, true),
    idempotencyKey: body.slice(16, 32),
  }
}

/**
 * The body's 32-byte digest, which the two servers exchange before either adds the update: an
 * update enters either server's sums only if the leader's and the helper's digests are equal,
 * as they are for an honest device. SHA-256 of the header (but its party byte) and of each
 * bucket key's proof over that bucket's rows (dpf.ts `verifyDpfKey`). Equal digests mean that
 * both bodies carry the same header (a slice that differed would add the window's two shares at
 * two places) and that every key pair is a point function over its bucket: one row at most.
 * They say nothing of the payloads (a row's change, its count) nor of the window's and the
 * negatives' shares. Throws, as `addShareBodies` does, for a body of another party, size or layout.
 */
export function verifyShareBody(
  body: Uint8Array,
  party: Party,
  params: SecureParams,
  cipher: BlockCipher,
): Uint8Array {
  checkBody(body, party, params)
  const dpf = dpfParams(params)
  const keyBytes = dpfKeyBytes(dpf)
  const { offsets } = params.buckets
  const digest = sha256.create()
  digest.update(DIGEST_TAG)
  digest.update(body.subarray(0, 4))
  digest.update(body.subarray(5, HEADER_BYTES))
  for (let b = 0; b < params.buckets.params.buckets; b++) {
    const key = body.subarray(HEADER_BYTES + b * keyBytes, HEADER_BYTES + (b + 1) * keyBytes)
    digest.update(verifyDpfKey(key, party, dpf, offsets[b + 1]! - offsets[b]!, cipher))
  }
  return digest.digest()
}

/**
 * Adds the bodies' shares into `sums`, this server's share of the release (the public counts of
 * the window and the number of contributions included), and returns their headers. Throws,
 * changing nothing, if any body is of another party, size or layout or holds a malformed key.
 * It does not verify the keys: call it only with bodies whose two servers' `verifyShareBody`
 * digests matched.
 *
 * Batch-major, because the table is large and a key's rows are spread over it: each bucket's key
 * of every body is evaluated into one bucket-sized scratch (which stays in cache) and the scratch
 * is added to the table's rows once per bucket and batch, not once per body. Adding a thousand
 * bodies at a release costs a thousand evaluations and one scatter.
 */
export function addShareBodies(
  sums: SparseSums,
  bodies: readonly Uint8Array[],
  party: Party,
  params: SecureParams,
  cipher: BlockCipher,
): ShareHeader[] {
  const { embedDim: d, denseSize } = params.shape
  const { layout } = params
  const dpf = dpfParams(params)
  const m = d + 1
  const keyBytes = dpfKeyBytes(dpf)
  const B = params.buckets.params.buckets
  const D = layout.denseCoordinates
  const N = layout.negativeRows * d
  if (sums.negatives.length !== N)
    throw new RangeError(
      `expected ${N / d} public negatives in the sums, got ${sums.negatives.length / d}`,
    )
  const key = (body: Uint8Array, b: number) =>
    body.subarray(HEADER_BYTES + b * keyBytes, HEADER_BYTES + (b + 1) * keyBytes)
  // Every body is checked and every key parsed before anything is added: past this point
  // nothing throws, so a bad body never leaves part of a batch added.
  const headers = bodies.map((body) => {
    const header = checkBody(body, party, params)
    for (let b = 0; b < B; b++)
      if (parseDpfKey(key(body, b), dpf).party !== party)
        throw new RangeError(`expected bucket ${b}'s DPF key for party ${party} in every body`)
    return header
  })

  const { offsets, rows } = params.buckets
  const scratch = new Int32Array(2 ** params.buckets.domainBits * m)
  for (let b = 0; b < B; b++) {
    const from = offsets[b]!
    const size = offsets[b + 1]! - from
    scratch.fill(0, 0, size * m)
    for (const body of bodies) evaluateDpfInto(key(body, b), party, dpf, size, cipher, scratch)
    for (let i = 0; i < size; i++) {
      const row = rows[from + i]!
      const at = row * d
      const value = i * m
      for (let j = 0; j < d; j++)
        sums.table[at + j] = (sums.table[at + j]! + scratch[value + j]!) | 0
      sums.counts[row] = (sums.counts[row]! + scratch[value + d]!) | 0
    }
  }
  bodies.forEach((body, i) => {
    const tail = HEADER_BYTES + B * keyBytes
    const dense =
      party === 0
        ? expandSeed(body.subarray(tail, tail + SEED_BYTES), D, cipher)
        : readWords(body, tail, D)
    const negatives =
      party === 0
        ? readWords(body, tail + SEED_BYTES, N)
        : expandSeed(body.subarray(tail + 4 * D, tail + 4 * D + SEED_BYTES), N, cipher)
    const start = Number((BigInt(headers[i]!.slice) * BigInt(D)) % BigInt(denseSize))
    for (let k = 0; k < D; k++) {
      const at = (start + k) % denseSize
      sums.dense[at] = (sums.dense[at]! + dense[k]!) | 0
      sums.denseCounts[at] = (sums.denseCounts[at]! + 1) | 0
    }
    for (let k = 0; k < N; k++) sums.negatives[k] = (sums.negatives[k]! + negatives[k]!) | 0
    sums.contributions++
  })
  return headers
}

/**
 * The release's sums from the two servers' shares: the secret parts added in Z/2^32, the public
 * ones (window coverage, contributions, negatives' rows) the same on both sides or an error.
 */
export function combineShares(leader: SparseSums, helper: SparseSums): SparseSums {
  if (leader.contributions !== helper.contributions)
    throw new RangeError(
      `expected both shares over the same updates, got ${leader.contributions} and ${helper.contributions}`,
    )
  const same = (a: Int32Array, b: Int32Array) =>
    a.length === b.length && a.every((v, i) => v === b[i])
  if (
    !same(leader.denseCounts, helper.denseCounts) ||
    !same(leader.negativeRows, helper.negativeRows)
  )
    throw new RangeError('expected both shares over the same windows and public negatives')
  const add = (a: Int32Array, b: Int32Array) => Int32Array.from(a, (v, i) => (v + b[i]!) | 0)
  return {
    table: add(leader.table, helper.table),
    counts: add(leader.counts, helper.counts),
    dense: add(leader.dense, helper.dense),
    denseCounts: leader.denseCounts.slice(),
    negativeRows: leader.negativeRows.slice(),
    negatives: add(leader.negatives, helper.negatives),
    contributions: leader.contributions,
  }
}

/** The header of a body for `party` of the size `params` give it; throws for anything else. */
function checkBody(body: Uint8Array, party: Party, params: SecureParams): ShareHeader {
  const header = readShareHeader(body)
  if (header.party !== party)
    throw new RangeError(`expected a body for party ${party}, got one for party ${header.party}`)
  const expected = shareBodyBytes(params, party)
  if (body.length !== expected)
    throw new RangeError(`expected a share body of ${expected} bytes, got ${body.length}`)
  return header
}

/** `count` int32 words from a 16-byte seed: fixed-key AES on (seed ⊕ (tweak, i)), MMO form. */
export function expandSeed(seed: Uint8Array, count: number, cipher: BlockCipher): Int32Array {
  if (seed.length !== SEED_BYTES)
    throw new RangeError(`expected a ${SEED_BYTES}-byte seed, got ${seed.length}`)
  const blocks = Math.ceil(count / 4)
  const input = new Uint8Array(16 * blocks)
  const words = new Int32Array(input.buffer)
  const seedWords = new Int32Array(seed.slice().buffer)
  for (let i = 0; i < blocks; i++) {
    words[4 * i] = seedWords[0]! ^ i
    words[4 * i + 1] = seedWords[1]!
    words[4 * i + 2] = seedWords[2]!
    words[4 * i + 3] = seedWords[3]! ^ TWEAK_SHARE
  }
  const output = new Int32Array(cipher.encryptBlocks(input.slice()).slice().buffer)
  for (let w = 0; w < 4 * blocks; w++) output[w] = output[w]! ^ words[w]!
  return output.subarray(0, count)
}

function writeHeader(body: Uint8Array, header: ShareHeader): void {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength)
  view.setUint32(0, MAGIC, true)
  body[4] = header.party
  view.setUint32(8, header.baseVersion, true)
  view.setUint32(12, header.slice >>> 0, true)
  if (header.idempotencyKey.length !== 16)
    throw new RangeError('expected a 16-byte idempotency key')
  body.set(header.idempotencyKey, 16)
}

function writeWords(body: Uint8Array, at: number, words: Int32Array): void {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength)
  for (let k = 0; k < words.length; k++) view.setInt32(at + 4 * k, words[k]!, true)
}

function readWords(body: Uint8Array, at: number, count: number): Int32Array {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength)
  const out = new Int32Array(count)
  for (let k = 0; k < count; k++) out[k] = view.getInt32(at + 4 * k, true)
  return out
}

function subtract(a: Int32Array, b: Int32Array): Int32Array {
  return Int32Array.from(a, (v, i) => (v - b[i]!) | 0)
}

/** A uniform integer in [0, n) from the CSPRNG (rejection sampling over 32 bits). */
function uniformBelow(n: number, randomBytes: (n: number) => Uint8Array): number {
  const limit = Math.floor(2 ** 32 / n) * n
  for (;;) {
    const bytes = randomBytes(4)
    const x = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true)
    if (x < limit) return x % n
  }
}
