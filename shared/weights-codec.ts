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
//
// Header parsing and validation live in weights-header.ts; the per-dtype element codecs and
// CRC-32 in weights-bits.ts.

import { WeightsFormatError } from './errors'
import {
  quantiseRows,
  reconstructRows,
  type ProductQuantiserOptions,
  type QuantisedRows,
} from './product-quantiser'
import {
  computeCrc32,
  readFloat16,
  readFloat32,
  readInt8,
  writeFloat16,
  writeFloat32,
  writeInt8,
} from './weights-bits'
import {
  alignUp,
  BYTES_PER_ELEMENT,
  checkRegionsDisjoint,
  countScales,
  describe,
  DTYPES,
  fail,
  findFileProblem,
  isDType,
  parseHeaderJson,
  pqCodebookBytes,
  PQ_MAX_SLICE,
  readHeader,
  type Region,
  type TensorEntry,
  type WeightDType,
} from './weights-header'

// Also public, but defined in the files whose code needs them; importers keep this one path.
export type { WeightDType } from './weights-header'
export { computeCrc32, decodeFloat16, encodeFloat16 } from './weights-bits'

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
  /**
   * pq8 tensors: how they are quantised; `subspaces` (codes a row) or `codesPerValue` (a row of
   * dim values gets round(dim · codesPerValue) codes, at least one), by default ⌈dim / PQ_DEFAULT_SLICE⌉, so no
   * slice is longer than PQ_DEFAULT_SLICE values (the slices need not divide the row: sliceStart).
   */
  pq?: Partial<ProductQuantiserOptions> & { codesPerValue?: number }
}

/** pq8's default longest slice: 4 values a byte, 25 bytes for a 100-dim row. */
export const PQ_DEFAULT_SLICE = 4

/** round(dim · codesPerValue) codes a row, at least one, or ⌈dim / PQ_DEFAULT_SLICE⌉ without a rate. */
function defaultSubspaces(dim: number, codesPerValue?: number): number {
  if (codesPerValue === undefined) return Math.ceil(dim / PQ_DEFAULT_SLICE)
  return Math.max(1, Math.round(dim * codesPerValue))
}

export const WEIGHTS_CODEC_VERSION = 1

const MAGIC = [0x50, 0x52, 0x57, 0x31] // 'PRW1'
const PRELUDE_BYTES = 12
const CHECKSUM_BYTES = 4

// Typed arrays use the host's byte order; the wire is little-endian. Checked once so the bulk
// paths can copy memory on the (nearly universal) little-endian hosts.
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

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
  const quantised = new Map<number, QuantisedRows>()
  let cursor = 0
  const claim = (byteLength: number): Region => {
    const region = { byteOffset: cursor, byteLength }
    cursor = alignUp(cursor + byteLength)
    return region
  }
  for (const [i, tensor] of file.tensors.entries()) {
    const dtype = pickDType(tensor, opts.dtype)
    if (dtype === 'pq8') {
      const rows = quantisePq8(tensor, opts.pq)
      quantised.set(i, rows)
      const data = claim(rows.codes.length)
      const codebook = claim(pqCodebookBytes(tensor.shape[1]!))
      const { subspaces } = rows
      entries.push({
        name: tensor.name,
        shape: [...tensor.shape],
        dtype,
        ...data,
        subspaces,
        codebook,
      })
      continue
    }
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
    } else if (entry.dtype === 'pq8') {
      const { codes, codebooks } = quantised.get(i)!
      bytes.set(codes, offset)
      const codebookOffset = dataStart + entry.codebook!.byteOffset
      writeFloat16(
        bytes,
        codebookOffset,
        { name: `${tensor.name} codebook`, shape: [codebooks.length], values: codebooks },
        hostLittleEndian,
      )
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

/** Learns a pq8 tensor's codebooks and codes; only rank-2 tables cut into slices of 1 to 16. */
function quantisePq8(tensor: NamedTensor, options: EncodeWeightsOptions['pq']): QuantisedRows {
  const [rows, dim] = tensor.shape
  const { codesPerValue, ...quantiser } = options ?? {}
  const subspaces = quantiser.subspaces ?? defaultSubspaces(dim ?? 0, codesPerValue)
  if (
    tensor.shape.length !== 2 ||
    !Number.isInteger(subspaces) ||
    subspaces < 1 ||
    subspaces > dim! ||
    Math.ceil(dim! / subspaces) > PQ_MAX_SLICE
  ) {
    fail(
      'E_WEIGHTS_DTYPE',
      `tensor '${tensor.name}': pq8 needs a rank-2 table cut into slices of at most ${PQ_MAX_SLICE} values, got shape [${tensor.shape.join(', ')}] and ${subspaces} subspaces`,
    )
  }
  return quantiseRows(tensor.values, rows!, dim!, { ...quantiser, subspaces })
}

// ---------------------------------------------------------------------------------------------
// Decoding

function toBytes(input: unknown): Uint8Array {
  if (input instanceof Uint8Array) return input
  if (input instanceof ArrayBuffer) return new Uint8Array(input)
  return fail('E_WEIGHTS_INPUT', `expected a Uint8Array or ArrayBuffer, got ${describe(input)}`)
}

function readTensorValues(
  data: Uint8Array,
  entry: TensorEntry,
  hostLittleEndian: boolean,
): Float32Array {
  const region = data.subarray(entry.byteOffset, entry.byteOffset + entry.byteLength)
  if (entry.dtype === 'float32') return readFloat32(region, entry.name, hostLittleEndian)
  if (entry.dtype === 'float16') return readFloat16(region, entry.name, hostLittleEndian)
  if (entry.dtype === 'pq8') {
    const { byteOffset, byteLength } = entry.codebook!
    const codebooks = readFloat16(
      data.subarray(byteOffset, byteOffset + byteLength),
      `${entry.name} codebook`,
      hostLittleEndian,
    )
    const [rows, dim] = entry.shape as [number, number]
    return reconstructRows({ subspaces: entry.subspaces!, codebooks, codes: region }, rows, dim)
  }
  const scales = data.subarray(
    entry.scales!.byteOffset,
    entry.scales!.byteOffset + entry.scales!.byteLength,
  )
  return readInt8(region, scales, entry)
}

function formatHex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`
}

function describeBytes(bytes: Uint8Array): string {
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ')
  return bytes.length === 0 ? 'no bytes' : `bytes ${hex}`
}
