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
//
// This file evaluates and verifies keys (the servers' side); dpf-keys.ts holds the key format and
// makes and reads keys, and dpf-prg.ts the PRG and tree steps both sides share.
import { sha256 } from '@noble/hashes/sha2.js'
import {
  type DpfKey,
  type DpfParams,
  HEADER_BYTES,
  isIntegerIn,
  parseDpfKey,
  SEED_BYTES,
} from './dpf-keys'
import {
  addShare,
  type BlockCipher,
  correctChild,
  encryptValueBlocks,
  hashBlocks,
  setChildInput,
  setLeafInput,
  TWEAK_ACCUMULATE,
  valueBlocks,
} from './dpf-prg'

// Also public, but defined in the files whose code needs them; importers keep this one path.
export type { BlockCipher } from './dpf-prg'
export { dpfAesKey } from './dpf-prg'
export type { DpfKey, DpfParams } from './dpf-keys'
export {
  DPF_PROOF_BYTES,
  dpfKeyBytes,
  generateDpfKeys,
  MAX_DOMAIN_BITS,
  MAX_PAYLOAD_LENGTH,
  parseDpfKey,
} from './dpf-keys'

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
