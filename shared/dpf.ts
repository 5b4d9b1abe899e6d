// A distributed point function (DPF) for the two-server channel: a device splits the point
// function f(x) = β if x = α else 0 into two keys, one per aggregation server (leader = party 0,
// helper = party 1). Either key alone is pseudorandom, so it tells its server nothing about α or
// β; the servers' outputs add up to f(x) in (Z/2^32)^m, bit for bit, at every x of the domain.
//
// The construction is the tree DPF of Boyle, Gilboa and Ishai, "Function Secret Sharing:
// Improvements and Extensions" (CCS 2016), Fig. 1: 128-bit seeds, one control bit per node, one
// correction word per level and one for the output; a key is O(λ·n) bits for 2^n points. Party
// 1's output is negated, as in the paper's (−1)^b, so that the two shares SUM to f(x).
//
// It is made verifiable as the VDPF of de Castro and Polychroniadou, "Lightweight, Maliciously
// Secure Verifiable Function Secret Sharing" (EUROCRYPT 2022), §4: a key also carries a proof
// correction word cs, and `verifyDpfKey` gives each server a 32-byte proof over the leaves it
// evaluates. The two proofs are equal for an honest pair, and for a pair made any other way they
// are equal only if at most one evaluated leaf has a non-zero output (see `verifyDpfKey`).
import { sha256 } from '@noble/hashes/sha2.js'

/**
 * AES-128 under the public key `dpfAesKey()`, in ECB over a buffer of whole 16-byte blocks. The
 * device and the server inject different implementations (noble in the worker, node:crypto on the
 * server) that must agree bit for bit. Returns a new buffer that the caller owns and may modify.
 */
export interface BlockCipher {
  encryptBlocks(blocks: Uint8Array): Uint8Array
}

/** The public AES-128 key of the PRG: its 16 ASCII bytes. Fixed-key AES needs no secret key. */
const AES_KEY = 'pocketrec dpf v1'

/** A fresh copy of the PRG's AES-128 key, for the BlockCipher implementations. */
export function dpfAesKey(): Uint8Array {
  return new TextEncoder().encode(AES_KEY)
}

/** The domain [0, 2^domainBits) and the length m of β. Both servers and the device agree on them. */
export interface DpfParams {
  domainBits: number
  payloadLength: number
}

/** 2^30 points is far beyond any catalogue, and keeps every index a small integer. */
export const MAX_DOMAIN_BITS = 30
/** A row's change plus its count is embedDim + 1 values; this bounds a hostile header's claims. */
export const MAX_PAYLOAD_LENGTH = 1 << 16

/** A key in memory: what `parseDpfKey` reads from the wire. Words are little-endian int32. */
export interface DpfKey {
  party: 0 | 1
  /** s^(0): 4 words. */
  seed: Int32Array
  /** s_CW of each level, 4 words a level, root first. */
  seedCorrections: Int32Array
  /** t_CW^L and t_CW^R of each level (0 or 1), two a level. */
  controlCorrections: Uint8Array
  /** cs, the proof correction word: 8 words (2λ = 256 bits). */
  proofCorrection: Int32Array
  /** CW^(n+1): m values. */
  valueCorrection: Int32Array
}

// The wire format: [format, party, domainBits, 0, payloadLength u32] · seed (16) · per level
// s_CW (16) and one byte of control-bit corrections (bit 0: left, bit 1: right) · cs (32) ·
// CW^(n+1) (4·m, int32). Everything little-endian. Format 1 was the same without cs.
const KEY_FORMAT = 2
const HEADER_BYTES = 8
const SEED_BYTES = 16
const LEVEL_BYTES = SEED_BYTES + 1
/** Bytes of cs and of a proof: 2λ, so that matching two leaves at once is a 4-sum over 256 bits. */
export const DPF_PROOF_BYTES = 32

// Tweaks, XORed into the last word of a seed before the PRG (domain separation): the left child,
// the right child, and the output conversion's blocks VALUE, VALUE + 1, … (one per 4 values,
// below 2 + 2^14). The proof's hashes H (a leaf) and H' (the accumulator) take two blocks each,
// tweaked PROOF + j and ACCUMULATE + j for j = 0, 1: far from the others and from
// secure-update.ts's share tweak (0x53484152).
const TWEAK_LEFT = 0
const TWEAK_RIGHT = 1
const TWEAK_VALUE = 2
const TWEAK_PROOF = 0x70690000
const TWEAK_ACCUMULATE = 0x61630000

// Leaves converted per encryptBlocks call: about this many blocks (128 KiB). node:crypto ran
// fastest here with 64–256 KiB a call (it allocates each output), and the chunk stays in cache.
const VALUE_CHUNK_BLOCKS = 1 << 13

// The proof's accumulator π ← π ⊕ H'(π ⊕ π_x) is a chain: one leaf at a time, it would take one
// encryptBlocks call per leaf (measured: 23–35 ms a key at 43,097 leaves with node:crypto, more
// than the evaluation). So it runs as PROOF_LANES independent chains, leaf x in chain x mod
// PROOF_LANES, each step of all chains one call; the chains' ends are hashed together in order.
// Leaves are hashed (H) PROOF_CHUNK_LEAVES at a time, two blocks each (128 KiB a call).
const PROOF_LANES = 256
const PROOF_CHUNK_LEAVES = 1 << 12
/** The final hash's domain separation (a proof of format 2). */
const PROOF_TAG = new TextEncoder().encode('pocketrec vdpf proof v2')

// The PRG and the key format read blocks as int32 words through typed-array views, which follow
// the host's byte order; every browser and Node platform in use is little-endian.
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1

/** Bytes of one serialized key: 56 + 17·domainBits + 4·payloadLength (732 at 2^16 and m = 101). */
export function dpfKeyBytes(params: DpfParams): number {
  checkParams(params)
  return valuesOffset(params.domainBits) + 4 * params.payloadLength
}

/** Where cs starts in a key: after the header, the root seed and the levels. */
function proofOffset(domainBits: number): number {
  return HEADER_BYTES + SEED_BYTES + LEVEL_BYTES * domainBits
}

/** Where CW^(n+1) starts in a key. */
function valuesOffset(domainBits: number): number {
  return proofOffset(domainBits) + DPF_PROOF_BYTES
}

/**
 * The two keys of f(x) = β if x = α else 0 over [0, 2^domainBits), serialized: element b goes to
 * party b. `randomBytes` must be a CSPRNG (crypto.getRandomValues): the keys' secrecy is its.
 */
export function generateDpfKeys(
  params: DpfParams,
  alpha: number,
  beta: Int32Array,
  randomBytes: (n: number) => Uint8Array,
  cipher: BlockCipher,
): [Uint8Array, Uint8Array] {
  checkParams(params)
  const { domainBits: n, payloadLength: m } = params
  if (!isIntegerIn(alpha, 0, 2 ** n - 1))
    throw new RangeError(`expected alpha in [0, ${2 ** n}), got ${alpha}`)
  if (beta.length !== m) throw new RangeError(`expected ${m} values of beta, got ${beta.length}`)
  const random = randomBytes(2 * SEED_BYTES)
  if (random.length !== 2 * SEED_BYTES)
    throw new RangeError(`expected ${2 * SEED_BYTES} random bytes, got ${random.length}`)

  const bytes = new Uint8Array(dpfKeyBytes(params))
  const view = new DataView(bytes.buffer)
  // Both parties' seeds s_0, s_1 (words 0–3 and 4–7) and control bits: t_0 = 0, t_1 = 1.
  const seeds = words(random.slice())
  const seed0 = seeds.slice(0, 4)
  const seed1 = seeds.slice(4, 8)
  const ts = [0, 1]
  const correction = new Int32Array(4)
  const input = new Int32Array(16)
  for (let level = 0; level < n; level++) {
    const a = (alpha >>> (n - 1 - level)) & 1
    // G(s_b) for both parties: blocks [s_0 left, s_0 right, s_1 left, s_1 right].
    for (let b = 0; b < 2; b++)
      for (let d = 0; d < 2; d++) setChildInput(input, 8 * b + 4 * d, seeds, 4 * b, d)
    const g = hashBlocks(cipher, input)
    // s_CW = s_0^Lose ⊕ s_1^Lose (seeds without their control bit); t_CW as in Fig. 1.
    const lose = 4 * (1 - a)
    for (let w = 0; w < 4; w++) correction[w] = g[lose + w]! ^ g[8 + lose + w]!
    correction[0] &= ~1
    const controlLeft = (g[0]! ^ g[8]! ^ a ^ 1) & 1
    const controlRight = (g[4]! ^ g[12]! ^ a) & 1
    const at = HEADER_BYTES + SEED_BYTES + LEVEL_BYTES * level
    for (let w = 0; w < 4; w++) view.setInt32(at + 4 * w, correction[w]!, true)
    bytes[at + SEED_BYTES] = controlLeft | (controlRight << 1)
    // Each party's next node on α's path, exactly as the evaluator will compute it.
    for (let b = 0; b < 2; b++)
      ts[b] = correctChild(g, 8 * b + 4 * a, ts[b]!, correction, controlLeft, controlRight, a)
    seeds.set(g.subarray(4 * a, 4 * a + 4), 0)
    seeds.set(g.subarray(8 + 4 * a, 8 + 4 * a + 4), 4)
  }
  // cs = π̃_0 ⊕ π̃_1, the two parties' leaf hashes at α: since t_0 ⊕ t_1 = 1 there, the
  // evaluators' π_α = π̃_b ⊕ t_b·cs are then equal, as they are at every other leaf.
  const leaves = new Int32Array(16)
  setLeafInput(leaves, 0, seeds, 0, ts[0]!, alpha)
  setLeafInput(leaves, 8, seeds, 4, ts[1]!, alpha)
  const leafHashes = hashBlocks(cipher, leaves)
  for (let w = 0; w < 8; w++)
    view.setInt32(proofOffset(n) + 4 * w, leafHashes[w]! ^ leafHashes[8 + w]!, true)
  // CW^(n+1) = (−1)^t_1 · (β − Convert(s_0) + Convert(s_1)).
  const blocks = valueBlocks(m)
  const { input: x, encrypted: e } = encryptValueBlocks(cipher, seeds, 2, blocks)
  const valuesAt = valuesOffset(n)
  for (let k = 0, k1 = 4 * blocks; k < m; k++, k1++) {
    const cw = (beta[k]! - (e[k]! ^ x[k]!) + (e[k1]! ^ x[k1]!)) | 0
    view.setInt32(valuesAt + 4 * k, ts[1] ? -cw | 0 : cw, true)
  }

  bytes.set([KEY_FORMAT, 0, n, 0], 0)
  view.setUint32(4, m, true)
  const key1 = bytes.slice()
  const view1 = new DataView(key1.buffer)
  key1[1] = 1
  for (let w = 0; w < 4; w++) {
    view.setInt32(HEADER_BYTES + 4 * w, seed0[w]!, true)
    view1.setInt32(HEADER_BYTES + 4 * w, seed1[w]!, true)
  }
  return [bytes, key1]
}

/**
 * Reads a key off the wire, for `params`. Throws a RangeError saying what was expected and what
 * arrived for a wrong length, format, domain or payload length, or non-canonical control bits.
 */
export function parseDpfKey(bytes: Uint8Array, params: DpfParams): DpfKey {
  checkParams(params)
  const { domainBits: n, payloadLength: m } = params
  const expected = dpfKeyBytes(params)
  // The header first: "a key for 20 bits" says more than "wrong length" when both are true.
  if (bytes.length >= HEADER_BYTES) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES)
    if (bytes[0] === 1)
      throw new RangeError(
        `expected DPF key format ${KEY_FORMAT}, got 1: a format-1 key has no proof correction word, so no server can verify it`,
      )
    if (bytes[0] !== KEY_FORMAT)
      throw new RangeError(`expected DPF key format ${KEY_FORMAT}, got ${bytes[0]}`)
    if (bytes[1] !== 0 && bytes[1] !== 1)
      throw new RangeError(`expected a DPF key for party 0 or 1, got ${bytes[1]}`)
    if (bytes[2] !== n)
      throw new RangeError(`expected a DPF key for domainBits ${n}, got ${bytes[2]}`)
    if (bytes[3] !== 0)
      throw new RangeError(`expected a zero reserved header byte, got ${bytes[3]}`)
    const length = view.getUint32(4, true)
    if (length !== m)
      throw new RangeError(`expected a DPF key for payloadLength ${m}, got ${length}`)
  }
  if (bytes.length !== expected)
    throw new RangeError(
      `expected a DPF key of ${expected} bytes for domainBits ${n} and payloadLength ${m}, got ${bytes.length}`,
    )
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const readWords = (at: number, count: number) => {
    const out = new Int32Array(count)
    for (let w = 0; w < count; w++) out[w] = view.getInt32(at + 4 * w, true)
    return out
  }
  const seedCorrections = new Int32Array(4 * n)
  const controlCorrections = new Uint8Array(2 * n)
  for (let level = 0; level < n; level++) {
    const at = HEADER_BYTES + SEED_BYTES + LEVEL_BYTES * level
    seedCorrections.set(readWords(at, 4), 4 * level)
    // The bit is a control bit's place: keeping it 0 keeps every corrected seed's lowest bit 0,
    // which the proof's leaf hash relies on (setLeafInput).
    if (bytes[at]! & 1)
      throw new RangeError(`expected the lowest bit of s_CW at level ${level} to be 0, got 1`)
    const control = bytes[at + SEED_BYTES]!
    if (control > 3)
      throw new RangeError(`expected control-bit corrections 0–3 at level ${level}, got ${control}`)
    controlCorrections[2 * level] = control & 1
    controlCorrections[2 * level + 1] = control >> 1
  }
  return {
    party: bytes[1] as 0 | 1,
    seed: readWords(HEADER_BYTES, 4),
    seedCorrections,
    controlCorrections,
    proofCorrection: readWords(proofOffset(n), DPF_PROOF_BYTES / 4),
    valueCorrection: readWords(valuesOffset(n), m),
  }
}

/**
 * The server's hot path: ADDS (mod 2^32) this party's share of f(x) into into[x·m … x·m + m) for
 * every x in [0, domainSize), and writes nothing else. Expands the tree level by level, one
 * encryptBlocks call a level, skipping subtrees wholly at or beyond domainSize, then converts the
 * leaves in large batches: per-block calls into the cipher would cost more than the AES itself.
 */
export function evaluateDpfInto(
  key: Uint8Array,
  party: 0 | 1,
  params: DpfParams,
  domainSize: number,
  cipher: BlockCipher,
  into: Int32Array,
): void {
  const parsed = parseDpfKey(key, params)
  checkParty(parsed, party)
  const { domainBits: n, payloadLength: m } = params
  checkDomainSize(domainSize, n)
  if (into.length < domainSize * m)
    throw new RangeError(`expected at least ${domainSize * m} sums to add into, got ${into.length}`)
  if (domainSize === 0) return

  const { seeds, controls } = expandLeaves(parsed, party, n, domainSize, cipher)
  const blocks = valueBlocks(m)
  const leavesPerCall = Math.max(1, Math.floor(VALUE_CHUNK_BLOCKS / blocks))
  const cw = parsed.valueCorrection
  const scratch = new Int32Array(4 * blocks * Math.min(leavesPerCall, domainSize))
  for (let start = 0; start < domainSize; start += leavesPerCall) {
    const leaves = Math.min(leavesPerCall, domainSize - start)
    const values = encryptValueBlocks(cipher, seeds.subarray(4 * start), leaves, blocks, scratch)
    for (let l = 0; l < leaves; l++) {
      const x = start + l
      addShare(into, x * m, values, 4 * blocks * l, m, controls[x]!, cw, party)
    }
  }
}

/**
 * This party's 32-byte proof for its key over the leaves [0, domainSize), the ones
 * `evaluateDpfInto` adds: the servers exchange proofs and add a key pair only if they are equal.
 * Costs the tree expansion and two hashes a leaf, no output conversion (a fraction of
 * `evaluateDpfInto`'s time at m = 101).
 *
 * What equal proofs establish (with overwhelming probability, AES modelled as a random
 * permutation): the pair is a point function over [0, domainSize), i.e. the two shares add up to
 * zero at every evaluated x but at most one. How: each party hashes every leaf,
 * π̃_x = H(x ‖ s_x ‖ t_x), sets π_x = π̃_x ⊕ t_x·cs, and the proof is a collision-resistant hash
 * of all the π_x, of domainSize and of the key's public part (every byte but the party and the
 * root seed). So equal proofs mean equal correction words in both keys and, at each x, either
 * the same leaf (s, t) for both parties, whose outputs cancel, or H(x‖s_0‖t_0) ⊕ H(x‖s_1‖t_1) = cs
 * with t_0 ≠ t_1 (two different leaves with equal t would be a collision of H): one device-chosen
 * cs can satisfy that at one x, and at two only by a 4-sum of 256-bit hashes (about 2^85 work).
 *
 * What it does not establish:
 * - The payload β: the row's change and its count may be anything in (Z/2^32)^m, a count other
 *   than 1 included. Bounding them would take a proof from the device checked on the shares
 *   (as Prio's), which is not built.
 * - Anything beyond domainSize: a pair whose point is at or past it adds 0 at every evaluated x,
 *   and verifies, which is harmless (a padding key does the same).
 *
 * Two additions to the paper's Fig. 1, both against a malicious device. The control bit t_x is
 * hashed with the seed (in the seed's lowest bit, which parseDpfKey keeps 0): with H(x ‖ s_x)
 * alone, a pair whose leaves all share their seed but differ in t (root seeds equal, every
 * t_CW = 1) would pass with cs = 0 while adding CW^(n+1) at every leaf. And the key's public part
 * is hashed in: keys whose CW^(n+1) differ by δ have equal π_x, yet add δ at every leaf whose
 * t = 1. The accumulation π ← π ⊕ H'(π ⊕ π_x), started at cs, is the paper's, run in
 * PROOF_LANES interleaved chains.
 */
export function verifyDpfKey(
  key: Uint8Array,
  party: 0 | 1,
  params: DpfParams,
  domainSize: number,
  cipher: BlockCipher,
): Uint8Array {
  const parsed = parseDpfKey(key, params)
  checkParty(parsed, party)
  const n = params.domainBits
  checkDomainSize(domainSize, n)
  const digest = sha256.create()
  digest.update(PROOF_TAG)
  // The public part of the key, exactly as sent: what both keys of an honest pair share.
  digest.update(key.subarray(0, 1))
  digest.update(key.subarray(2, HEADER_BYTES))
  digest.update(key.subarray(HEADER_BYTES + SEED_BYTES))
  const size = new Uint8Array(4)
  new DataView(size.buffer).setUint32(0, domainSize, true)
  digest.update(size)
  if (domainSize > 0) {
    const { seeds, controls } = expandLeaves(parsed, party, n, domainSize, cipher)
    const lanes = accumulateProof(cipher, seeds, controls, domainSize, parsed.proofCorrection)
    digest.update(new Uint8Array(lanes.buffer, lanes.byteOffset, lanes.byteLength))
  }
  return digest.digest()
}

/** This party's share of f(x) at one point: the same computation as `evaluateDpfInto`, one path. */
export function evaluateDpfAt(
  key: Uint8Array,
  party: 0 | 1,
  params: DpfParams,
  x: number,
  cipher: BlockCipher,
): Int32Array {
  const parsed = parseDpfKey(key, params)
  checkParty(parsed, party)
  const { domainBits: n, payloadLength: m } = params
  if (!isIntegerIn(x, 0, 2 ** n - 1)) throw new RangeError(`expected x in [0, ${2 ** n}), got ${x}`)
  let seed = parsed.seed
  let control = party as number
  const input = new Int32Array(4)
  const correction = new Int32Array(4)
  for (let level = 0; level < n; level++) {
    const d = (x >>> (n - 1 - level)) & 1
    setChildInput(input, 0, seed, 0, d)
    const g = hashBlocks(cipher, input)
    correction.set(parsed.seedCorrections.subarray(4 * level, 4 * level + 4))
    const left = parsed.controlCorrections[2 * level]!
    const right = parsed.controlCorrections[2 * level + 1]!
    control = correctChild(g, 0, control, correction, left, right, d)
    seed = g
  }
  const share = new Int32Array(m)
  addShare(
    share,
    0,
    encryptValueBlocks(cipher, seed, 1, valueBlocks(m)),
    0,
    m,
    control,
    parsed.valueCorrection,
    party,
  )
  return share
}

function checkParams({ domainBits, payloadLength }: DpfParams): void {
  if (!LITTLE_ENDIAN) throw new RangeError('expected a little-endian platform for the DPF')
  if (!isIntegerIn(domainBits, 1, MAX_DOMAIN_BITS))
    throw new RangeError(`expected domainBits in [1, ${MAX_DOMAIN_BITS}], got ${domainBits}`)
  if (!isIntegerIn(payloadLength, 1, MAX_PAYLOAD_LENGTH))
    throw new RangeError(
      `expected payloadLength in [1, ${MAX_PAYLOAD_LENGTH}], got ${payloadLength}`,
    )
}

function isIntegerIn(value: number, min: number, max: number): boolean {
  return Number.isInteger(value) && value >= min && value <= max
}

function checkDomainSize(domainSize: number, domainBits: number): void {
  if (!isIntegerIn(domainSize, 0, 2 ** domainBits))
    throw new RangeError(`expected domainSize in [0, ${2 ** domainBits}], got ${domainSize}`)
}

// The party is not secret, and a key evaluated as the other party's gives garbage that still
// looks like a share: a swapped pair of keys would corrupt both sums without a trace.
function checkParty(key: DpfKey, party: 0 | 1): void {
  if (key.party !== party)
    throw new RangeError(`expected a DPF key for party ${party}, got one for party ${key.party}`)
}

/** Blocks of output conversion per leaf: four int32 values a block. */
function valueBlocks(payloadLength: number): number {
  return Math.ceil(payloadLength / 4)
}

/** An Int32Array over `bytes`, copied only where the offset is not word-aligned. */
function words(bytes: Uint8Array): Int32Array {
  if (bytes.byteOffset % 4 !== 0) bytes = bytes.slice()
  return new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2)
}

/**
 * The PRG in Matyas–Meyer–Oseas form over a whole batch: each block x of `input` (a seed XOR its
 * tweak) becomes AES_k(x) ⊕ x, in one encryptBlocks call. With AES_k modelled as a random
 * permutation, the outputs for a uniform secret seed are pseudorandom (the feed-forward makes the
 * map one-way, which the bare permutation is not); see Guo, Katz, Wang and Yu, "Efficient and
 * Secure Multiparty Computation from Fixed-Key Block Ciphers" (IEEE S&P 2020).
 */
function hashBlocks(cipher: BlockCipher, input: Int32Array): Int32Array {
  const out = encryptWords(cipher, input)
  for (let i = 0; i < out.length; i++) out[i] ^= input[i]!
  return out
}

/** AES_k of each block of `input`, in one encryptBlocks call, as words the caller owns. */
function encryptWords(cipher: BlockCipher, input: Int32Array): Int32Array {
  const encrypted = cipher.encryptBlocks(
    new Uint8Array(input.buffer, input.byteOffset, input.byteLength),
  )
  if (encrypted.byteLength !== input.byteLength)
    throw new RangeError(
      `expected ${input.byteLength} bytes from the block cipher, got ${encrypted.byteLength}`,
    )
  return words(encrypted)
}

/** input[at … at+4) = seeds[from … from+4) ⊕ the tweak of child side `d` (0 left, 1 right). */
function setChildInput(input: Int32Array, at: number, seeds: Int32Array, from: number, d: number) {
  input[at] = seeds[from]!
  input[at + 1] = seeds[from + 1]!
  input[at + 2] = seeds[from + 2]!
  input[at + 3] = seeds[from + 3]! ^ (d ? TWEAK_RIGHT : TWEAK_LEFT)
}

/**
 * This party's leaves [0, domainSize) (domainSize ≥ 1): 4 seed words and a control bit each.
 * Level by level, one encryptBlocks call a level, skipping subtrees wholly at or beyond
 * domainSize.
 */
function expandLeaves(
  key: DpfKey,
  party: 0 | 1,
  domainBits: number,
  domainSize: number,
  cipher: BlockCipher,
): { seeds: Int32Array; controls: Uint8Array } {
  const n = domainBits
  // Nodes at depth d cover 2^(n−d) leaves; only the first ceil(domainSize / 2^(n−d)) are needed.
  let seeds = key.seed
  let controls = new Uint8Array([party])
  const correction = new Int32Array(4)
  for (let level = 0; level < n; level++) {
    const children = Math.ceil(domainSize / 2 ** (n - level - 1))
    const input = new Int32Array(4 * children)
    for (let q = 0; q < children; q++) setChildInput(input, 4 * q, seeds, 4 * (q >> 1), q & 1)
    // Child q of node q >> 1 lies on its side q & 1; hashBlocks' output becomes the seeds.
    const g = hashBlocks(cipher, input)
    correction.set(key.seedCorrections.subarray(4 * level, 4 * level + 4))
    const left = key.controlCorrections[2 * level]!
    const right = key.controlCorrections[2 * level + 1]!
    const next = new Uint8Array(children)
    for (let q = 0; q < children; q++)
      next[q] = correctChild(g, 4 * q, controls[q >> 1]!, correction, left, right, q & 1)
    seeds = g
    controls = next
  }
  return { seeds, controls }
}

/**
 * The proof's chains over leaves [0, domainSize): 8 words per chain, min(PROOF_LANES,
 * domainSize) chains, each started at cs. Leaf x goes into chain x mod lanes as
 * π ← π ⊕ H'(π ⊕ π_x), with π_x = H(x ‖ s_x ‖ t_x) ⊕ t_x·cs and H' the MMO hash of two blocks.
 */
function accumulateProof(
  cipher: BlockCipher,
  seeds: Int32Array,
  controls: Uint8Array,
  domainSize: number,
  cs: Int32Array,
): Int32Array {
  const lanes = Math.min(PROOF_LANES, domainSize)
  const chains = new Int32Array(8 * lanes)
  for (let l = 0; l < lanes; l++) chains.set(cs, 8 * l)
  const leafInput = new Int32Array(8 * Math.min(PROOF_CHUNK_LEAVES, domainSize))
  const stepInput = new Int32Array(8 * lanes)
  // PROOF_CHUNK_LEAVES is a multiple of PROOF_LANES, so every chunk starts at chain 0.
  for (let start = 0; start < domainSize; start += PROOF_CHUNK_LEAVES) {
    const count = Math.min(PROOF_CHUNK_LEAVES, domainSize - start)
    for (let l = 0; l < count; l++)
      setLeafInput(leafInput, 8 * l, seeds, 4 * (start + l), controls[start + l]!, start + l)
    const leafHashes = hashBlocks(cipher, leafInput.subarray(0, 8 * count))
    for (let step = 0; step < count; step += lanes) {
      const width = Math.min(lanes, count - step)
      const input = stepInput.subarray(0, 8 * width)
      for (let l = 0; l < width; l++) {
        const from = 8 * (step + l)
        const corrected = controls[start + step + l]
        for (let w = 0; w < 8; w++)
          input[8 * l + w] = chains[8 * l + w]! ^ leafHashes[from + w]! ^ (corrected ? cs[w]! : 0)
        input[8 * l + 3] ^= TWEAK_ACCUMULATE
        input[8 * l + 7] ^= TWEAK_ACCUMULATE + 1
      }
      const h = hashBlocks(cipher, input)
      for (let w = 0; w < 8 * width; w++) chains[w] ^= h[w]!
    }
  }
  return chains
}

/**
 * input[at … at+8) = H's two blocks for leaf x: its seed with the control bit in the lowest bit,
 * x in the third word, the tweak PROOF + j in the last. A leaf's seed has its lowest bit 0
 * (cleared by correctChild, and parseDpfKey refuses a correction word that would set it), so
 * (s, t) ↦ block is one-to-one: two leaves that differ only there must not hash alike.
 */
function setLeafInput(
  input: Int32Array,
  at: number,
  seeds: Int32Array,
  from: number,
  control: number,
  x: number,
): void {
  for (let j = 0; j < 2; j++, at += 4) {
    input[at] = seeds[from]! | control
    input[at + 1] = seeds[from + 1]!
    input[at + 2] = seeds[from + 2]! ^ x
    input[at + 3] = seeds[from + 3]! ^ (TWEAK_PROOF + j)
  }
}

/**
 * Turns the PRG output g[at … at+4) of a child on side `d` into that child's seed, in place, and
 * returns its control bit (Fig. 1's τ): the bit is the output's lowest, the seed the rest, and a
 * parent whose control bit is 1 applies the level's correction words.
 */
function correctChild(
  g: Int32Array,
  at: number,
  parentControl: number,
  correction: Int32Array,
  left: number,
  right: number,
  d: number,
): number {
  let control = g[at]! & 1
  g[at] &= ~1
  if (parentControl) {
    g[at] ^= correction[0]!
    g[at + 1] ^= correction[1]!
    g[at + 2] ^= correction[2]!
    g[at + 3] ^= correction[3]!
    control ^= d ? right : left
  }
  return control
}

/**
 * Convert(s) for `count` leaf seeds, in one encryptBlocks call: `blocks` PRG blocks a seed under
 * the value tweaks, 4·blocks int32 values a leaf (the first m are Convert's output). Returns the
 * PRG's input and AES of it, not yet XORed: `addShare` applies the feed-forward as it reads them,
 * which saves a pass over the hot path's largest buffer. `scratch`, if given, holds the input.
 */
function encryptValueBlocks(
  cipher: BlockCipher,
  seeds: Int32Array,
  count: number,
  blocks: number,
  scratch?: Int32Array,
): Converted {
  const input = scratch?.subarray(0, 4 * blocks * count) ?? new Int32Array(4 * blocks * count)
  for (let l = 0; l < count; l++) {
    const s0 = seeds[4 * l]!
    const s1 = seeds[4 * l + 1]!
    const s2 = seeds[4 * l + 2]!
    const s3 = seeds[4 * l + 3]!
    for (let j = 0, at = 4 * blocks * l; j < blocks; j++, at += 4) {
      input[at] = s0
      input[at + 1] = s1
      input[at + 2] = s2
      input[at + 3] = s3 ^ (TWEAK_VALUE + j)
    }
  }
  return { input, encrypted: encryptWords(cipher, input) }
}

/** Value i of a conversion is encrypted[i] ⊕ input[i] (Matyas–Meyer–Oseas, as in hashBlocks). */
interface Converted {
  input: Int32Array
  encrypted: Int32Array
}

/**
 * into[at … at+m) += (−1)^party · (Convert(s) + t·CW), mod 2^32: Fig. 1's output, summed, for the
 * leaf whose conversion starts at `from`.
 */
function addShare(
  into: Int32Array,
  at: number,
  { input: x, encrypted: e }: Converted,
  from: number,
  m: number,
  control: number,
  cw: Int32Array,
  party: 0 | 1,
): void {
  // Four loops rather than one with branches inside: this runs m times per leaf.
  if (party === 0) {
    if (control)
      for (let k = 0; k < m; k++)
        into[at + k] = (into[at + k]! + (e[from + k]! ^ x[from + k]!) + cw[k]!) | 0
    else
      for (let k = 0; k < m; k++) into[at + k] = (into[at + k]! + (e[from + k]! ^ x[from + k]!)) | 0
  } else {
    if (control)
      for (let k = 0; k < m; k++)
        into[at + k] = (into[at + k]! - (e[from + k]! ^ x[from + k]!) - cw[k]!) | 0
    else
      for (let k = 0; k < m; k++) into[at + k] = (into[at + k]! - (e[from + k]! ^ x[from + k]!)) | 0
  }
}
