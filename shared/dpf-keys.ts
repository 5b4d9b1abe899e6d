// DPF keys: the parameters both servers and the device agree on, the wire format of a key, and
// the two things done to it outside the servers' evaluation: generating a pair on the device and
// parsing one off the wire.

import {
  type BlockCipher,
  correctChild,
  encryptValueBlocks,
  hashBlocks,
  setChildInput,
  setLeafInput,
  valueBlocks,
  words,
} from './dpf-prg'

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
export const HEADER_BYTES = 8
export const SEED_BYTES = 16
const LEVEL_BYTES = SEED_BYTES + 1
/** Bytes of cs and of a proof: 2λ, so that matching two leaves at once is a 4-sum over 256 bits. */
export const DPF_PROOF_BYTES = 32

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

function checkParams({ domainBits, payloadLength }: DpfParams): void {
  if (!LITTLE_ENDIAN) throw new RangeError('expected a little-endian platform for the DPF')
  if (!isIntegerIn(domainBits, 1, MAX_DOMAIN_BITS))
    throw new RangeError(`expected domainBits in [1, ${MAX_DOMAIN_BITS}], got ${domainBits}`)
  if (!isIntegerIn(payloadLength, 1, MAX_PAYLOAD_LENGTH))
    throw new RangeError(
      `expected payloadLength in [1, ${MAX_PAYLOAD_LENGTH}], got ${payloadLength}`,
    )
}

export function isIntegerIn(value: number, min: number, max: number): boolean {
  return Number.isInteger(value) && value >= min && value <= max
}
