// The DPF's primitives, shared by key generation and evaluation: the fixed-key AES PRG (its
// tweaks, the Matyas–Meyer–Oseas hash over whole batches), a tree node's children and their
// correction words, a leaf's proof input, and the output conversion into a share.

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

// Tweaks, XORed into the last word of a seed before the PRG (domain separation): the left child,
// the right child, and the output conversion's blocks VALUE, VALUE + 1, … (one per 4 values,
// below 2 + 2^14). The proof's hashes H (a leaf) and H' (the accumulator) take two blocks each,
// tweaked PROOF + j and ACCUMULATE + j for j = 0, 1: far from the others and from
// secure-update.ts's share tweak (0x53484152).
const TWEAK_LEFT = 0
const TWEAK_RIGHT = 1
const TWEAK_VALUE = 2
const TWEAK_PROOF = 0x70690000
export const TWEAK_ACCUMULATE = 0x61630000

/** Blocks of output conversion per leaf: four int32 values a block. */
export function valueBlocks(payloadLength: number): number {
  return Math.ceil(payloadLength / 4)
}

/** An Int32Array over `bytes`, copied only where the offset is not word-aligned. */
export function words(bytes: Uint8Array): Int32Array {
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
export function hashBlocks(cipher: BlockCipher, input: Int32Array): Int32Array {
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
export function setChildInput(
  input: Int32Array,
  at: number,
  seeds: Int32Array,
  from: number,
  d: number,
) {
  input[at] = seeds[from]!
  input[at + 1] = seeds[from + 1]!
  input[at + 2] = seeds[from + 2]!
  input[at + 3] = seeds[from + 3]! ^ (d ? TWEAK_RIGHT : TWEAK_LEFT)
}

/**
 * input[at … at+8) = H's two blocks for leaf x: its seed with the control bit in the lowest bit,
 * x in the third word, the tweak PROOF + j in the last. A leaf's seed has its lowest bit 0
 * (cleared by correctChild, and parseDpfKey refuses a correction word that would set it), so
 * (s, t) ↦ block is one-to-one: two leaves that differ only there must not hash alike.
 */
export function setLeafInput(
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
export function correctChild(
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
export function encryptValueBlocks(
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
export interface Converted {
  input: Int32Array
  encrypted: Int32Array
}

/**
 * into[at … at+m) += (−1)^party · (Convert(s) + t·CW), mod 2^32: Fig. 1's output, summed, for the
 * leaf whose conversion starts at `from`.
 */
export function addShare(
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
