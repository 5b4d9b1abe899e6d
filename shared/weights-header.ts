// The weights container's header: the tensor table's types, reading it from hostile JSON, and the
// structural checks that encodeWeights, decodeWeights and isWeightsFile share. Also the error
// helpers every weights-* file throws with. The layout is documented in weights-codec.ts.

import { WeightsFormatError, type WeightsErrorCode } from './errors'
import { PQ_CENTROIDS } from './product-quantiser'

/**
 * How a tensor is stored on the wire; decoded tensors are always Float32Array. 'pq8' is product
 * quantisation (shared/product-quantiser.ts), for rank-2 tables only: a byte per row slice.
 */
export type WeightDType = 'float32' | 'float16' | 'int8' | 'int6' | 'pq8'

/** WeightsFile['meta']: flat JSON scalars only. */
type Meta = Record<string, string | number | boolean>

export const ALIGNMENT = 8
export const DTYPES: readonly WeightDType[] = ['float32', 'float16', 'int8', 'int6', 'pq8']

/** The data bytes of `count` elements stored as `dtype` (pq8's depend on its slicing instead). */
export function dataBytes(dtype: Exclude<WeightDType, 'pq8'>, count: number): number {
  if (dtype === 'float32') return count * 4
  if (dtype === 'float16') return count * 2
  if (dtype === 'int8') return count
  return int6Bytes(count)
}

/** The largest step of each scaled integer dtype; steps are symmetric, -limit to limit. */
export const STEP_LIMITS = { int8: 127, int6: 31 } as const
export type ScaledDType = keyof typeof STEP_LIMITS

/** int6's data bytes for `count` values: four values (24 bits) in three bytes, the last padded. */
export function int6Bytes(count: number): number {
  return Math.ceil((count * 3) / 4)
}

/** The dtypes stored as whole steps of a float32 scale per row (countScales). */
export function isScaled(dtype: WeightDType): dtype is ScaledDType {
  return dtype === 'int8' || dtype === 'int6'
}

export interface Region {
  byteOffset: number
  byteLength: number
}

export interface TensorEntry extends Region {
  name: string
  shape: number[]
  dtype: WeightDType
  scales?: Region
  /** pq8: slices per row; the data region holds a code byte per slice, [rows][subspaces]. */
  subspaces?: number
  /**
   * pq8: the centroids, slice by slice [PQ_CENTROIDS][slice width] (product-quantiser.ts): int8
   * steps of a float32 scale per slice (codebookScales) from codec version 2, float16 in version 1.
   */
  codebook?: Region
  codebookScales?: Region
}

interface Problem {
  code: WeightsErrorCode
  message: string
}

// ---------------------------------------------------------------------------------------------
// Reading the header (decode)

export function parseHeaderJson(headerBytes: Uint8Array): unknown {
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

export function readHeader(
  header: unknown,
  dataLength: number,
  version: number,
): { format: string; meta: Meta; entries: TensorEntry[] } {
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
    const entry = readEntry(raw, `header.tensors[${i}]`, dataLength, version)
    if (names.has(entry.name)) {
      fail('E_WEIGHTS_DUPLICATE', `expected unique tensor names, got '${entry.name}' twice`)
    }
    names.add(entry.name)
    return entry
  })
  // fromEntries defines own properties, so a '__proto__' key in hostile JSON stays a plain key.
  const meta = Object.fromEntries(Object.entries(header.meta as Meta))
  return { format: header.format, meta, entries }
}

function readEntry(raw: unknown, where: string, dataLength: number, version: number): TensorEntry {
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
  if (dtype === 'pq8')
    return readPqEntry(raw, { name, shape: [...dims], dtype, ...data }, dataLength, version)
  // Every element takes at least six bits, so twice the data section bounds the count before any
  // product can overflow or drive an allocation.
  const count = countElements(dims, dataLength * 2)
  if (count === undefined) {
    fail(
      'E_WEIGHTS_SHAPE',
      `${label}: expected a shape that fits the ${dataLength}-byte data section, got [${dims.join(', ')}]`,
    )
  }
  const expectedLength = dataBytes(dtype, count)
  if (data.byteLength !== expectedLength) {
    fail(
      'E_WEIGHTS_SHAPE',
      `${label}: expected byteLength ${expectedLength} for ${dtype} shape [${dims.join(', ')}], got ${data.byteLength}`,
    )
  }
  const entry: TensorEntry = { name, shape: [...dims], dtype, ...data }
  if (!isScaled(dtype)) {
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
      `${label}: expected an ${dtype} tensor to have scales, got ${describe(raw.scales)}`,
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

/** A pq8 entry: a rank-2 [rows, dim] table, 1 to dim subspaces, codes and codebook sized. */
function readPqEntry(
  raw: Record<string, unknown>,
  entry: TensorEntry,
  dataLength: number,
  version: number,
): TensorEntry {
  const label = `tensor '${entry.name}'`
  const [rows, dim] = entry.shape
  if (entry.shape.length !== 2) {
    fail(
      'E_WEIGHTS_SHAPE',
      `${label}: expected a rank-2 pq8 tensor, got [${entry.shape.join(', ')}]`,
    )
  }
  const { subspaces } = raw
  // A slice of at most PQ_MAX_SLICE values bounds the decoded size by the codes' bytes: a hostile
  // header cannot make a small file decode into gigabytes.
  if (
    !isCount(subspaces) ||
    subspaces === 0 ||
    subspaces > dim! ||
    Math.ceil(dim! / subspaces) > PQ_MAX_SLICE
  ) {
    fail(
      'E_WEIGHTS_HEADER',
      `${label}: expected subspaces cutting ${dim} values into slices of 1 to ${PQ_MAX_SLICE}, got ${describe(subspaces)}`,
    )
  }
  if (entry.byteLength !== rows! * subspaces) {
    fail(
      'E_WEIGHTS_SHAPE',
      `${label}: expected byteLength ${rows! * subspaces} (${rows} rows of ${subspaces} codes), got ${entry.byteLength}`,
    )
  }
  if (!isRecord(raw.codebook)) {
    fail(
      'E_WEIGHTS_HEADER',
      `${label}: expected a pq8 tensor to have a codebook, got ${describe(raw.codebook)}`,
    )
  }
  const codebook = readRegion(raw.codebook, `${label} codebook`, dataLength)
  const expected = pqCodebookBytes(dim!, version)
  if (codebook.byteLength !== expected) {
    fail(
      'E_WEIGHTS_SHAPE',
      `${label}: expected a ${expected}-byte codebook (${PQ_CENTROIDS} · ${dim} ${version === 1 ? 'float16' : 'int8'}), got ${codebook.byteLength}`,
    )
  }
  // Version 1 stored float16 centroids and no scales; a key it never had is ignored, as then.
  if (version === 1) return { ...entry, subspaces, codebook }
  if (!isRecord(raw.codebookScales)) {
    fail(
      'E_WEIGHTS_HEADER',
      `${label}: expected a pq8 tensor to have codebook scales, got ${describe(raw.codebookScales)}`,
    )
  }
  const codebookScales = readRegion(raw.codebookScales, `${label} codebook scales`, dataLength)
  if (codebookScales.byteLength !== subspaces * 4) {
    fail(
      'E_WEIGHTS_SCALE',
      `${label}: expected ${subspaces * 4} bytes of codebook scales (a float32 per slice), got ${codebookScales.byteLength}`,
    )
  }
  return { ...entry, subspaces, codebook, codebookScales }
}

/** The longest row slice a pq8 tensor may have. */
export const PQ_MAX_SLICE = 16

/**
 * A pq8 codebook's size: PQ_CENTROIDS centroids of every slice, whatever the slicing; int8 steps
 * from codec version 2, float16 in version 1.
 */
export function pqCodebookBytes(dim: number, version: number): number {
  return PQ_CENTROIDS * dim * (version === 1 ? 2 : 1)
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

export function checkRegionsDisjoint(entries: TensorEntry[]): void {
  const regions: (Region & { label: string })[] = []
  for (const entry of entries) {
    regions.push({ ...regionOf(entry), label: `tensor '${entry.name}'` })
    if (entry.scales) regions.push({ ...entry.scales, label: `tensor '${entry.name}' scales` })
    if (entry.codebook) {
      regions.push({ ...entry.codebook, label: `tensor '${entry.name}' codebook` })
    }
    if (entry.codebookScales) {
      regions.push({ ...entry.codebookScales, label: `tensor '${entry.name}' codebook scales` })
    }
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

// ---------------------------------------------------------------------------------------------
// Validation shared by encode, decode and the guard

export function findFileProblem(raw: unknown): Problem | undefined {
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

/** int8 and int6 scales: one per row for rank >= 2, one for the whole tensor otherwise. */
export function countScales(shape: readonly number[]): number {
  return shape.length >= 2 ? shape[0]! : 1
}

function regionOf(entry: TensorEntry): Region {
  return { byteOffset: entry.byteOffset, byteLength: entry.byteLength }
}

export function isDType(raw: unknown): raw is WeightDType {
  return typeof raw === 'string' && (DTYPES as readonly string[]).includes(raw)
}

function isRecord(raw: unknown): raw is Record<string, unknown> {
  return typeof raw === 'object' && raw !== null && !Array.isArray(raw) && !ArrayBuffer.isView(raw)
}

function isCount(raw: unknown): raw is number {
  return typeof raw === 'number' && Number.isSafeInteger(raw) && raw >= 0
}

// ---------------------------------------------------------------------------------------------
// Helpers

export function alignUp(n: number): number {
  return Math.ceil(n / ALIGNMENT) * ALIGNMENT
}

export function fail(code: WeightsErrorCode, message: string): never {
  throw new WeightsFormatError(code, message)
}

/** A short, safe rendering of an unexpected value for error messages. */
export function describe(raw: unknown): string {
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
