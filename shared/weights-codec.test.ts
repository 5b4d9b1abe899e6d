import { describe, expect, it } from 'vitest'
import { WeightsFormatError, type WeightsErrorCode } from './errors'
import {
  computeCrc32,
  decodeFloat16,
  decodeWeights,
  decodeWeightsOnHost,
  encodeFloat16,
  encodeWeights,
  encodeWeightsOnHost,
  isWeightsFile,
  quantisationError,
  type WeightDType,
  type WeightsFile,
} from './weights-codec'
// Seeded so a failing fuzz case reproduces.
import { createRandom } from './random'
import { sliceStart } from './product-quantiser'

/** A file of one [rows, dim] table, as the pq8 tests quantise it. */
function tableFile(values: Float32Array, rows: number, dim: number): WeightsFile {
  return {
    format: 'x',
    meta: {},
    tensors: [{ name: 'item-embeddings', shape: [rows, dim], values }],
  }
}

function fillRandom(size: number, limit: number, random: () => number): Float32Array {
  const values = new Float32Array(size)
  for (let i = 0; i < size; i++) values[i] = (random() * 2 - 1) * limit
  return values
}

function makeFile(seed = 1): WeightsFile {
  const random = createRandom(seed)
  return {
    format: 'pocketrec-gru',
    meta: { nItems: 50, dim: 8, hidden: 6, version: '2024-06-01', tied: true },
    tensors: [
      { name: 'item-embeddings', shape: [50, 8], values: fillRandom(400, 0.5, random) },
      { name: 'gru/kernel', shape: [8, 18], values: fillRandom(144, 1, random) },
      { name: 'gru/bias', shape: [18], values: fillRandom(18, 0.1, random) },
      { name: 'temperature', shape: [], values: new Float32Array([0.7]) },
    ],
  }
}

function bytesOf(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength)
}

/** Exact equality down to the bit (so -0 and 0 differ), which toEqual does not promise. */
function expectSameFile(actual: WeightsFile, expected: WeightsFile): void {
  expect(actual.format).toBe(expected.format)
  expect(actual.meta).toEqual(expected.meta)
  expect(actual.tensors.map((t) => [t.name, t.shape])).toEqual(
    expected.tensors.map((t) => [t.name, t.shape]),
  )
  actual.tensors.forEach((t, i) => {
    expect(Buffer.from(bytesOf(t.values)).equals(bytesOf(expected.tensors[i]!.values))).toBe(true)
  })
}

function catchError(run: () => unknown): unknown {
  try {
    run()
  } catch (error) {
    return error
  }
  throw new Error('expected a throw, got a result')
}

function expectWeightsError(run: () => unknown, code: WeightsErrorCode): WeightsFormatError {
  const error = catchError(run)
  expect(error).toBeInstanceOf(WeightsFormatError)
  const weightsError = error as WeightsFormatError
  expect(weightsError.name).toBe('WeightsFormatError')
  expect(weightsError.code).toBe(code)
  return weightsError
}

// Taking a valid file apart and putting it back with a fresh checksum lets the tests reach the
// validation behind the CRC, which a real attacker (unlike a flaky network) can also reach.
interface Parts {
  version: number
  reserved: number
  header: Record<string, unknown>
  data: Uint8Array
}

function splitFile(bytes: Uint8Array): Parts {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const headerLength = view.getUint32(8, true)
  const dataStart = Math.ceil((12 + headerLength) / 8) * 8
  const headerText = new TextDecoder().decode(bytes.subarray(12, 12 + headerLength))
  return {
    version: view.getUint16(4, true),
    reserved: view.getUint16(6, true),
    header: JSON.parse(headerText) as Record<string, unknown>,
    data: bytes.slice(dataStart, bytes.length - 4),
  }
}

function joinFile(parts: Parts, headerBytes?: Uint8Array): Uint8Array {
  const header = headerBytes ?? new TextEncoder().encode(JSON.stringify(parts.header))
  const dataStart = Math.ceil((12 + header.length) / 8) * 8
  const bytes = new Uint8Array(dataStart + parts.data.length + 4)
  const view = new DataView(bytes.buffer)
  bytes.set([0x50, 0x52, 0x57, 0x31])
  view.setUint16(4, parts.version, true)
  view.setUint16(6, parts.reserved, true)
  view.setUint32(8, header.length, true)
  bytes.set(header, 12)
  bytes.set(parts.data, dataStart)
  resealFile(bytes)
  return bytes
}

function resealFile(bytes: Uint8Array): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  view.setUint32(bytes.length - 4, computeCrc32(bytes.subarray(0, bytes.length - 4)), true)
}

/** Re-encodes a valid file after `edit` rewrote its header (which it may mutate in place). */
function editHeader(
  edit: (header: Record<string, unknown>, tensors: Record<string, unknown>[]) => unknown,
  bytes = encodeWeights(makeFile(), {
    dtype: (t) => (t.name === 'item-embeddings' ? 'int8' : 'float32'),
  }),
): Uint8Array {
  const parts = splitFile(bytes)
  const replaced = edit(parts.header, parts.header.tensors as Record<string, unknown>[])
  if (replaced !== undefined) parts.header = replaced as Record<string, unknown>
  return joinFile(parts)
}

describe('float16 conversion', () => {
  it('encodes known values to their IEEE binary16 bit patterns', () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -14 - 2 ** -24, 0x03ff], // largest subnormal
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
      [1e9, 0x7c00], // overflow
      [1e-10, 0x0000], // underflow
    ]
    for (const [value, bits] of cases) expect(encodeFloat16(value)).toBe(bits)
  })

  it('rounds ties to even and everything else to nearest', () => {
    expect(encodeFloat16(1 + 2 ** -11)).toBe(0x3c00) // tie, 1.0 is even
    expect(encodeFloat16(1 + 3 * 2 ** -11)).toBe(0x3c02) // tie, rounds up to even
    expect(encodeFloat16(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01) // just above the tie
    expect(encodeFloat16(65519)).toBe(0x7bff) // below the tie with Infinity
    expect(encodeFloat16(65520)).toBe(0x7c00) // the tie goes to even, which is Infinity
    expect(encodeFloat16(2 ** -25)).toBe(0x0000) // subnormal tie, 0 is even
    expect(encodeFloat16(3 * 2 ** -25)).toBe(0x0002) // subnormal tie, rounds up to even
    expect(encodeFloat16(2 ** -25 + 2 ** -40)).toBe(0x0001) // sticky bit below the tie
    expect(encodeFloat16(2 ** -14 - 2 ** -26)).toBe(0x0400) // carries into the smallest normal
  })

  it('keeps NaN a NaN', () => {
    const bits = encodeFloat16(NaN)
    expect(bits & 0x7c00).toBe(0x7c00)
    expect(bits & 0x3ff).not.toBe(0)
    expect(decodeFloat16(bits)).toBeNaN()
  })

  it('round-trips every finite half exactly', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      if ((bits & 0x7c00) === 0x7c00) continue
      expect(encodeFloat16(decodeFloat16(bits))).toBe(bits)
    }
  })

  it('picks the nearer neighbour for random float32 values', () => {
    const random = createRandom(7)
    for (let i = 0; i < 20_000; i++) {
      const value = Math.fround((random() * 2 - 1) * 2 ** (random() * 44 - 28))
      const bits = encodeFloat16(value)
      const rounded = decodeFloat16(bits)
      const error = Math.abs(rounded - value)
      // Both neighbours of the chosen half are at least as far away.
      for (const neighbour of [bits - 1, bits + 1]) {
        if (neighbour < 0 || (neighbour & 0x7fff) >= 0x7c00 || (neighbour ^ bits) & 0x8000) continue
        expect(error).toBeLessThanOrEqual(Math.abs(decodeFloat16(neighbour) - value))
      }
    }
  })
})

describe('computeCrc32', () => {
  it('matches the standard check value for "123456789"', () => {
    expect(computeCrc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926)
  })

  it('gives the same value for every split between the word and byte loops', () => {
    const bytes = new TextEncoder().encode('The quick brown fox jumps over the lazy dog')
    expect(computeCrc32(bytes)).toBe(0x414fa339)
    expect(computeCrc32(new Uint8Array(0))).toBe(0)
  })
})

describe('encodeWeights / decodeWeights', () => {
  it('round-trips float32 exactly, including -0 and extreme magnitudes', () => {
    const file = makeFile()
    file.tensors[2]!.values.set([-0, 3.4028234663852886e38, 1.401298464324817e-45, -1e-40])
    const bytes = encodeWeights(file)
    expectSameFile(decodeWeights(bytes), file)
  })

  it('starts with the magic, version 2 and 8-byte aligned data', () => {
    const bytes = encodeWeights(makeFile(), { dtype: 'float16' })
    expect(new TextDecoder().decode(bytes.subarray(0, 4))).toBe('PRW1')
    const parts = splitFile(bytes)
    expect(parts.version).toBe(2)
    for (const tensor of parts.header.tensors as { byteOffset: number }[]) {
      expect(tensor.byteOffset % 8).toBe(0)
    }
  })

  it('keeps float16 within 1e-3 relative error and representable values exact', () => {
    const random = createRandom(3)
    const normal = new Float32Array(1000)
    for (let i = 0; i < normal.length; i++) {
      normal[i] = (random() < 0.5 ? -1 : 1) * 2 ** (random() * 30 - 14)
    }
    const exact = new Float32Array([0, -0, 1, -2, 65504, -65504, 2 ** -24, 2 ** -14, 0.5, 1023.5])
    const file: WeightsFile = {
      format: 'test',
      meta: {},
      tensors: [
        { name: 'normal', shape: [1000], values: normal },
        { name: 'exact', shape: [10], values: exact },
      ],
    }
    const decoded = decodeWeights(encodeWeights(file, { dtype: 'float16' }))
    const roundTripped = decoded.tensors[0]!.values
    for (let i = 0; i < normal.length; i++) {
      expect(Math.abs(roundTripped[i]! - normal[i]!) / Math.abs(normal[i]!)).toBeLessThan(1e-3)
    }
    expect(Array.from(decoded.tensors[1]!.values)).toEqual(Array.from(exact))
    expect(Object.is(decoded.tensors[1]!.values[1], -0)).toBe(true)
  })

  it('keeps int8 within half a row scale of every value, each row with its own scale', () => {
    const random = createRandom(5)
    const rows = 40
    const cols = 33
    const values = new Float32Array(rows * cols)
    for (let r = 0; r < rows; r++) {
      // Magnitudes from 1e-6 to 1e3: a single tensor-wide scale would flatten the small rows.
      const magnitude = 10 ** (r / 6.5 - 6)
      for (let c = 0; c < cols; c++) values[r * cols + c] = (random() * 2 - 1) * magnitude
    }
    values.fill(0, 0, cols) // an all-zero row
    const file: WeightsFile = {
      format: 'test',
      meta: {},
      tensors: [{ name: 'emb', shape: [rows, cols], values }],
    }
    const decoded = decodeWeights(encodeWeights(file, { dtype: 'int8' })).tensors[0]!.values
    for (let r = 0; r < rows; r++) {
      const row = values.subarray(r * cols, (r + 1) * cols)
      const scale = Math.max(...Array.from(row, Math.abs)) / 127
      for (let c = 0; c < cols; c++) {
        const error = Math.abs(decoded[r * cols + c]! - row[c]!)
        expect(error).toBeLessThanOrEqual(scale / 2 + Math.abs(row[c]!) * 1e-6)
      }
    }
    expect(Array.from(decoded.subarray(0, cols))).toEqual(new Array(cols).fill(0))
  })

  it('uses one int8 scale for tensors of rank 0 and 1', () => {
    const bytes = encodeWeights(makeFile(), { dtype: 'int8' })
    const tensors = splitFile(bytes).header.tensors as {
      name: string
      scales: { byteLength: number }
    }[]
    expect(tensors.map((t) => [t.name, t.scales.byteLength])).toEqual([
      ['item-embeddings', 200],
      ['gru/kernel', 32],
      ['gru/bias', 4],
      ['temperature', 4],
    ])
    const decoded = decodeWeights(bytes)
    expect(decoded.tensors[3]!.values[0]).toBeCloseTo(0.7, 6)
  })

  it('keeps int6 within half a row scale (its largest / 31), packed four values to three bytes', () => {
    const random = createRandom(6)
    const rows = 12
    const values = new Float32Array(rows * 7) // 84 values: 63 bytes
    for (let r = 0; r < rows; r++) {
      const magnitude = 10 ** (r / 3 - 2)
      for (let c = 0; c < 7; c++) values[r * 7 + c] = (random() * 2 - 1) * magnitude
    }
    const file: WeightsFile = {
      format: 'test',
      meta: {},
      tensors: [{ name: 'dense', shape: [rows, 7], values }],
    }
    const bytes = encodeWeights(file, { dtype: 'int6' })
    const [entry] = splitFile(bytes).header.tensors as Record<string, unknown>[]
    expect(entry).toMatchObject({ dtype: 'int6', byteLength: 63, scales: { byteLength: 48 } })
    const decoded = decodeWeights(bytes).tensors[0]!.values
    for (let r = 0; r < rows; r++) {
      const row = values.subarray(r * 7, (r + 1) * 7)
      const scale = Math.max(...Array.from(row, Math.abs)) / 31
      row.forEach((value, c) => {
        expect(Math.abs(decoded[r * 7 + c]! - value)).toBeLessThanOrEqual(scale / 2 + 1e-7)
      })
    }
  })

  it('packs int6 steps as six-bit two’s complement, low bits first, the tail padded with zeros', () => {
    // Scale 1 (largest 31): the steps are the values. Five values: 30 bits in four bytes.
    const values = new Float32Array([31, -31, 1, -1, -2])
    const tensor = { name: 'steps', shape: [5], values }
    const bytes = encodeWeights({ format: 'x', meta: {}, tensors: [tensor] }, { dtype: 'int6' })
    const parts = splitFile(bytes)
    const [entry] = parts.header.tensors as { byteOffset: number; byteLength: number }[]
    const stored = parts.data.subarray(entry!.byteOffset, entry!.byteOffset + entry!.byteLength)
    // 31 = 011111, -31 = 100001, 1 = 000001, -1 = 111111; then -2 = 111110 alone.
    const group = 0b011111 | (0b100001 << 6) | (0b000001 << 12) | (0b111111 << 18)
    expect(Array.from(stored)).toEqual([group & 0xff, (group >>> 8) & 0xff, group >>> 16, 0b111110])
    expect(Array.from(decodeWeights(bytes).tensors[0]!.values)).toEqual([31, -31, 1, -1, -2])
    // Every tail length round-trips.
    for (const n of [1, 2, 3, 4, 6, 7]) {
      const tail = { name: 't', shape: [n], values: values.slice(0, Math.min(n, 5)) }
      if (n > 5) tail.values = new Float32Array(n).map((_, i) => ((i * 7) % 63) - 31)
      const file = { format: 'x', meta: {}, tensors: [tail] }
      const decodedTail = decodeWeights(encodeWeights(file, { dtype: 'int6' })).tensors[0]!
      expect(Array.from(decodedTail.values)).toEqual(Array.from(tail.values))
    }
  })

  it('stores float16 in about half and int8 in about a quarter of float32 plus scales', () => {
    const random = createRandom(9)
    const file: WeightsFile = {
      format: 'test',
      meta: { nItems: 1000 },
      tensors: [{ name: 'emb', shape: [1000, 100], values: fillRandom(100_000, 1, random) }],
    }
    const sizes = Object.fromEntries(
      (['float32', 'float16', 'int8'] as const).map((dtype) => [
        dtype,
        encodeWeights(file, { dtype }).length,
      ]),
    )
    expect(sizes.float32).toBeGreaterThan(400_000)
    expect(sizes.float32).toBeLessThan(400_000 + 300)
    expect(sizes.float16! / sizes.float32!).toBeCloseTo(0.5, 2)
    // 100,000 int8 values and 1,000 float32 row scales.
    expect(sizes.int8).toBeGreaterThan(104_000)
    expect(sizes.int8).toBeLessThan(104_000 + 300)
  })

  it('picks the dtype per tensor when given a function', () => {
    const file = makeFile()
    const choose = (t: { name: string }): WeightDType =>
      t.name === 'item-embeddings' ? 'int8' : t.name === 'gru/kernel' ? 'float16' : 'float32'
    const bytes = encodeWeights(file, { dtype: choose })
    const dtypes = (splitFile(bytes).header.tensors as { dtype: string }[]).map((t) => t.dtype)
    expect(dtypes).toEqual(['int8', 'float16', 'float32', 'float32'])
    const decoded = decodeWeights(bytes)
    expect(Buffer.from(bytesOf(decoded.tensors[2]!.values))).toEqual(
      Buffer.from(bytesOf(file.tensors[2]!.values)),
    )
    const { maxAbs } = quantisationError(file.tensors[1]!.values, decoded.tensors[1]!.values)
    expect(maxAbs).toBeLessThan(1e-3)
  })

  it('writes the same bytes through the big-endian fallback paths', () => {
    const file = makeFile()
    for (const dtype of ['float32', 'float16', 'int8'] as const) {
      const fast = encodeWeightsOnHost(file, { dtype }, true)
      const portable = encodeWeightsOnHost(file, { dtype }, false)
      expect(Buffer.from(portable).equals(fast)).toBe(true)
      expectSameFile(decodeWeightsOnHost(fast, false), decodeWeightsOnHost(fast, true))
    }
  })

  it('accepts an ArrayBuffer and a Uint8Array at an odd offset into a larger buffer', () => {
    const file = makeFile()
    for (const dtype of ['float32', 'float16', 'int8'] as const) {
      const bytes = encodeWeights(file, { dtype })
      const host = new Uint8Array(bytes.length + 3)
      host.set(bytes, 1)
      const unaligned = host.subarray(1, 1 + bytes.length)
      expectSameFile(decodeWeights(unaligned), decodeWeights(bytes.slice().buffer))
    }
  })

  it('returns arrays that do not alias the input bytes', () => {
    const bytes = encodeWeights(makeFile())
    const decoded = decodeWeights(bytes)
    const before = decoded.tensors[0]!.values[0]
    bytes.fill(0)
    expect(decoded.tensors[0]!.values[0]).toBe(before)
  })

  it('round-trips empty tensor lists, zero-size tensors and scalars', () => {
    const file: WeightsFile = {
      format: '',
      meta: {},
      tensors: [
        { name: 'empty-rows', shape: [0, 100], values: new Float32Array(0) },
        { name: 'empty-cols', shape: [3, 0], values: new Float32Array(0) },
        { name: 'scalar', shape: [], values: new Float32Array([-1.5]) },
      ],
    }
    for (const dtype of ['float32', 'float16', 'int8'] as const) {
      expectSameFile(decodeWeights(encodeWeights(file, { dtype })), file)
    }
    expectSameFile(decodeWeights(encodeWeights({ format: 'x', meta: { a: 1 }, tensors: [] })), {
      format: 'x',
      meta: { a: 1 },
      tensors: [],
    })
  })

  it('keeps a __proto__ meta key as plain data without touching prototypes', () => {
    const meta = JSON.parse('{"__proto__": "x", "dim": 8}') as WeightsFile['meta']
    const decoded = decodeWeights(encodeWeights({ format: 'x', meta, tensors: [] }))
    expect(Object.getPrototypeOf(decoded.meta)).toBe(Object.prototype)
    expect(Object.keys(decoded.meta)).toEqual(['__proto__', 'dim'])
  })
})

describe('encodeWeights refusals', () => {
  it.each([
    ['NaN', NaN, 'float32'],
    ['Infinity', Infinity, 'float32'],
    ['NaN', NaN, 'float16'],
    ['-Infinity', -Infinity, 'float16'],
    ['NaN', NaN, 'int8'],
    ['Infinity', Infinity, 'int8'],
  ] as const)('refuses %s weights stored as %s', (label, value, dtype) => {
    const file = makeFile()
    file.tensors[1]!.values[17] = value
    const error = expectWeightsError(() => encodeWeights(file, { dtype }), 'E_WEIGHTS_NONFINITE')
    expect(error.message).toContain(`'gru/kernel'`)
    expect(error.message).toContain(`got ${label} at index 17`)
  })

  it('refuses values float16 would turn into Infinity', () => {
    const file = makeFile()
    file.tensors[2]!.values[0] = 70_000
    const error = expectWeightsError(
      () => encodeWeights(file, { dtype: 'float16' }),
      'E_WEIGHTS_NONFINITE',
    )
    expect(error.message).toContain('65504')
    expect(() => encodeWeights(file, { dtype: 'float32' })).not.toThrow()
  })

  it('refuses a values length that disagrees with the shape', () => {
    const file = makeFile()
    file.tensors[1]!.shape = [8, 17]
    const error = expectWeightsError(() => encodeWeights(file), 'E_WEIGHTS_SHAPE')
    expect(error.message).toBe(
      `tensor 'gru/kernel': expected 136 values for shape [8, 17], got 144`,
    )
  })

  it.each([
    ['negative dims', [-8, -18], 'E_WEIGHTS_SHAPE'],
    ['fractional dims', [8.5, 18], 'E_WEIGHTS_SHAPE'],
    ['string dims', ['8', 18], 'E_WEIGHTS_SHAPE'],
    ['a non-array shape', 144, 'E_WEIGHTS_HEADER'],
  ] as const)('refuses %s', (_label, shape, code) => {
    const file = makeFile()
    ;(file.tensors[1] as { shape: unknown }).shape = shape
    expectWeightsError(() => encodeWeights(file), code)
  })

  it('refuses duplicate names, empty names, bad meta and unknown dtypes', () => {
    const duplicate = makeFile()
    duplicate.tensors[2]!.name = 'gru/kernel'
    expectWeightsError(() => encodeWeights(duplicate), 'E_WEIGHTS_DUPLICATE')
    const unnamed = makeFile()
    unnamed.tensors[0]!.name = ''
    expectWeightsError(() => encodeWeights(unnamed), 'E_WEIGHTS_HEADER')
    for (const value of [NaN, Infinity, null, { nested: 1 }, [1]]) {
      const file = { ...makeFile(), meta: { bad: value } } as unknown as WeightsFile
      expectWeightsError(() => encodeWeights(file), 'E_WEIGHTS_HEADER')
    }
    const dtype = 'bfloat16' as unknown as WeightDType
    expectWeightsError(() => encodeWeights(makeFile(), { dtype }), 'E_WEIGHTS_DTYPE')
    expectWeightsError(() => encodeWeights(makeFile(), { dtype: () => dtype }), 'E_WEIGHTS_DTYPE')
  })

  it('refuses values that are not a Float32Array', () => {
    const file = makeFile()
    ;(file.tensors[2] as { values: unknown }).values = Array.from(file.tensors[2]!.values)
    expectWeightsError(() => encodeWeights(file), 'E_WEIGHTS_HEADER')
  })
})

describe('decodeWeights refusals', () => {
  const valid = encodeWeights(makeFile(), {
    dtype: (t) =>
      t.name === 'item-embeddings' ? 'int8' : t.name === 'gru/kernel' ? 'float16' : 'float32',
  })

  it('refuses inputs that are not bytes', () => {
    expectWeightsError(() => decodeWeights('PRW1' as unknown as Uint8Array), 'E_WEIGHTS_INPUT')
    expectWeightsError(() => decodeWeights([1, 2] as unknown as Uint8Array), 'E_WEIGHTS_INPUT')
  })

  it('refuses the wrong magic, naming the bytes that arrived', () => {
    const bytes = valid.slice()
    bytes.set(new TextEncoder().encode('<htm'))
    const error = expectWeightsError(() => decodeWeights(bytes), 'E_WEIGHTS_MAGIC')
    expect(error.message).toBe(`expected magic 'PRW1', got bytes 3c 68 74 6d`)
  })

  it('refuses an unsupported version', () => {
    for (const version of [0, 3]) {
      const bytes = joinFile({ ...splitFile(valid), version })
      const error = expectWeightsError(() => decodeWeights(bytes), 'E_WEIGHTS_VERSION')
      expect(error.message).toBe(`expected codec version 1 to 2, got ${version}`)
    }
  })

  it('refuses files too short for the prelude and checksum', () => {
    expectWeightsError(() => decodeWeights(new Uint8Array(0)), 'E_WEIGHTS_TRUNCATED')
    expectWeightsError(() => decodeWeights(valid.subarray(0, 15)), 'E_WEIGHTS_TRUNCATED')
  })

  it('refuses a header length past the end', () => {
    const bytes = valid.slice()
    new DataView(bytes.buffer).setUint32(8, bytes.length, true)
    expectWeightsError(() => decodeWeights(bytes), 'E_WEIGHTS_TRUNCATED')
  })

  it('refuses a checksum mismatch, stating both values', () => {
    const bytes = valid.slice()
    bytes[bytes.length - 10]! ^= 0x01
    const error = expectWeightsError(() => decodeWeights(bytes), 'E_WEIGHTS_CHECKSUM')
    expect(error.message).toMatch(/^expected CRC-32 0x[0-9a-f]{8} .*, contents give 0x[0-9a-f]{8}/)
  })

  it('refuses a truncated download', () => {
    expectWeightsError(
      () => decodeWeights(valid.subarray(0, valid.length - 1)),
      'E_WEIGHTS_CHECKSUM',
    )
  })

  it('refuses non-zero reserved bytes and header padding', () => {
    expectWeightsError(
      () => decodeWeights(joinFile({ ...splitFile(valid), reserved: 1 })),
      'E_WEIGHTS_HEADER',
    )
    const parts = splitFile(valid)
    // Find a header whose length is not a multiple of 8, so there is padding to dirty.
    let text = JSON.stringify(parts.header)
    while ((12 + text.length) % 8 === 0) text += ' '
    const bytes = joinFile(parts, new TextEncoder().encode(text))
    bytes[12 + text.length] = 0x20
    resealFile(bytes)
    expectWeightsError(() => decodeWeights(bytes), 'E_WEIGHTS_HEADER')
  })

  it('refuses invalid UTF-8 and invalid JSON headers', () => {
    const parts = splitFile(valid)
    const invalidUtf8 = joinFile(parts, new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]))
    expectWeightsError(() => decodeWeights(invalidUtf8), 'E_WEIGHTS_JSON')
    const invalidJson = joinFile(parts, new TextEncoder().encode('{"format": "x",'))
    const error = expectWeightsError(() => decodeWeights(invalidJson), 'E_WEIGHTS_JSON')
    expect(error.message).toMatch(/^expected a JSON header, got unparsable text/)
  })

  type Edit = (header: Record<string, unknown>, tensors: Record<string, unknown>[]) => unknown
  const cases: [string, Edit, WeightsErrorCode][] = [
    ['a header that is an array', () => [], 'E_WEIGHTS_HEADER'],
    ['a missing format', (h) => void delete h.format, 'E_WEIGHTS_HEADER'],
    ['a numeric format', (h) => void (h.format = 7), 'E_WEIGHTS_HEADER'],
    ['a missing meta', (h) => void delete h.meta, 'E_WEIGHTS_HEADER'],
    ['nested meta values', (h) => void (h.meta = { dims: [1, 2] }), 'E_WEIGHTS_HEADER'],
    ['null meta values', (h) => void (h.meta = { dim: null }), 'E_WEIGHTS_HEADER'],
    ['missing tensors', (h) => void delete h.tensors, 'E_WEIGHTS_HEADER'],
    ['a tensor that is a string', (h) => void (h.tensors = ['emb']), 'E_WEIGHTS_HEADER'],
    ['a missing name', (_h, t) => void delete t[1]!.name, 'E_WEIGHTS_HEADER'],
    ['a missing shape', (_h, t) => void delete t[1]!.shape, 'E_WEIGHTS_HEADER'],
    ['a missing byteOffset', (_h, t) => void delete t[1]!.byteOffset, 'E_WEIGHTS_HEADER'],
    ['a string byteLength', (_h, t) => void (t[1]!.byteLength = '288'), 'E_WEIGHTS_HEADER'],
    ['a negative byteOffset', (_h, t) => void (t[1]!.byteOffset = -8), 'E_WEIGHTS_HEADER'],
    ['missing int8 scales', (_h, t) => void delete t[0]!.scales, 'E_WEIGHTS_HEADER'],
    ['scales on a float tensor', (_h, t) => void (t[1]!.scales = t[0]!.scales), 'E_WEIGHTS_HEADER'],
    ['duplicate tensor names', (_h, t) => void (t[2]!.name = 'gru/kernel'), 'E_WEIGHTS_DUPLICATE'],
    ['an unknown dtype', (_h, t) => void (t[2]!.dtype = 'float64'), 'E_WEIGHTS_DTYPE'],
    ['a negative dim', (_h, t) => void (t[1]!.shape = [-8, -18]), 'E_WEIGHTS_SHAPE'],
    ['a fractional dim', (_h, t) => void (t[1]!.shape = [4.5, 32]), 'E_WEIGHTS_SHAPE'],
    [
      'a shape that disagrees with byteLength',
      (_h, t) => void (t[1]!.shape = [8, 17]),
      'E_WEIGHTS_SHAPE',
    ],
    [
      'a byteLength that disagrees with the shape',
      (_h, t) => void (t[2]!.byteLength = 68),
      'E_WEIGHTS_SHAPE',
    ],
    [
      'int8 scales of the wrong count',
      (_h, t) => void ((t[0]!.scales as { byteLength: number }).byteLength = 4),
      'E_WEIGHTS_SCALE',
    ],
    [
      'a misaligned byteOffset',
      (_h, t) => void (t[3]!.byteOffset = (t[3]!.byteOffset as number) + 4),
      'E_WEIGHTS_RANGE',
    ],
    ['data past the end', (_h, t) => void (t[3]!.byteOffset = 1 << 20), 'E_WEIGHTS_RANGE'],
    [
      'overlapping tensors',
      (_h, t) => void (t[2]!.byteOffset = t[1]!.byteOffset),
      'E_WEIGHTS_RANGE',
    ],
    [
      'tensor data overlapping scales',
      (_h, t) => void (t[3]!.byteOffset = (t[0]!.scales as { byteOffset: number }).byteOffset),
      'E_WEIGHTS_RANGE',
    ],
  ]

  it.each(cases)('refuses %s', (_label, edit, code) => {
    expectWeightsError(() => decodeWeights(editHeader(edit, valid)), code)
  })

  it('states what was expected and what arrived', () => {
    const bytes = editHeader((_h, t) => void (t[1]!.shape = [8, 17]), valid)
    expect(catchError(() => decodeWeights(bytes))).toHaveProperty(
      'message',
      `tensor 'gru/kernel': expected byteLength 272 for float16 shape [8, 17], got 288`,
    )
  })

  it.each([
    ['NaN in float32 data', 'temperature', 0x7fc00000, 4],
    ['Infinity in float32 data', 'gru/bias', 0xff800000, 4],
    ['Infinity in float16 data', 'gru/kernel', 0x7c00, 2],
    ['NaN in float16 data', 'gru/kernel', 0xfe00, 2],
  ] as const)('refuses %s', (_label, name, bits, width) => {
    const parts = splitFile(valid)
    const entry = (parts.header.tensors as { name: string; byteOffset: number }[]).find(
      (t) => t.name === name,
    )!
    const view = new DataView(parts.data.buffer)
    if (width === 4) view.setUint32(entry.byteOffset, bits, true)
    else view.setUint16(entry.byteOffset + 6, bits, true)
    const error = expectWeightsError(() => decodeWeights(joinFile(parts)), 'E_WEIGHTS_NONFINITE')
    expect(error.message).toContain(`tensor '${name}'`)
  })

  it.each([
    ['a NaN int8 scale', 0x7fc00000, 'E_WEIGHTS_NONFINITE'],
    ['a negative int8 scale', 0xbf800000, 'E_WEIGHTS_SCALE'],
  ] as const)('refuses %s', (_label, bits, code) => {
    const parts = splitFile(valid)
    const scales = (parts.header.tensors as { scales?: { byteOffset: number } }[])[0]!.scales!
    new DataView(parts.data.buffer).setUint32(scales.byteOffset + 8, bits, true)
    expectWeightsError(() => decodeWeights(joinFile(parts)), code)
  })

  it('ignores unknown header keys', () => {
    const bytes = editHeader((h, t) => {
      h.producer = 'trainer 0.3'
      t[1]!.note = 'tied'
    }, valid)
    expectSameFile(decodeWeights(bytes), decodeWeights(valid))
  })
})

describe('decodeWeights against hostile input', () => {
  // Every dtype, so every reader meets the damage: item-embeddings pq8, gru/kernel int6,
  // gru/bias float16, temperature int8, out/bias float32.
  const fuzzed = makeFile(11)
  fuzzed.tensors.push({ name: 'out/bias', shape: [5], values: new Float32Array([1, -2, 3, 0, 5]) })
  const dtypes = new Map<string, WeightDType>([
    ['item-embeddings', 'pq8'],
    ['gru/kernel', 'int6'],
    ['gru/bias', 'float16'],
    ['temperature', 'int8'],
  ])
  const valid = encodeWeights(fuzzed, { dtype: (t) => dtypes.get(t.name) ?? 'float32' })
  const original = decodeWeights(valid)

  it('either decodes 2,000 mutated or truncated files to the original or throws WeightsFormatError', () => {
    const random = createRandom(2024)
    const pick = (n: number): number => Math.floor(random() * n)
    let refused = 0
    for (let trial = 0; trial < 2000; trial++) {
      let bytes = valid.slice()
      const kind = trial % 6
      if (kind === 0) bytes[pick(bytes.length)]! ^= 1 << pick(8)
      else if (kind === 1) bytes[pick(bytes.length)] = pick(256)
      else if (kind === 2) bytes = bytes.slice(0, pick(bytes.length))
      else if (kind === 3) {
        const start = pick(bytes.length)
        bytes = new Uint8Array([
          ...bytes.subarray(0, start),
          ...bytes.subarray(start + 1 + pick(16)),
        ])
      } else if (kind === 4) {
        const at = pick(bytes.length)
        bytes = new Uint8Array([...bytes.subarray(0, at), pick(256), ...bytes.subarray(at)])
      } else {
        for (let i = 0; i < 1 + pick(8); i++) bytes[pick(bytes.length)] = pick(256)
      }
      let decoded: WeightsFile
      try {
        decoded = decodeWeights(bytes)
      } catch (error) {
        expect(error).toBeInstanceOf(WeightsFormatError)
        refused++
        continue
      }
      expectSameFile(decoded, original)
    }
    // Nearly every mutation changes the bytes; the few that rewrite a byte to itself decode.
    expect(refused).toBeGreaterThan(1900)
  })

  it('validates resealed header mutations without any other error type', () => {
    // With the checksum recomputed, mutations reach the parser and validators themselves.
    const random = createRandom(99)
    const pick = (n: number): number => Math.floor(random() * n)
    const headerLength = new DataView(valid.buffer).getUint32(8, true)
    for (let trial = 0; trial < 2000; trial++) {
      const bytes = valid.slice()
      for (let i = 0; i < 1 + pick(3); i++) {
        const at = trial % 2 === 0 ? 12 + pick(headerLength) : pick(bytes.length - 4)
        bytes[at] = trial % 3 === 0 ? pick(256) : '0123456789-.,:[]{}"e'.charCodeAt(pick(20))
      }
      resealFile(bytes)
      try {
        expect(isWeightsFile(decodeWeights(bytes))).toBe(true)
      } catch (error) {
        expect(error).toBeInstanceOf(WeightsFormatError)
      }
    }
  })

  it('refuses random garbage of random lengths', () => {
    const random = createRandom(31)
    for (let trial = 0; trial < 500; trial++) {
      const bytes = new Uint8Array(Math.floor(random() * 4096))
      for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256)
      // Half the cases get a valid magic and version so they reach the later checks.
      if (trial % 2 === 0 && bytes.length >= 6) bytes.set([0x50, 0x52, 0x57, 0x31, 1, 0])
      expect(catchError(() => decodeWeights(bytes))).toBeInstanceOf(WeightsFormatError)
    }
  })

  it('refuses hostile sizes quickly, without allocating for them', () => {
    const hostile: [string, Uint8Array, WeightsErrorCode][] = []
    for (const length of [2 ** 31, 2 ** 32 - 1]) {
      const bytes = valid.slice()
      new DataView(bytes.buffer).setUint32(8, length, true)
      resealFile(bytes)
      hostile.push([`header length ${length}`, bytes, 'E_WEIGHTS_TRUNCATED'])
    }
    const shapes: [string, unknown, WeightsErrorCode][] = [
      ['huge dims', [1e15, 1e15], 'E_WEIGHTS_SHAPE'],
      ['a product past 2^53', [2 ** 26, 2 ** 26, 2 ** 26], 'E_WEIGHTS_SHAPE'],
      ['a dim past 2^53', [2 ** 60, 1], 'E_WEIGHTS_SHAPE'],
      ['a huge dim times zero', [1e300, 0], 'E_WEIGHTS_SHAPE'],
      ['a dim of Infinity (as 1e999)', '1e999', 'E_WEIGHTS_SHAPE'],
    ]
    for (const [label, shape, code] of shapes) {
      const bytes =
        shape === '1e999'
          ? joinFile(
              splitFile(valid),
              new TextEncoder().encode(
                JSON.stringify(splitFile(valid).header).replace('"shape":[18]', '"shape":[1e999]'),
              ),
            )
          : editHeader((_h, t) => void (t[2]!.shape = shape), valid)
      hostile.push([label, bytes, code])
    }
    const lengths = editHeader((_h, t) => {
      t[2]!.byteLength = 2 ** 52
      t[2]!.shape = [2 ** 50]
    }, valid)
    hostile.push(['a byteLength of 2^52', lengths, 'E_WEIGHTS_RANGE'])

    for (const [label, bytes, code] of hostile) {
      const started = performance.now()
      const error = catchError(() => decodeWeights(bytes))
      expect({ label, code: (error as WeightsFormatError).code }).toEqual({ label, code })
      expect(performance.now() - started).toBeLessThan(100)
    }
  })
})

describe('isWeightsFile', () => {
  it('accepts a well-formed file and what decode returns', () => {
    expect(isWeightsFile(makeFile())).toBe(true)
    expect(isWeightsFile(decodeWeights(encodeWeights(makeFile())))).toBe(true)
  })

  it.each([
    ['null', null],
    ['an array', []],
    ['a file without tensors', { format: 'x', meta: {} }],
    ['a file with numeric format', { format: 1, meta: {}, tensors: [] }],
    ['a file with nested meta', { format: 'x', meta: { a: {} }, tensors: [] }],
    [
      'plain-array values',
      { format: 'x', meta: {}, tensors: [{ name: 'a', shape: [1], values: [1] }] },
    ],
    [
      'a short values array',
      { format: 'x', meta: {}, tensors: [{ name: 'a', shape: [2], values: new Float32Array(1) }] },
    ],
    [
      'a negative dim',
      { format: 'x', meta: {}, tensors: [{ name: 'a', shape: [-1], values: new Float32Array(0) }] },
    ],
  ])('rejects %s', (_label, raw) => {
    expect(isWeightsFile(raw)).toBe(false)
  })
})

describe('quantisationError', () => {
  it('reports the largest and root-mean-square differences', () => {
    const a = new Float32Array([1, 2, 3, 4])
    const b = new Float32Array([1, 2.5, 3, 3.5])
    expect(quantisationError(a, b)).toEqual({ maxAbs: 0.5, rmse: Math.sqrt(0.125) })
    expect(quantisationError(new Float32Array(0), new Float32Array(0))).toEqual({
      maxAbs: 0,
      rmse: 0,
    })
  })

  it('refuses arrays of different lengths', () => {
    expect(() => quantisationError(new Float32Array(2), new Float32Array(3))).toThrow(
      'expected arrays of equal length, got 2 and 3',
    )
  })
})

describe('pq8 (product-quantised tables)', () => {
  const pqOnTable = (t: { name: string }): WeightDType =>
    t.name === 'item-embeddings' ? 'pq8' : 'float32'

  /** Rows whose every 4-value slice is one of 8 patterns: 256 centroids hold them exactly. */
  function patternedFile(rows = 2000, dim = 8): WeightsFile {
    const random = createRandom(7)
    const patterns = fillRandom(8 * 4, 1, random)
    const values = new Float32Array(rows * dim)
    for (let r = 0; r < rows; r++) {
      for (let s = 0; s < dim / 4; s++) {
        const p = Math.floor(random() * 8)
        values.set(patterns.subarray(p * 4, p * 4 + 4), r * dim + s * 4)
      }
    }
    return {
      format: 'pocketrec-gru',
      meta: { nItems: rows },
      tensors: [
        { name: 'item-embeddings', shape: [rows, dim], values },
        { name: 'gru/bias', shape: [3], values: new Float32Array([0.5, -1, 2]) },
      ],
    }
  }

  it('stores a byte per slice per row and int8 centroids with a scale per slice, and decodes what it learnt', () => {
    const file = patternedFile()
    const bytes = encodeWeights(file, { dtype: pqOnTable })
    const [table] = splitFile(bytes).header.tensors as Record<string, unknown>[]
    expect(table).toMatchObject({ dtype: 'pq8', subspaces: 2, byteLength: 2000 * 2 })
    expect(table!.codebook).toMatchObject({ byteLength: 256 * 8 })
    expect(table!.codebookScales).toMatchObject({ byteLength: 2 * 4 })
    const decoded = decodeWeights(bytes)
    // Every slice is one of 8 patterns in (-1, 1): k-means finds them all, so only the int8
    // rounding of the centroids is left, half a step of at most 1 / 127.
    const error = quantisationError(decoded.tensors[0]!.values, file.tensors[0]!.values)
    expect(error.maxAbs).toBeLessThan(0.5 / 127)
    expect(error.maxAbs).toBeGreaterThan(1e-4) // and that rounding did happen
    expect(decoded.tensors[1]!.values).toEqual(file.tensors[1]!.values)
  })

  it('loses less with shorter slices, and more than int8 (the price of 4 bytes → 1)', () => {
    // More rows than centroids, with no structure: every slicing must really approximate.
    const values = fillRandom(2000 * 8, 1, createRandom(3))
    const file = tableFile(values, 2000, 8)
    const errorWith = (opts: Parameters<typeof encodeWeights>[1]) =>
      quantisationError(
        decodeWeights(encodeWeights(file, opts)).tensors[0]!.values,
        file.tensors[0]!.values,
      ).rmse
    const slices8 = errorWith({ dtype: pqOnTable, pq: { subspaces: 1 } })
    const slices2 = errorWith({ dtype: pqOnTable, pq: { subspaces: 4 } })
    expect(slices2).toBeLessThan(slices8)
    expect(
      errorWith({ dtype: (t) => (t.name === 'item-embeddings' ? 'int8' : 'float32') }),
    ).toBeLessThan(slices2)
  })

  it('cuts a row its slices do not divide into slices one value apart, the longer first', () => {
    // 10 values in 3 slices: 4, 3, 3. Every slice is one of 8 patterns of its own width, so the
    // codes name them exactly wherever each slice starts; a misplaced slice would mix patterns.
    const random = createRandom(11)
    const widths = [4, 3, 3]
    expect([0, 1, 2, 3].map((s) => sliceStart(10, 3, s))).toEqual([0, 4, 7, 10])
    expect([0, 10, 20, 30].map((s) => sliceStart(100, 30, s))).toEqual([0, 40, 70, 100])
    const patterns = widths.map((w) => fillRandom(8 * w, 1, random))
    const rows = 1000
    const values = new Float32Array(rows * 10)
    for (let r = 0; r < rows; r++) {
      widths.forEach((w, s) => {
        const p = Math.floor(random() * 8)
        values.set(patterns[s]!.subarray(p * w, (p + 1) * w), r * 10 + sliceStart(10, 3, s))
      })
    }
    const file = tableFile(values, rows, 10)
    const bytes = encodeWeights(file, { dtype: pqOnTable, pq: { subspaces: 3 } })
    const [table] = splitFile(bytes).header.tensors as Record<string, unknown>[]
    expect(table).toMatchObject({ dtype: 'pq8', subspaces: 3, byteLength: rows * 3 })
    // The shipped form names a rate instead: round(10 · 0.3) = 3 codes a row, the same file.
    expect(encodeWeights(file, { dtype: pqOnTable, pq: { codesPerValue: 0.3 } })).toEqual(bytes)
    expect(table!.codebook).toMatchObject({ byteLength: 256 * 10 })
    expect(table!.codebookScales).toMatchObject({ byteLength: 3 * 4 })
    const decoded = decodeWeights(bytes).tensors[0]!.values
    expect(quantisationError(decoded, values).maxAbs).toBeLessThan(0.5 / 127)
    // And the decoded table, already quantised, encodes again to itself (float32 rounding aside).
    const again = { ...file, tensors: [{ ...file.tensors[0]!, values: decoded }] }
    const twice = decodeWeights(encodeWeights(again, { dtype: pqOnTable, pq: { subspaces: 3 } }))
    expect(quantisationError(twice.tensors[0]!.values, decoded).maxAbs).toBeLessThan(1e-6)
  })

  it('loses less with each code a row gains, also where the slices do not divide the row', () => {
    const values = fillRandom(2000 * 10, 1, createRandom(4))
    const file = tableFile(values, 2000, 10)
    const rmse = (subspaces: number) =>
      quantisationError(
        decodeWeights(encodeWeights(file, { dtype: pqOnTable, pq: { subspaces } })).tensors[0]!
          .values,
        values,
      ).rmse
    const [two, three, four] = [rmse(2), rmse(3), rmse(4)] // slices 5+5, 4+3+3, 3+3+2+2
    expect(three).toBeLessThan(two)
    expect(four).toBeLessThan(three)
  })

  it('encodes a decoded table again to itself, float32 rounding of its scales aside', () => {
    const values = fillRandom(3000 * 8, 1, createRandom(5))
    const file = tableFile(values, 3000, 8)
    const once = decodeWeights(encodeWeights(file, { dtype: pqOnTable, pq: { subspaces: 2 } }))
    const twice = decodeWeights(encodeWeights(once, { dtype: pqOnTable, pq: { subspaces: 2 } }))
    expect(quantisationError(once.tensors[0]!.values, values).maxAbs).toBeGreaterThan(0.01)
    expect(
      quantisationError(twice.tensors[0]!.values, once.tensors[0]!.values).maxAbs,
    ).toBeLessThan(1e-6)
  })

  it('assigns each row the nearest centroid as stored, after the int8 rounding', () => {
    const values = fillRandom(3000 * 8, 1, createRandom(8))
    const file = tableFile(values, 3000, 8)
    const bytes = encodeWeights(file, { dtype: pqOnTable, pq: { subspaces: 2 } })
    const parts = splitFile(bytes)
    const [table] = parts.header.tensors as {
      byteOffset: number
      codebook: { byteOffset: number }
      codebookScales: { byteOffset: number }
    }[]
    const view = new DataView(parts.data.buffer, parts.data.byteOffset)
    let nearer = 0 // centroids nearer a row's slice than the one its code names
    const steps = new Int8Array(
      parts.data.buffer,
      parts.data.byteOffset + table!.codebook.byteOffset,
      256 * 8,
    )
    for (let row = 0; row < 3000; row++) {
      for (const s of [0, 1]) {
        const scale = view.getFloat32(table!.codebookScales.byteOffset + s * 4, true)
        const distance = (c: number) => {
          let sum = 0
          for (let k = 0; k < 4; k++) {
            const centroid = Math.fround(steps[256 * 4 * s + c * 4 + k]! * scale)
            sum += (values[row * 8 + s * 4 + k]! - centroid) ** 2
          }
          return sum
        }
        const code = parts.data[table!.byteOffset + row * 2 + s]!
        const own = distance(code)
        for (let c = 0; c < 256; c++) if (distance(c) < own) nearer++
      }
    }
    expect(nearer).toBe(0)
  })

  it('still reads version 1 files, whose codebooks are float16 without scales', () => {
    // What devices stored before version 2: one [3, 4] table in 2 slices of 2, by hand.
    const centroids = new Float32Array(256 * 4).map((_, i) => (i % 7) / 8 - 0.375)
    const codes = new Uint8Array([0, 5, 255, 1, 7, 7])
    const header = {
      format: 'pocketrec-gru',
      meta: {},
      tensors: [
        {
          name: 'item-embeddings',
          shape: [3, 4],
          dtype: 'pq8',
          byteOffset: 0,
          byteLength: 6,
          subspaces: 2,
          codebook: { byteOffset: 8, byteLength: 256 * 4 * 2 },
        },
      ],
    }
    const data = new Uint8Array(8 + 256 * 4 * 2)
    data.set(codes)
    const halves = new DataView(data.buffer, 8)
    centroids.forEach((value, i) => halves.setUint16(i * 2, encodeFloat16(value), true))
    const decoded = decodeWeights(joinFile({ version: 1, reserved: 0, header, data }))
    // Slice s of row r is centroid codes[r][s] of slice s, two values at 256 · 2 · s + code · 2.
    const expected = Array.from(codes, (code, i) => {
      const from = 256 * 2 * (i % 2) + code * 2
      return [centroids[from]!, centroids[from + 1]!]
    }).flat()
    expect(Array.from(decoded.tensors[0]!.values)).toEqual(expected)
    // A version 2 reading of the same bytes would want int8 steps and scales: refused, not misread.
    expectWeightsError(
      () => decodeWeights(joinFile({ version: 2, reserved: 0, header, data })),
      'E_WEIGHTS_SHAPE',
    )
  })

  it('is refused at encode for a tensor that is not a table cut into short slices', () => {
    const file = makeFile()
    expectWeightsError(() => encodeWeights(file, { dtype: 'pq8' }), 'E_WEIGHTS_DTYPE') // rank 1
    const table = { format: 'x', meta: {}, tensors: [file.tensors[0]!] }
    for (const subspaces of [0, 9]) {
      expectWeightsError(
        () => encodeWeights(table, { dtype: 'pq8', pq: { subspaces } }),
        'E_WEIGHTS_DTYPE',
      )
    }
  })

  const pqBytes = () => encodeWeights(patternedFile(300), { dtype: pqOnTable })
  it.each<[string, (table: Record<string, unknown>) => void, WeightsErrorCode]>([
    ['more subspaces than values in a row', (t) => (t.subspaces = 9), 'E_WEIGHTS_HEADER'],
    ['zero subspaces', (t) => (t.subspaces = 0), 'E_WEIGHTS_HEADER'],
    [
      'slices longer than 16 values',
      (t) => ((t.shape = [300, 40]), (t.subspaces = 2)),
      'E_WEIGHTS_HEADER',
    ],
    ['no codebook', (t) => delete t.codebook, 'E_WEIGHTS_HEADER'],
    ['no codebook scales', (t) => delete t.codebookScales, 'E_WEIGHTS_HEADER'],
    [
      'codebook scales for one slice of two',
      (t) => ((t.codebookScales as { byteLength: number }).byteLength = 4),
      'E_WEIGHTS_SCALE',
    ],
    [
      'codebook scales over the codebook',
      (t) =>
        ((t.codebookScales as { byteOffset: number }).byteOffset = (
          t.codebook as { byteOffset: number }
        ).byteOffset),
      'E_WEIGHTS_RANGE',
    ],
    [
      'a short codebook',
      (t) => ((t.codebook as { byteLength: number }).byteLength -= 8),
      'E_WEIGHTS_SHAPE',
    ],
    ['codes for fewer rows', (t) => (t.shape = [299, 8]), 'E_WEIGHTS_SHAPE'],
    ['a rank-1 pq8 tensor', (t) => (t.shape = [2400]), 'E_WEIGHTS_SHAPE'],
    [
      'a codebook over the codes',
      (t) => ((t.codebook as { byteOffset: number }).byteOffset = 0),
      'E_WEIGHTS_RANGE',
    ],
  ])('refuses a header with %s', (_, edit, code) => {
    const bytes = editHeader((_header, [table]) => void edit(table!), pqBytes())
    expectWeightsError(() => decodeWeights(bytes), code)
  })

  it.each<[string, number, WeightsErrorCode]>([
    ['a NaN', NaN, 'E_WEIGHTS_NONFINITE'],
    ['an infinite', Infinity, 'E_WEIGHTS_NONFINITE'],
    ['a negative', -0.5, 'E_WEIGHTS_SCALE'],
  ])('refuses %s codebook scale', (_, scale, code) => {
    const parts = splitFile(pqBytes())
    const [table] = parts.header.tensors as Array<{ codebookScales: { byteOffset: number } }>
    new DataView(parts.data.buffer).setFloat32(table!.codebookScales.byteOffset + 4, scale, true)
    expectWeightsError(() => decodeWeights(joinFile(parts)), code)
  })
})
