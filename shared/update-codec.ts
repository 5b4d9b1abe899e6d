// The binary form of one federated update (PROTOCOL.md P8–P10, P27, P28): a fixed header (48
// bytes, 52 with a popularity sketch), the slice's values and the sketch as float16, a CRC-32.
// Its size depends only on the layout, never on what the shopper did; no item id is in it.
// Decoding is strict and allocation-bounded: a body is read only if its length is exactly what
// its own header declares.
import { MAX_SCORED_CASES, type DeviceScore } from './leader-upload'

export { MAX_SCORED_CASES, NO_SCORE, type DeviceScore } from './leader-upload'
import { computeCrc32, decodeFloat16, encodeFloat16 } from './weights-codec'

export const UPDATE_MAGIC = 'PRU2'
/** The same format with a table sketch instead of a row slice (P8b). */
export const SKETCH_UPDATE_MAGIC = 'PRS2'
/** The two formats again, with a popularity sketch (P28) and its width in a longer header. */
export const POPULARITY_UPDATE_MAGIC = 'PRU3'
export const POPULARITY_SKETCH_UPDATE_MAGIC = 'PRS3'
const HEADER_BYTES = 48
const POPULARITY_HEADER_BYTES = 52
const CRC_BYTES = 4
/** Bounds of P9; the example count bound keeps a weight's arithmetic exact. */
export const MAX_EXAMPLES = 1_000_000
const KEY_BYTES = 16

/** What the manifest's `federation` block fixes about every update (P8). */
export interface UpdateLayout {
  /** Dense (non-table) coordinates an update carries: `D`. */
  denseCoordinates: number
  /** Table rows an update carries: `R` (buckets of the sketch with `tableSketch`). */
  sliceRows: number
  embedDim: number
  /**
   * P8b: the `R` table vectors are a count sketch of the whole table's difference, seeded by
   * the slice, instead of the rows of a slice.
   */
  tableSketch?: boolean
  /**
   * P8c: with a sketch, only rows from this index on are sketched (default 0): the items a shop
   * added after its model was trained, whose rows are appended to the table. Not in the body:
   * the server reads every update with its own current value.
   */
  sketchFromRow?: number
  /**
   * P28: buckets of the popularity sketch an update carries after its values (0 or absent:
   * none): the device's viewed items, counted once each, hashed with the base version as seed.
   */
  popularityBuckets?: number
}

export interface ModelUpdate {
  baseVersion: number
  /** Prefix cases the device trained on. */
  examples: number
  slice: number
  layout: UpdateLayout
  /** 16 random bytes; a retry repeats them (P12). */
  idempotencyKey: Uint8Array
  /** `D` dense values, then `R × embedDim` table values (row-major). */
  values: Float32Array
  /** P28: `popularityBuckets` values, L2 norm ≤ 1 (absent or empty without a sketch). */
  popularity?: Float32Array
  /** How the base version ranked the device's own next items before it trained on them (P27). */
  score: DeviceScore
}

export type UpdateErrorCode =
  /** Not bytes, shorter than a header, or a length other than the header declares. */
  | 'E_UPDATE_LENGTH'
  | 'E_UPDATE_MAGIC'
  | 'E_UPDATE_CHECKSUM'
  /** A header field out of its bounds. */
  | 'E_UPDATE_HEADER'
  /** A NaN or infinite value, or one float16 cannot hold. */
  | 'E_UPDATE_NONFINITE'

export class UpdateFormatError extends Error {
  // Set explicitly: minifiers rename classes, and `name` must survive a bundle.
  override readonly name = 'UpdateFormatError'
  readonly code: UpdateErrorCode

  constructor(code: UpdateErrorCode, message: string) {
    super(message)
    this.code = code
  }
}

/** Values an update of `layout` carries: `D + R·embedDim`. */
export function updateValueCount(layout: UpdateLayout): number {
  return layout.denseCoordinates + layout.sliceRows * layout.embedDim
}

/** Bytes of every update with this layout (P9). */
export function updateByteLength(layout: UpdateLayout): number {
  const popularity = layout.popularityBuckets ?? 0
  return headerBytes(layout) + 2 * (updateValueCount(layout) + popularity) + CRC_BYTES
}

function headerBytes(layout: UpdateLayout): number {
  return (layout.popularityBuckets ?? 0) > 0 ? POPULARITY_HEADER_BYTES : HEADER_BYTES
}

export function encodeUpdate(update: ModelUpdate): Uint8Array {
  checkHeader(update)
  const count = updateValueCount(update.layout)
  if (update.values.length !== count) {
    fail(
      'E_UPDATE_LENGTH',
      `expected ${count} values for layout ${describeLayout(update.layout)}, got ${update.values.length}`,
    )
  }
  const buckets = update.layout.popularityBuckets ?? 0
  const popularity = update.popularity ?? new Float32Array(0)
  if (popularity.length !== buckets) {
    fail('E_UPDATE_LENGTH', `expected ${buckets} popularity values, got ${popularity.length}`)
  }
  const bytes = new Uint8Array(updateByteLength(update.layout))
  const view = new DataView(bytes.buffer)
  const magic =
    buckets > 0
      ? update.layout.tableSketch
        ? POPULARITY_SKETCH_UPDATE_MAGIC
        : POPULARITY_UPDATE_MAGIC
      : update.layout.tableSketch
        ? SKETCH_UPDATE_MAGIC
        : UPDATE_MAGIC
  for (let i = 0; i < 4; i++) bytes[i] = magic.charCodeAt(i)
  view.setUint32(4, update.baseVersion, true)
  view.setUint32(8, update.examples, true)
  view.setUint32(12, update.slice, true)
  view.setUint32(16, update.layout.denseCoordinates, true)
  view.setUint16(20, update.layout.sliceRows, true)
  view.setUint16(22, update.layout.embedDim, true)
  bytes.set(update.idempotencyKey, 24)
  view.setUint16(40, update.score.cases, true)
  view.setUint16(42, update.score.hits20, true)
  view.setFloat32(44, update.score.reciprocalRank20, true)
  if (buckets > 0) view.setUint16(48, buckets, true) // 50–51 stay zero
  const start = headerBytes(update.layout)
  for (let i = 0; i < count + buckets; i++) {
    const value = i < count ? update.values[i]! : popularity[i - count]!
    const bits = encodeFloat16(value)
    // Exponent all ones: Infinity or NaN, including finite float32s beyond float16's range.
    if ((bits & 0x7c00) === 0x7c00) {
      fail(
        'E_UPDATE_NONFINITE',
        `expected finite values within float16's range, got ${value} at ${i}`,
      )
    }
    view.setUint16(start + 2 * i, bits, true)
  }
  view.setUint32(bytes.length - CRC_BYTES, computeCrc32(bytes.subarray(0, -CRC_BYTES)), true)
  return bytes
}

/** Reads an update body; throws UpdateFormatError with a stable code for anything malformed. */
export function decodeUpdate(input: Uint8Array | ArrayBuffer): ModelUpdate {
  if (!(input instanceof Uint8Array) && !(input instanceof ArrayBuffer)) {
    fail('E_UPDATE_LENGTH', `expected bytes, got ${typeof input}`)
  }
  const bytes = input instanceof Uint8Array ? input : new Uint8Array(input)
  if (bytes.length < HEADER_BYTES + CRC_BYTES) {
    fail(
      'E_UPDATE_LENGTH',
      `expected at least ${HEADER_BYTES + CRC_BYTES} bytes, got ${bytes.length}`,
    )
  }
  const magic = String.fromCharCode(...bytes.subarray(0, 4))
  const magics = [
    UPDATE_MAGIC,
    SKETCH_UPDATE_MAGIC,
    POPULARITY_UPDATE_MAGIC,
    POPULARITY_SKETCH_UPDATE_MAGIC,
  ]
  if (!magics.includes(magic)) {
    fail('E_UPDATE_MAGIC', `expected magic ${magics.join(', ')}, got ${JSON.stringify(magic)}`)
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const withPopularity =
    magic === POPULARITY_UPDATE_MAGIC || magic === POPULARITY_SKETCH_UPDATE_MAGIC
  if (withPopularity && bytes.length < POPULARITY_HEADER_BYTES + CRC_BYTES) {
    fail(
      'E_UPDATE_LENGTH',
      `expected at least ${POPULARITY_HEADER_BYTES + CRC_BYTES} bytes, got ${bytes.length}`,
    )
  }
  const buckets = withPopularity ? view.getUint16(48, true) : 0
  if (withPopularity && (buckets < 1 || view.getUint16(50, true) !== 0)) {
    fail(
      'E_UPDATE_HEADER',
      `expected 1 or more popularity buckets and zero padding, got ${buckets}`,
    )
  }
  const layout: UpdateLayout = {
    denseCoordinates: view.getUint32(16, true),
    sliceRows: view.getUint16(20, true),
    embedDim: view.getUint16(22, true),
    ...(magic === SKETCH_UPDATE_MAGIC || magic === POPULARITY_SKETCH_UPDATE_MAGIC
      ? { tableSketch: true }
      : {}),
    ...(withPopularity ? { popularityBuckets: buckets } : {}),
  }
  // Checked before anything is allocated: the header alone must explain the body's length.
  const expected = updateByteLength(layout)
  if (bytes.length !== expected) {
    fail(
      'E_UPDATE_LENGTH',
      `expected ${expected} bytes for layout ${describeLayout(layout)}, got ${bytes.length}`,
    )
  }
  const crc = view.getUint32(bytes.length - CRC_BYTES, true)
  if (computeCrc32(bytes.subarray(0, -CRC_BYTES)) !== crc) {
    fail('E_UPDATE_CHECKSUM', 'expected the CRC-32 to match the body: it is truncated or altered')
  }
  const update: ModelUpdate = {
    baseVersion: view.getUint32(4, true),
    examples: view.getUint32(8, true),
    slice: view.getUint32(12, true),
    layout,
    idempotencyKey: bytes.slice(24, 24 + KEY_BYTES),
    values: new Float32Array(updateValueCount(layout)),
    ...(withPopularity ? { popularity: new Float32Array(buckets) } : {}),
    score: {
      cases: view.getUint16(40, true),
      hits20: view.getUint16(42, true),
      reciprocalRank20: view.getFloat32(44, true),
    },
  }
  checkHeader(update)
  const start = headerBytes(layout)
  const count = update.values.length
  for (let i = 0; i < count + buckets; i++) {
    const bits = view.getUint16(start + 2 * i, true)
    if ((bits & 0x7c00) === 0x7c00) {
      fail('E_UPDATE_NONFINITE', `expected finite values, got ${decodeFloat16(bits)} at ${i}`)
    }
    if (i < count) update.values[i] = decodeFloat16(bits)
    else update.popularity![i - count] = decodeFloat16(bits)
  }
  return update
}

/** Same layout, field for field (the server compares an update's with the current one, P13). */
export function sameLayout(a: UpdateLayout, b: UpdateLayout): boolean {
  return (
    a.denseCoordinates === b.denseCoordinates &&
    a.sliceRows === b.sliceRows &&
    a.embedDim === b.embedDim &&
    (a.tableSketch === true) === (b.tableSketch === true) &&
    (a.popularityBuckets ?? 0) === (b.popularityBuckets ?? 0)
  )
}

/** L2 norm of an update's values, for the clip check of P11. */
export function updateNorm(values: Float32Array): number {
  let sum = 0
  for (const value of values) sum += value * value
  return Math.sqrt(sum)
}

function checkHeader(update: ModelUpdate): void {
  const { layout } = update
  const u32 = (value: number) => Number.isInteger(value) && value >= 0 && value <= 0xffffffff
  const u16 = (value: number) => Number.isInteger(value) && value >= 0 && value <= 0xffff
  if (!u32(update.baseVersion) || update.baseVersion < 1) {
    fail('E_UPDATE_HEADER', `expected a base version ≥ 1, got ${update.baseVersion}`)
  }
  if (!u32(update.examples) || update.examples < 1 || update.examples > MAX_EXAMPLES) {
    fail('E_UPDATE_HEADER', `expected 1 to ${MAX_EXAMPLES} examples, got ${update.examples}`)
  }
  if (!u32(update.slice)) fail('E_UPDATE_HEADER', `expected a u32 slice, got ${update.slice}`)
  if (
    !u32(layout.denseCoordinates) ||
    !u16(layout.sliceRows) ||
    !u16(layout.embedDim) ||
    !u16(layout.popularityBuckets ?? 0) ||
    updateValueCount(layout) < 1
  ) {
    fail(
      'E_UPDATE_HEADER',
      `expected a layout of u32, u16, u16 with values, got ${describeLayout(layout)}`,
    )
  }
  if (
    !(update.idempotencyKey instanceof Uint8Array) ||
    update.idempotencyKey.length !== KEY_BYTES
  ) {
    fail('E_UPDATE_HEADER', `expected a ${KEY_BYTES}-byte idempotency key`)
  }
  const { cases, hits20, reciprocalRank20: rr } = update.score ?? {}
  // Each hit adds 1/rank with rank 1 … 20; float32 storage rounds the sum by a hair.
  const slack = 1e-3 * Math.max(1, hits20 ?? 0)
  if (
    !u16(cases!) ||
    cases! > MAX_SCORED_CASES ||
    !u16(hits20!) ||
    hits20! > cases! ||
    typeof rr !== 'number' ||
    !(rr >= hits20! / 20 - slack && rr <= hits20! + slack)
  ) {
    fail(
      'E_UPDATE_HEADER',
      `expected a score of 0–${MAX_SCORED_CASES} cases, hits ≤ cases and hits/20 ≤ Σ1/rank ≤ hits, got ${JSON.stringify(update.score)}`,
    )
  }
}

function describeLayout(layout: UpdateLayout): string {
  const rows = layout.tableSketch ? 'sketch buckets' : 'R'
  const popularity = layout.popularityBuckets ? ` popularity=${layout.popularityBuckets}` : ''
  return `D=${layout.denseCoordinates} ${rows}=${layout.sliceRows} embedDim=${layout.embedDim}${popularity}`
}

function fail(code: UpdateErrorCode, message: string): never {
  throw new UpdateFormatError(code, message)
}
