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
//          D      data      tensor values, scales and codebooks; each region starts at a multiple
//                           of 8, zeros between regions
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
//            ("scales" region) are one per row (first dimension) for rank >= 2, so each embedding
//            row keeps its own precision, and one per tensor for rank 0 and 1
//   int6     as int8 with q in [-31, 31], six-bit two's complement packed four to three bytes:
//            element i in bits 6i..6i+5 of the little-endian bit stream, the last byte's unused
//            bits zero; ceil(3n / 4) bytes
//   pq8      rank-2 [rows, dim] tables only: "subspaces" S slices a row (product-quantiser.ts,
//            sliceStart), a code byte per slice, [rows][S]; the "codebook" region holds 256
//            centroids of every slice, slice by slice [256][slice width], as int8 steps of a
//            float32 scale per slice ("codebookScales", S float32)
// Unknown header keys are ignored, so optional additions need no version bump; anything that
// changes how existing bytes are read must bump the version. Version 2 (int8 codebooks with
// codebookScales, and int6) is written; version 1 files, whose pq8 codebooks are float16
// (256 · dim halves) and have no codebookScales, are still read: devices keep models in IndexedDB.
//
// Header parsing and validation live in weights-header.ts; the per-dtype element codecs and
// CRC-32 in weights-bits.ts.

import { WeightsFormatError } from './errors'
import {
  PQ_CENTROIDS,
  quantiseRows,
  reconstructRows,
  sliceStart,
  type ProductQuantiserOptions,
  type QuantisedRows,
} from './product-quantiser'
import {
  applyScales,
  computeCrc32,
  quantiseSymmetric,
  readFloat16,
  readFloat32,
  readScaled,
  writeFloat16,
  writeFloat32,
  writeScaled,
} from './weights-bits'
import {
  alignUp,
  checkRegionsDisjoint,
  countScales,
  dataBytes,
  describe,
  DTYPES,
  fail,
  findFileProblem,
  isDType,
  isScaled,
  parseHeaderJson,
  pqCodebookBytes,
  PQ_MAX_SLICE,
  readHeader,
  STEP_LIMITS,
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
  pq?: Partial<Omit<ProductQuantiserOptions, 'roundCentroids'>> & { codesPerValue?: number }
}

/** pq8's default longest slice: 4 values a byte, 25 bytes for a 100-dim row. */
export const PQ_DEFAULT_SLICE = 4

/** round(dim · codesPerValue) codes a row, at least one, or ⌈dim / PQ_DEFAULT_SLICE⌉ without a rate. */
function defaultSubspaces(dim: number, codesPerValue?: number): number {
  if (codesPerValue === undefined) return Math.ceil(dim / PQ_DEFAULT_SLICE)
  return Math.max(1, Math.round(dim * codesPerValue))
}

export const WEIGHTS_CODEC_VERSION = 2
/** The oldest version decodeWeights still reads. */
const OLDEST_READ_VERSION = 1

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
  const quantised = new Map<number, Pq8Table>()
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
      const codebook = claim(pqCodebookBytes(tensor.shape[1]!, WEIGHTS_CODEC_VERSION))
      const { subspaces } = rows
      const codebookScales = claim(subspaces * 4)
      entries.push({
        name: tensor.name,
        shape: [...tensor.shape],
        dtype,
        ...data,
        subspaces,
        codebook,
        codebookScales,
      })
      continue
    }
    const data = claim(dataBytes(dtype, tensor.values.length))
    const entry: TensorEntry = { name: tensor.name, shape: [...tensor.shape], dtype, ...data }
    if (isScaled(dtype)) entry.scales = claim(countScales(tensor.shape) * 4)
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
      const { codes, steps, scales } = quantised.get(i)!
      bytes.set(codes, offset)
      bytes.set(new Uint8Array(steps.buffer), dataStart + entry.codebook!.byteOffset)
      const scalesView = new DataView(bytes.buffer, dataStart + entry.codebookScales!.byteOffset)
      scales.forEach((scale, s) => scalesView.setFloat32(s * 4, scale, true))
    } else {
      writeScaled(bytes, offset, dataStart + entry.scales!.byteOffset, tensor, entry.dtype)
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
  if (version < OLDEST_READ_VERSION || version > WEIGHTS_CODEC_VERSION) {
    fail(
      'E_WEIGHTS_VERSION',
      `expected codec version ${OLDEST_READ_VERSION} to ${WEIGHTS_CODEC_VERSION}, got ${version}`,
    )
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
  const { format, meta, entries } = readHeader(header, dataLength, version)
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

/** A pq8 table as stored: its codes, and each slice's centroids as int8 steps of a scale. */
interface Pq8Table extends QuantisedRows {
  steps: Int8Array
  scales: Float32Array
}

/**
 * Learns a pq8 tensor's codebooks and codes; only rank-2 tables cut into slices of 1 to 16.
 * Each slice's centroids are rounded to int8 steps of their own scale before the rows pick
 * theirs, so the codes name exactly the centroids decode rebuilds.
 */
function quantisePq8(tensor: NamedTensor, options: EncodeWeightsOptions['pq']): Pq8Table {
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
  const steps = new Int8Array(PQ_CENTROIDS * dim!)
  const scales = new Float32Array(subspaces)
  const roundCentroids = (centroids: Float32Array, s: number): void => {
    const sliceSteps = steps.subarray(PQ_CENTROIDS * sliceStart(dim!, subspaces, s))
    const scale = quantiseSymmetric(centroids, sliceSteps, STEP_LIMITS.int8)
    scales[s] = scale
    for (let i = 0; i < centroids.length; i++) centroids[i] = sliceSteps[i]! * scale
  }
  const table = quantiseRows(tensor.values, rows!, dim!, {
    ...quantiser,
    subspaces,
    roundCentroids,
  })
  return { ...table, steps, scales }
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
  const region = regionBytes(data, entry)
  if (entry.dtype === 'float32') return readFloat32(region, entry.name, hostLittleEndian)
  if (entry.dtype === 'float16') return readFloat16(region, entry.name, hostLittleEndian)
  if (entry.dtype === 'pq8') {
    const [rows, dim] = entry.shape as [number, number]
    const subspaces = entry.subspaces!
    const codebook = regionBytes(data, entry.codebook!)
    const label = `${entry.name} codebook`
    // Version 1's codebooks are float16 and have no scales (readPqEntry).
    const codebooks = entry.codebookScales
      ? applyScales(
          new Int8Array(codebook.buffer, codebook.byteOffset, codebook.length),
          regionBytes(data, entry.codebookScales),
          label,
          (s) => PQ_CENTROIDS * sliceStart(dim, subspaces, s),
        )
      : readFloat16(codebook, label, hostLittleEndian)
    return reconstructRows({ subspaces, codebooks, codes: region }, rows, dim)
  }
  const { name, shape, dtype } = entry
  return readScaled(region, regionBytes(data, entry.scales!), { name, shape, dtype })
}

function regionBytes(data: Uint8Array, region: Region): Uint8Array {
  return data.subarray(region.byteOffset, region.byteOffset + region.byteLength)
}

function formatHex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`
}

function describeBytes(bytes: Uint8Array): string {
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ')
  return bytes.length === 0 ? 'no bytes' : `bytes ${hex}`
}
