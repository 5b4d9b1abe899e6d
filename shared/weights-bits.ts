// The weights container's bits: float16 conversion, int8 and int6 quantisation (int6 packed four
// values in three bytes), CRC-32, and the bulk writers and readers of each dtype's data region
// (their loops run once per stored element). The storage of each dtype is documented in
// weights-codec.ts.

import {
  countScales,
  fail,
  int6Bytes,
  STEP_LIMITS,
  type ScaledDType,
  type TensorEntry,
} from './weights-header'

const FLOAT16_EXPONENT_MASK = 0x7c00

/** What the writers read of a NamedTensor (weights-codec.ts), which satisfies it. */
interface TensorSource {
  name: string
  shape: readonly number[]
  values: Float32Array
}

/**
 * float32 -> binary16 bits, rounding to nearest even, with subnormals, ±Infinity and NaN kept.
 * `value` is first rounded to float32, as storing it in a Float32Array would.
 */
export function encodeFloat16(value: number): number {
  scratchFloat[0] = value
  return float32BitsToFloat16Bits(scratchBits[0]!)
}

/** binary16 bits (low 16 bits of `bits`) -> number; exact, every half is a float32. */
export function decodeFloat16(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1
  const exponent = (bits >>> 10) & 0x1f
  const mantissa = bits & 0x3ff
  if (exponent === 0) return sign * mantissa * 2 ** -24
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN
  return sign * (0x400 + mantissa) * 2 ** (exponent - 25)
}

/** CRC-32 (IEEE 802.3 polynomial, reflected), the same value zlib's crc32 gives. */
export function computeCrc32(bytes: Uint8Array): number {
  const tables = getCrcTables()
  const t0 = tables[0]!
  const [t1, t2, t3] = [tables[1]!, tables[2]!, tables[3]!]
  let crc = 0xffffffff
  let i = 0
  // Slicing-by-4: one table lookup per byte but four bytes per dependent step, ~3x bytewise.
  const end4 = bytes.length - (bytes.length % 4)
  for (; i < end4; i += 4) {
    crc ^= bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)
    crc = t3[crc & 0xff]! ^ t2[(crc >>> 8) & 0xff]! ^ t1[(crc >>> 16) & 0xff]! ^ t0[crc >>> 24]!
  }
  for (; i < bytes.length; i++) crc = t0[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8)
  return (crc ^ 0xffffffff) >>> 0
}

// ---------------------------------------------------------------------------------------------
// Writers (encode)

export function writeFloat32(
  bytes: Uint8Array,
  offset: number,
  tensor: TensorSource,
  hostLittleEndian: boolean,
): void {
  const { values } = tensor
  checkFinite(tensor)
  if (hostLittleEndian) {
    // `bytes` is freshly allocated and `offset` a multiple of 8, so the view is aligned.
    new Float32Array(bytes.buffer, offset, values.length).set(values)
    return
  }
  const view = new DataView(bytes.buffer, offset, values.length * 4)
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i]!, true)
}

export function writeFloat16(
  bytes: Uint8Array,
  offset: number,
  tensor: TensorSource,
  hostLittleEndian: boolean,
): void {
  const { values } = tensor
  // Same-host views, so reading float bits this way is byte-order independent.
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length)
  // On little-endian hosts the halves go straight into the (aligned) output bytes.
  const halves = hostLittleEndian
    ? new Uint16Array(bytes.buffer, offset, values.length)
    : new Uint16Array(values.length)
  for (let i = 0; i < bits.length; i++) {
    const half = float32BitsToFloat16Bits(bits[i]!)
    if ((half & FLOAT16_EXPONENT_MASK) === FLOAT16_EXPONENT_MASK) {
      const value = values[i]!
      fail(
        'E_WEIGHTS_NONFINITE',
        Number.isFinite(value)
          ? `tensor '${tensor.name}': expected values within float16's ±65504, got ${value} at index ${i}`
          : `tensor '${tensor.name}': expected finite values, got ${value} at index ${i}`,
      )
    }
    halves[i] = half
  }
  if (hostLittleEndian) return
  const view = new DataView(bytes.buffer, offset, values.length * 2)
  for (let i = 0; i < halves.length; i++) view.setUint16(i * 2, halves[i]!, true)
}

/**
 * int8 and int6: each row (countScales) rounded to whole steps of its own scale, the row's
 * largest magnitude / STEP_LIMITS[dtype]; the float32 scales go to `scalesOffset`, the steps to
 * `offset`, a byte each (int8) or packed four to three bytes (int6, packInt6).
 */
export function writeScaled(
  bytes: Uint8Array,
  offset: number,
  scalesOffset: number,
  tensor: TensorSource,
  dtype: ScaledDType,
): void {
  const { values } = tensor
  checkFinite(tensor)
  const rows = countScales(tensor.shape)
  const rowLength = rows === 0 ? 0 : values.length / rows
  const steps =
    dtype === 'int8'
      ? new Int8Array(bytes.buffer, offset, values.length)
      : new Int8Array(values.length)
  const scalesView = new DataView(bytes.buffer, scalesOffset, rows * 4)
  for (let row = 0; row < rows; row++) {
    const start = row * rowLength
    const end = start + rowLength
    const scale = quantiseSymmetric(
      values.subarray(start, end),
      steps.subarray(start, end),
      STEP_LIMITS[dtype],
    )
    scalesView.setFloat32(row * 4, scale, true)
  }
  if (dtype === 'int6') packInt6(steps, bytes.subarray(offset, offset + int6Bytes(values.length)))
}

/**
 * Rounds `values` to whole steps of one scale, their largest magnitude / `limit` (rounded to
 * float32 first, so the steps are those of the scale decode reads), into `steps`, clamped to
 * ±limit. Returns the scale; all zeros (or below float32's smallest step) give scale 0, steps 0.
 */
export function quantiseSymmetric(values: Float32Array, steps: Int8Array, limit: number): number {
  let maxAbs = 0
  for (let i = 0; i < values.length; i++) {
    const magnitude = Math.abs(values[i]!)
    if (magnitude > maxAbs) maxAbs = magnitude
  }
  const scale = Math.fround(maxAbs / limit)
  if (scale === 0) {
    steps.fill(0)
    return 0
  }
  for (let i = 0; i < values.length; i++) {
    const q = Math.round(values[i]! / scale)
    steps[i] = q > limit ? limit : q < -limit ? -limit : q
  }
  return scale
}

/**
 * Six-bit two's complement steps, value i in bits 6i to 6i + 5 of the little-endian bit stream:
 * each group of four is v0 | v1 << 6 | v2 << 12 | v3 << 18 in three bytes, low byte first.
 */
function packInt6(steps: Int8Array, out: Uint8Array): void {
  for (let i = 0, o = 0; i < steps.length; i += 4, o += 3) {
    const group =
      (steps[i]! & 63) |
      ((steps[i + 1]! & 63) << 6) |
      ((steps[i + 2]! & 63) << 12) |
      ((steps[i + 3]! & 63) << 18) // past the end: undefined & 63 is 0, the padding
    out[o] = group & 0xff
    if (o + 1 < out.length) out[o + 1] = (group >>> 8) & 0xff
    if (o + 2 < out.length) out[o + 2] = group >>> 16
  }
}

function unpackInt6(region: Uint8Array, count: number): Int8Array {
  const steps = new Int8Array(count)
  for (let i = 0, o = 0; i < count; i += 4, o += 3) {
    const group = region[o]! | ((region[o + 1] ?? 0) << 8) | ((region[o + 2] ?? 0) << 16)
    // Shifting a value's six bits to the top of 32 and back extends its sign.
    for (let k = 0; k < 4 && i + k < count; k++) steps[i + k] = ((group >>> (6 * k)) << 26) >> 26
  }
  return steps
}

function checkFinite(tensor: TensorSource): void {
  const { values } = tensor
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!
    // x - x is 0 for finite x and NaN for NaN and ±Infinity; cheaper than Number.isFinite.
    if (value - value !== 0) {
      fail(
        'E_WEIGHTS_NONFINITE',
        `tensor '${tensor.name}': expected finite values, got ${value} at index ${i}`,
      )
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Readers (decode)

export function readFloat32(
  region: Uint8Array,
  name: string,
  hostLittleEndian: boolean,
): Float32Array {
  const count = region.length / 4
  const values = new Float32Array(count)
  if (hostLittleEndian) {
    // A byte copy needs no alignment of the source, which may sit anywhere in the caller's buffer.
    new Uint8Array(values.buffer).set(region)
  } else {
    const view = new DataView(region.buffer, region.byteOffset, region.byteLength)
    for (let i = 0; i < count; i++) values[i] = view.getFloat32(i * 4, true)
  }
  const bits = new Uint32Array(values.buffer)
  for (let i = 0; i < count; i++) {
    if ((bits[i]! & 0x7f800000) === 0x7f800000) {
      fail(
        'E_WEIGHTS_NONFINITE',
        `tensor '${name}': expected finite float32 values, got ${values[i]} at index ${i}`,
      )
    }
  }
  return values
}

export function readFloat16(
  region: Uint8Array,
  name: string,
  hostLittleEndian: boolean,
): Float32Array {
  const count = region.length / 2
  let halves: Uint16Array
  if (hostLittleEndian) {
    // Uint16Array needs an even byte offset; copy only when the caller's buffer lacks one.
    const aligned = (region.byteOffset & 1) === 0 ? region : region.slice()
    halves = new Uint16Array(aligned.buffer, aligned.byteOffset, count)
  } else {
    halves = new Uint16Array(count)
    const view = new DataView(region.buffer, region.byteOffset, region.byteLength)
    for (let i = 0; i < count; i++) halves[i] = view.getUint16(i * 2, true)
  }
  const table = getFloat16Table()
  const values = new Float32Array(count)
  for (let i = 0; i < count; i++) {
    const half = halves[i]!
    if ((half & FLOAT16_EXPONENT_MASK) === FLOAT16_EXPONENT_MASK) {
      fail(
        'E_WEIGHTS_NONFINITE',
        `tensor '${name}': expected finite float16 values, got ${decodeFloat16(half)} at index ${i}`,
      )
    }
    values[i] = table[half]!
  }
  return values
}

/** int8 or int6 values: each row's steps times its scale (writeScaled). */
export function readScaled(
  region: Uint8Array,
  scaleBytes: Uint8Array,
  entry: Pick<TensorEntry, 'name' | 'shape'> & { dtype: ScaledDType },
): Float32Array {
  const rows = scaleBytes.length / 4
  const count = entry.shape.reduce((a, b) => a * b, 1)
  const steps =
    entry.dtype === 'int8'
      ? new Int8Array(region.buffer, region.byteOffset, region.length)
      : unpackInt6(region, count)
  const rowLength = rows === 0 ? 0 : steps.length / rows
  return applyScales(steps, scaleBytes, entry.name, (row) => row * rowLength)
}

/**
 * Steps times scales, row by row: row r is steps [rowStart(r), rowStart(r + 1)), scale r the
 * r-th float32 of `scaleBytes`. Scales must be finite and non-negative.
 */
export function applyScales(
  steps: Int8Array,
  scaleBytes: Uint8Array,
  name: string,
  rowStart: (row: number) => number,
): Float32Array {
  const scaleView = new DataView(scaleBytes.buffer, scaleBytes.byteOffset, scaleBytes.byteLength)
  const rows = scaleBytes.length / 4
  const values = new Float32Array(steps.length)
  for (let row = 0; row < rows; row++) {
    const scale = scaleView.getFloat32(row * 4, true)
    if (!Number.isFinite(scale)) {
      fail(
        'E_WEIGHTS_NONFINITE',
        `tensor '${name}': expected finite scales, got ${scale} for row ${row}`,
      )
    }
    if (scale < 0) {
      fail(
        'E_WEIGHTS_SCALE',
        `tensor '${name}': expected non-negative scales, got ${scale} for row ${row}`,
      )
    }
    const end = rowStart(row + 1)
    for (let i = rowStart(row); i < end; i++) values[i] = steps[i]! * scale
  }
  return values
}

// ---------------------------------------------------------------------------------------------
// Float16 rounding and lookup tables

const scratchFloat = new Float32Array(1)
const scratchBits = new Uint32Array(scratchFloat.buffer)

/** Port of numpy's npy_floatbits_to_halfbits: round to nearest even via a carry into bit 13. */
function float32BitsToFloat16Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000
  const exponentBits = bits & 0x7f800000
  const mantissa = bits & 0x007fffff
  if (exponentBits >= 0x47800000) {
    // |x| >= 65536, Infinity or NaN. NaNs keep their top payload bits and stay NaN.
    if (exponentBits === 0x7f800000 && mantissa !== 0)
      return sign | 0x7c00 | (mantissa >>> 13) | 0x200
    return sign | 0x7c00
  }
  if (exponentBits <= 0x38000000) {
    // |x| < 2^-14: a half subnormal, or zero below half the smallest subnormal (2^-25).
    if (exponentBits < 0x33000000) return sign
    const exponent = exponentBits >>> 23
    let significand = (0x00800000 | mantissa) >>> (113 - exponent)
    // Round up unless exactly halfway with an even result; bits shifted out count as sticky.
    if ((significand & 0x3fff) !== 0x1000 || (bits & 0x7ff) !== 0) significand += 0x1000
    // A carry out of the mantissa lands in the exponent, giving the smallest normal: correct.
    return sign | (significand >>> 13)
  }
  const exponent = (exponentBits - 0x38000000) >>> 13
  let significand = mantissa
  if ((significand & 0x3fff) !== 0x1000) significand += 0x1000
  // A carry may bump the exponent, up to 0x7c00 (Infinity) for values in [65520, 65536).
  return sign | (exponent + (significand >>> 13))
}

let float16Table: Float32Array | undefined

/** All 65,536 halves as float32 (256 KiB), so bulk decoding is one lookup per element. */
function getFloat16Table(): Float32Array {
  if (!float16Table) {
    float16Table = new Float32Array(0x10000)
    for (let bits = 0; bits < 0x10000; bits++) float16Table[bits] = decodeFloat16(bits)
  }
  return float16Table
}

let crcTables: Uint32Array[] | undefined

function getCrcTables(): Uint32Array[] {
  if (!crcTables) {
    const t0 = new Uint32Array(256)
    for (let n = 0; n < 256; n++) {
      let c = n
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
      t0[n] = c >>> 0
    }
    const tables = [t0]
    for (let t = 1; t < 4; t++) {
      const previous = tables[t - 1]!
      const next = new Uint32Array(256)
      for (let n = 0; n < 256; n++) next[n] = (previous[n]! >>> 8) ^ t0[previous[n]! & 0xff]!
      tables.push(next)
    }
    crcTables = tables
  }
  return crcTables
}
