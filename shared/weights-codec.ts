// Binary container for the model weights and item embeddings the server ships to the browser.
// It is read from the network, so decoding treats every byte as hostile: it either returns the
// file exactly as encoded or throws WeightsFormatError, never a partial result.
//
// Layout (every integer little-endian):
//   offset 0      4 bytes   magic, ASCII 'PRW1'
//          4      uint16    codec version (WEIGHTS_CODEC_VERSION)
//          6      uint16    reserved, must be 0 (keeps the header length field 4-byte aligned)
//          8      uint32    H, the header length in bytes
//         12      H bytes   UTF-8 JSON header, see below
//         12 + H  zeros     padding up to D, the next multiple of 8
//          D      data      tensor values and int8 scales; each region starts at a multiple of 8,
//                           zeros between regions
//     end - 4     uint32    CRC-32 (IEEE 802.3, as zlib and PNG) of bytes [0, end - 4)
//
// Header JSON:
//   { "format": "pocketrec-gru", "meta": { "nItems": 43097, "dim": 100, ... },
//     "tensors": [{ "name": "item-embeddings", "shape": [43097, 100], "dtype": "int8",
//                   "byteOffset": 0, "byteLength": 4309700,
//                   "scales": { "byteOffset": 4309704, "byteLength": 172388 } }, ...] }
// Offsets are relative to D. Storage per dtype:
//   float32  4 bytes per element, IEEE binary32
//   float16  2 bytes per element, IEEE binary16, rounded to nearest even
//   int8     1 byte per element q in [-127, 127], value = q * scale, symmetric; the float32 scales
//            are one per row (first dimension) for rank >= 2, so each embedding row keeps its own
//            precision, and one per tensor for rank 0 and 1
// Unknown header keys are ignored, so optional additions need no version bump; anything that
// changes how existing bytes are read must bump the version.

import { WeightsFormatError, type WeightsErrorCode } from './errors'

/** How a tensor is stored on the wire; decoded tensors are always Float32Array. */
export type WeightDType = 'float32' | 'float16' | 'int8'

export interface NamedTensor {
  name: string
  /** Row-major; rank 0 (`[]`) is a scalar. */
  shape: number[]
  values: Float32Array
}

export interface WeightsFile {
  /** What the tensors are, e.g. 'pocketrec-gru'; the codec does not interpret it. */
  format: string
  /** Model config (dims, nItems, version, ...): flat JSON scalars only. */
  meta: Record<string, string | number | boolean>
  tensors: NamedTensor[]
}

export interface EncodeWeightsOptions {
  /** Storage dtype for every tensor, or one picked per tensor; 'float32' when absent. */
  dtype?: WeightDType | ((tensor: NamedTensor) => WeightDType)
}

export const WEIGHTS_CODEC_VERSION = 1

const MAGIC = [0x50, 0x52, 0x57, 0x31] // 'PRW1'
const PRELUDE_BYTES = 12
const CHECKSUM_BYTES = 4
const ALIGNMENT = 8
const INT8_LIMIT = 127
const FLOAT16_EXPONENT_MASK = 0x7c00
const DTYPES: readonly WeightDType[] = ['float32', 'float16', 'int8']
const BYTES_PER_ELEMENT: Record<WeightDType, number> = { float32: 4, float16: 2, int8: 1 }

// Typed arrays use the host's byte order; the wire is little-endian. Checked once so the bulk
// paths can copy memory on the (nearly universal) little-endian hosts.
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

interface Region {
  byteOffset: number
  byteLength: number
}

interface TensorEntry extends Region {
  name: string
  shape: number[]
  dtype: WeightDType
  scales?: Region
}

interface Problem {
  code: WeightsErrorCode
  message: string
}

/** Serialises `file`; throws WeightsFormatError for anything decode would refuse. */
export function encodeWeights(file: WeightsFile, opts: EncodeWeightsOptions = {}): Uint8Array {
  return encodeWeightsOnHost(file, opts, HOST_LITTLE_ENDIAN)
}

/** Parses and fully validates a weights file; throws WeightsFormatError on any defect. */
export function decodeWeights(bytes: Uint8Array | ArrayBuffer): WeightsFile {
  return decodeWeightsOnHost(bytes, HOST_LITTLE_ENDIAN)
}

/**
 * encodeWeights with the host byte order given, so tests can run the per-element path a
 * big-endian host takes. Not part of the package index.
 */
export function encodeWeightsOnHost(
  file: WeightsFile,
  opts: EncodeWeightsOptions,
  hostLittleEndian: boolean,
): Uint8Array {
  const problem = findFileProblem(file)
  if (problem) throw new WeightsFormatError(problem.code, problem.message)

  const entries: TensorEntry[] = []
  let cursor = 0
  const claim = (byteLength: number): Region => {
    const region = { byteOffset: cursor, byteLength }
    cursor = alignUp(cursor + byteLength)
    return region
  }
  for (const tensor of file.tensors) {
    const dtype = pickDType(tensor, opts.dtype)
    const n = tensor.values.length
    const data = claim(n * BYTES_PER_ELEMENT[dtype])
    const entry: TensorEntry = { name: tensor.name, shape: [...tensor.shape], dtype, ...data }
    if (dtype === 'int8') entry.scales = claim(countScales(tensor.shape) * 4)
    entries.push(entry)
  }

  const headerBytes = new TextEncoder().encode(
    JSON.stringify({ format: file.format, meta: file.meta, tensors: entries }),
  )
  const dataStart = alignUp(PRELUDE_BYTES + headerBytes.length)
  const total = dataStart + cursor + CHECKSUM_BYTES
  const bytes = new Uint8Array(total)
  const view = new DataView(bytes.buffer)
  bytes.set(MAGIC, 0)
  view.setUint16(4, WEIGHTS_CODEC_VERSION, true)
  view.setUint16(6, 0, true)
  view.setUint32(8, headerBytes.length, true)
  bytes.set(headerBytes, PRELUDE_BYTES)

  file.tensors.forEach((tensor, i) => {
    const entry = entries[i]!
    const offset = dataStart + entry.byteOffset
    if (entry.dtype === 'float32') {
      writeFloat32(bytes, offset, tensor, hostLittleEndian)
    } else if (entry.dtype === 'float16') {
      writeFloat16(bytes, offset, tensor, hostLittleEndian)
    } else {
      writeInt8(bytes, offset, dataStart + entry.scales!.byteOffset, tensor)
    }
  })
  view.setUint32(
    total - CHECKSUM_BYTES,
    computeCrc32(bytes.subarray(0, total - CHECKSUM_BYTES)),
    true,
  )
  return bytes
}

/** decodeWeights with the host byte order given; see encodeWeightsOnHost. */
export function decodeWeightsOnHost(
  input: Uint8Array | ArrayBuffer,
  hostLittleEndian: boolean,
): WeightsFile {
  const bytes = toBytes(input)
  const total = bytes.length
  const magicSeen = bytes.subarray(0, MAGIC.length)
  if (magicSeen.some((byte, i) => byte !== MAGIC[i])) {
    fail('E_WEIGHTS_MAGIC', `expected magic 'PRW1', got ${describeBytes(magicSeen)}`)
  }
  if (total < PRELUDE_BYTES + CHECKSUM_BYTES) {
    fail(
      'E_WEIGHTS_TRUNCATED',
      `expected at least ${PRELUDE_BYTES + CHECKSUM_BYTES} bytes (prelude and checksum), got ${total}`,
    )
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const version = view.getUint16(4, true)
  if (version !== WEIGHTS_CODEC_VERSION) {
    fail('E_WEIGHTS_VERSION', `expected codec version ${WEIGHTS_CODEC_VERSION}, got ${version}`)
  }
  const headerLength = view.getUint32(8, true)
  const dataStart = alignUp(PRELUDE_BYTES + headerLength)
  // Checked before anything is sized from it: a hostile length must not drive an allocation.
  if (dataStart + CHECKSUM_BYTES > total) {
    fail(
      'E_WEIGHTS_TRUNCATED',
      `header length ${headerLength} needs a file of at least ${dataStart + CHECKSUM_BYTES} bytes, got ${total}`,
    )
  }
  // Integrity before meaning: a damaged download should say so, not report whatever the damage
  // happened to break.
  const stored = view.getUint32(total - CHECKSUM_BYTES, true)
  const computed = computeCrc32(bytes.subarray(0, total - CHECKSUM_BYTES))
  if (stored !== computed) {
    fail(
      'E_WEIGHTS_CHECKSUM',
      `expected CRC-32 ${formatHex(stored)} from the file's last 4 bytes, contents give ${formatHex(computed)} (truncated or corrupted)`,
    )
  }
  const reserved = view.getUint16(6, true)
  if (reserved !== 0)
    fail('E_WEIGHTS_HEADER', `expected reserved bytes 6-7 to be 0, got ${reserved}`)
  for (let i = PRELUDE_BYTES + headerLength; i < dataStart; i++) {
    if (bytes[i] !== 0)
      fail('E_WEIGHTS_HEADER', `expected zero padding at byte ${i}, got ${bytes[i]}`)
  }

  const dataLength = total - CHECKSUM_BYTES - dataStart
  const header = parseHeaderJson(bytes.subarray(PRELUDE_BYTES, PRELUDE_BYTES + headerLength))
  const { format, meta, entries } = readHeader(header, dataLength)
  checkRegionsDisjoint(entries)

  const data = bytes.subarray(dataStart, dataStart + dataLength)
  const tensors = entries.map((entry) => ({
    name: entry.name,
    shape: entry.shape,
    values: readTensorValues(data, entry, hostLittleEndian),
  }))
  return { format, meta, tensors }
}

/**
 * Structural check: field types, non-negative integer dims and values.length matching the shape.
 * Finiteness is left to encodeWeights, which has to walk the values anyway.
 */
export function isWeightsFile(raw: unknown): raw is WeightsFile {
  return findFileProblem(raw) === undefined
}

/** How far a decoded tensor strays from the original, for reports on lossy dtypes. */
export function quantisationError(
  a: Float32Array,
  b: Float32Array,
): { maxAbs: number; rmse: number } {
  if (a.length !== b.length) {
    throw new RangeError(`expected arrays of equal length, got ${a.length} and ${b.length}`)
  }
  let maxAbs = 0
  let sumSquares = 0
  for (let i = 0; i < a.length; i++) {
    const diff = Math.abs(a[i]! - b[i]!)
    if (diff > maxAbs) maxAbs = diff
    sumSquares += diff * diff
  }
  return { maxAbs, rmse: a.length === 0 ? 0 : Math.sqrt(sumSquares / a.length) }
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
// Encoding

function pickDType(tensor: NamedTensor, choice: EncodeWeightsOptions['dtype']): WeightDType {
  const dtype: unknown = typeof choice === 'function' ? choice(tensor) : (choice ?? 'float32')
  if (!isDType(dtype)) {
    fail(
      'E_WEIGHTS_DTYPE',
      `tensor '${tensor.name}': expected dtype ${DTYPES.join(' | ')}, got ${describe(dtype)}`,
    )
  }
  return dtype
}

function writeFloat32(
  bytes: Uint8Array,
  offset: number,
  tensor: NamedTensor,
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

function writeFloat16(
  bytes: Uint8Array,
  offset: number,
  tensor: NamedTensor,
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

function writeInt8(
  bytes: Uint8Array,
  offset: number,
  scalesOffset: number,
  tensor: NamedTensor,
): void {
  const { values } = tensor
  checkFinite(tensor)
  const rows = countScales(tensor.shape)
  const rowLength = rows === 0 ? 0 : values.length / rows
  const quantised = new Int8Array(bytes.buffer, offset, values.length)
  const scalesView = new DataView(bytes.buffer, scalesOffset, rows * 4)
  for (let row = 0; row < rows; row++) {
    const start = row * rowLength
    const end = start + rowLength
    let maxAbs = 0
    for (let i = start; i < end; i++) {
      const magnitude = Math.abs(values[i]!)
      if (magnitude > maxAbs) maxAbs = magnitude
    }
    // Rounded to float32 before use so that the encoder quantises with the scale decode reads.
    const scale = Math.fround(maxAbs / INT8_LIMIT)
    scalesView.setFloat32(row * 4, scale, true)
    if (scale === 0) continue // all zeros (or below float32's smallest step): leave q = 0
    for (let i = start; i < end; i++) {
      const q = Math.round(values[i]! / scale)
      quantised[i] = q > INT8_LIMIT ? INT8_LIMIT : q < -INT8_LIMIT ? -INT8_LIMIT : q
    }
  }
}

function checkFinite(tensor: NamedTensor): void {
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
// Decoding

function toBytes(input: unknown): Uint8Array {
  if (input instanceof Uint8Array) return input
  if (input instanceof ArrayBuffer) return new Uint8Array(input)
  return fail('E_WEIGHTS_INPUT', `expected a Uint8Array or ArrayBuffer, got ${describe(input)}`)
}

function parseHeaderJson(headerBytes: Uint8Array): unknown {
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes)
  } catch {
    return fail(
      'E_WEIGHTS_JSON',
      `expected a UTF-8 header, got invalid UTF-8 in ${headerBytes.length} bytes`,
    )
  }
  try {
    return JSON.parse(text) as unknown
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    return fail('E_WEIGHTS_JSON', `expected a JSON header, got unparsable text (${reason})`)
  }
}

function readHeader(
  header: unknown,
  dataLength: number,
): { format: string; meta: WeightsFile['meta']; entries: TensorEntry[] } {
  if (!isRecord(header))
    fail('E_WEIGHTS_HEADER', `expected the header to be an object, got ${describe(header)}`)
  if (typeof header.format !== 'string') {
    fail(
      'E_WEIGHTS_HEADER',
      `expected header.format to be a string, got ${describe(header.format)}`,
    )
  }
  const metaProblem = findMetaProblem(header.meta, 'header.meta')
  if (metaProblem) fail(metaProblem.code, metaProblem.message)
  if (!Array.isArray(header.tensors)) {
    fail(
      'E_WEIGHTS_HEADER',
      `expected header.tensors to be an array, got ${describe(header.tensors)}`,
    )
  }
  const names = new Set<string>()
  const entries = header.tensors.map((raw: unknown, i) => {
    const entry = readEntry(raw, `header.tensors[${i}]`, dataLength)
    if (names.has(entry.name)) {
      fail('E_WEIGHTS_DUPLICATE', `expected unique tensor names, got '${entry.name}' twice`)
    }
    names.add(entry.name)
    return entry
  })
  // fromEntries defines own properties, so a '__proto__' key in hostile JSON stays a plain key.
  const meta = Object.fromEntries(Object.entries(header.meta as WeightsFile['meta']))
  return { format: header.format, meta, entries }
}

function readEntry(raw: unknown, where: string, dataLength: number): TensorEntry {
  if (!isRecord(raw))
    fail('E_WEIGHTS_HEADER', `expected ${where} to be an object, got ${describe(raw)}`)
  const { name, shape, dtype } = raw
  if (typeof name !== 'string' || name === '') {
    fail(
      'E_WEIGHTS_HEADER',
      `expected ${where}.name to be a non-empty string, got ${describe(name)}`,
    )
  }
  const label = `tensor '${name}'`
  const shapeProblem = findShapeProblem(shape, label)
  if (shapeProblem) fail(shapeProblem.code, shapeProblem.message)
  const dims = shape as number[]
  if (!isDType(dtype)) {
    fail(
      'E_WEIGHTS_DTYPE',
      `${label}: expected dtype ${DTYPES.join(' | ')}, got ${describe(dtype)}`,
    )
  }
  const data = readRegion(raw, label, dataLength)
  // Every element takes at least a byte, so the data section bounds the count before any
  // product can overflow or drive an allocation.
  const count = countElements(dims, dataLength)
  if (count === undefined) {
    fail(
      'E_WEIGHTS_SHAPE',
      `${label}: expected a shape that fits the ${dataLength}-byte data section, got [${dims.join(', ')}]`,
    )
  }
  const expectedLength = count * BYTES_PER_ELEMENT[dtype]
  if (data.byteLength !== expectedLength) {
    fail(
      'E_WEIGHTS_SHAPE',
      `${label}: expected byteLength ${expectedLength} for ${dtype} shape [${dims.join(', ')}], got ${data.byteLength}`,
    )
  }
  const entry: TensorEntry = { name, shape: [...dims], dtype, ...data }
  if (dtype !== 'int8') {
    if (raw.scales !== undefined) {
      fail(
        'E_WEIGHTS_HEADER',
        `${label}: expected no scales for a ${dtype} tensor, got ${describe(raw.scales)}`,
      )
    }
    return entry
  }
  if (!isRecord(raw.scales)) {
    fail(
      'E_WEIGHTS_HEADER',
      `${label}: expected an int8 tensor to have scales, got ${describe(raw.scales)}`,
    )
  }
  const scales = readRegion(raw.scales, `${label} scales`, dataLength)
  const expectedScales = countScales(dims) * 4
  if (scales.byteLength !== expectedScales) {
    fail(
      'E_WEIGHTS_SCALE',
      `${label}: expected ${expectedScales} bytes of scales (${countScales(dims)} float32), got ${scales.byteLength}`,
    )
  }
  entry.scales = scales
  return entry
}

function readRegion(raw: Record<string, unknown>, label: string, dataLength: number): Region {
  const { byteOffset, byteLength } = raw
  for (const [key, value] of [
    ['byteOffset', byteOffset],
    ['byteLength', byteLength],
  ] as const) {
    if (!isCount(value)) {
      fail(
        'E_WEIGHTS_HEADER',
        `${label}: expected ${key} to be a non-negative integer, got ${describe(value)}`,
      )
    }
  }
  const region = { byteOffset: byteOffset as number, byteLength: byteLength as number }
  if (region.byteOffset % ALIGNMENT !== 0) {
    fail(
      'E_WEIGHTS_RANGE',
      `${label}: expected byteOffset to be a multiple of ${ALIGNMENT}, got ${region.byteOffset}`,
    )
  }
  if (region.byteOffset + region.byteLength > dataLength) {
    fail(
      'E_WEIGHTS_RANGE',
      `${label}: expected bytes within the ${dataLength}-byte data section, got ${region.byteOffset}..${region.byteOffset + region.byteLength}`,
    )
  }
  return region
}

function checkRegionsDisjoint(entries: TensorEntry[]): void {
  const regions: (Region & { label: string })[] = []
  for (const entry of entries) {
    regions.push({ ...regionOf(entry), label: `tensor '${entry.name}'` })
    if (entry.scales) regions.push({ ...entry.scales, label: `tensor '${entry.name}' scales` })
  }
  // Empty regions own no bytes, so they cannot collide with anything.
  const owned = regions.filter((region) => region.byteLength > 0)
  owned.sort((a, b) => a.byteOffset - b.byteOffset)
  for (let i = 1; i < owned.length; i++) {
    const previous = owned[i - 1]!
    const current = owned[i]!
    if (current.byteOffset < previous.byteOffset + previous.byteLength) {
      fail(
        'E_WEIGHTS_RANGE',
        `expected disjoint data regions, got ${previous.label} (${previous.byteOffset}..${previous.byteOffset + previous.byteLength}) overlapping ${current.label} (from ${current.byteOffset})`,
      )
    }
  }
}

function readTensorValues(
  data: Uint8Array,
  entry: TensorEntry,
  hostLittleEndian: boolean,
): Float32Array {
  const region = data.subarray(entry.byteOffset, entry.byteOffset + entry.byteLength)
  if (entry.dtype === 'float32') return readFloat32(region, entry.name, hostLittleEndian)
  if (entry.dtype === 'float16') return readFloat16(region, entry.name, hostLittleEndian)
  const scales = data.subarray(
    entry.scales!.byteOffset,
    entry.scales!.byteOffset + entry.scales!.byteLength,
  )
  return readInt8(region, scales, entry)
}

function readFloat32(region: Uint8Array, name: string, hostLittleEndian: boolean): Float32Array {
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

function readFloat16(region: Uint8Array, name: string, hostLittleEndian: boolean): Float32Array {
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

function readInt8(region: Uint8Array, scaleBytes: Uint8Array, entry: TensorEntry): Float32Array {
  const quantised = new Int8Array(region.buffer, region.byteOffset, region.length)
  const scaleView = new DataView(scaleBytes.buffer, scaleBytes.byteOffset, scaleBytes.byteLength)
  const rows = scaleBytes.length / 4
  const rowLength = rows === 0 ? 0 : quantised.length / rows
  const values = new Float32Array(quantised.length)
  for (let row = 0; row < rows; row++) {
    const scale = scaleView.getFloat32(row * 4, true)
    if (!Number.isFinite(scale)) {
      fail(
        'E_WEIGHTS_NONFINITE',
        `tensor '${entry.name}': expected finite int8 scales, got ${scale} for row ${row}`,
      )
    }
    if (scale < 0) {
      fail(
        'E_WEIGHTS_SCALE',
        `tensor '${entry.name}': expected non-negative int8 scales, got ${scale} for row ${row}`,
      )
    }
    const start = row * rowLength
    const end = start + rowLength
    for (let i = start; i < end; i++) values[i] = quantised[i]! * scale
  }
  return values
}

// ---------------------------------------------------------------------------------------------
// Validation shared by encode, decode and the guard

function findFileProblem(raw: unknown): Problem | undefined {
  if (!isRecord(raw))
    return {
      code: 'E_WEIGHTS_HEADER',
      message: `expected a weights file object, got ${describe(raw)}`,
    }
  if (typeof raw.format !== 'string') {
    return {
      code: 'E_WEIGHTS_HEADER',
      message: `expected format to be a string, got ${describe(raw.format)}`,
    }
  }
  const metaProblem = findMetaProblem(raw.meta, 'meta')
  if (metaProblem) return metaProblem
  if (!Array.isArray(raw.tensors)) {
    return {
      code: 'E_WEIGHTS_HEADER',
      message: `expected tensors to be an array, got ${describe(raw.tensors)}`,
    }
  }
  const names = new Set<string>()
  for (const [i, tensor] of (raw.tensors as unknown[]).entries()) {
    if (!isRecord(tensor)) {
      return {
        code: 'E_WEIGHTS_HEADER',
        message: `expected tensors[${i}] to be an object, got ${describe(tensor)}`,
      }
    }
    const { name, shape, values } = tensor
    if (typeof name !== 'string' || name === '') {
      return {
        code: 'E_WEIGHTS_HEADER',
        message: `expected tensors[${i}].name to be a non-empty string, got ${describe(name)}`,
      }
    }
    if (names.has(name)) {
      return {
        code: 'E_WEIGHTS_DUPLICATE',
        message: `expected unique tensor names, got '${name}' twice`,
      }
    }
    names.add(name)
    const shapeProblem = findShapeProblem(shape, `tensor '${name}'`)
    if (shapeProblem) return shapeProblem
    if (!(values instanceof Float32Array)) {
      return {
        code: 'E_WEIGHTS_HEADER',
        message: `tensor '${name}': expected values to be a Float32Array, got ${describe(values)}`,
      }
    }
    const count = countElements(shape as number[], values.length)
    if (count !== values.length) {
      return {
        code: 'E_WEIGHTS_SHAPE',
        message: `tensor '${name}': expected ${count ?? `more than ${values.length}`} values for shape [${(shape as number[]).join(', ')}], got ${values.length}`,
      }
    }
  }
  return undefined
}

function findMetaProblem(raw: unknown, where: string): Problem | undefined {
  if (!isRecord(raw))
    return {
      code: 'E_WEIGHTS_HEADER',
      message: `expected ${where} to be an object, got ${describe(raw)}`,
    }
  for (const [key, value] of Object.entries(raw)) {
    const ok =
      typeof value === 'string' ||
      typeof value === 'boolean' ||
      (typeof value === 'number' && Number.isFinite(value))
    if (!ok) {
      return {
        code: 'E_WEIGHTS_HEADER',
        message: `expected ${where}.${key} to be a string, finite number or boolean, got ${describe(value)}`,
      }
    }
  }
  return undefined
}

function findShapeProblem(raw: unknown, label: string): Problem | undefined {
  if (!Array.isArray(raw))
    return {
      code: 'E_WEIGHTS_HEADER',
      message: `${label}: expected shape to be an array, got ${describe(raw)}`,
    }
  for (const [i, dim] of (raw as unknown[]).entries()) {
    if (!isCount(dim)) {
      return {
        code: 'E_WEIGHTS_SHAPE',
        message: `${label}: expected shape[${i}] to be a non-negative integer, got ${describe(dim)}`,
      }
    }
  }
  return undefined
}

/** Product of `shape`, or undefined once it exceeds `limit` (so it never leaves safe integers). */
function countElements(shape: readonly number[], limit: number): number | undefined {
  if (shape.includes(0)) return 0
  let count = 1
  for (const dim of shape) {
    count *= dim
    if (count > limit) return undefined
  }
  return count
}

/** int8 scales: one per row for rank >= 2, one for the whole tensor otherwise. */
function countScales(shape: readonly number[]): number {
  return shape.length >= 2 ? shape[0]! : 1
}

function regionOf(entry: TensorEntry): Region {
  return { byteOffset: entry.byteOffset, byteLength: entry.byteLength }
}

function isDType(raw: unknown): raw is WeightDType {
  return typeof raw === 'string' && (DTYPES as readonly string[]).includes(raw)
}

function isRecord(raw: unknown): raw is Record<string, unknown> {
  return typeof raw === 'object' && raw !== null && !Array.isArray(raw) && !ArrayBuffer.isView(raw)
}

function isCount(raw: unknown): raw is number {
  return typeof raw === 'number' && Number.isSafeInteger(raw) && raw >= 0
}

// ---------------------------------------------------------------------------------------------
// Bits and helpers

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

function alignUp(n: number): number {
  return Math.ceil(n / ALIGNMENT) * ALIGNMENT
}

function fail(code: WeightsErrorCode, message: string): never {
  throw new WeightsFormatError(code, message)
}

function formatHex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`
}

function describeBytes(bytes: Uint8Array): string {
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ')
  return bytes.length === 0 ? 'no bytes' : `bytes ${hex}`
}

/** A short, safe rendering of an unexpected value for error messages. */
function describe(raw: unknown): string {
  if (raw === null) return 'null'
  if (raw === undefined) return 'nothing'
  if (Array.isArray(raw)) return `an array of ${raw.length}`
  if (ArrayBuffer.isView(raw)) return raw.constructor.name
  if (typeof raw === 'object') {
    const kind: unknown = Object.getPrototypeOf(raw)?.constructor?.name
    return typeof kind === 'string' && kind !== 'Object' ? `a ${kind}` : 'an object'
  }
  if (typeof raw === 'string') return JSON.stringify(raw.length > 40 ? `${raw.slice(0, 40)}…` : raw)
  return `${typeof raw} ${String(raw)}`
}
