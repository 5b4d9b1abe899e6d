import { describe, expect, it } from 'vitest'
import { createRandom } from './random'
import {
  decodeUpdate,
  encodeUpdate,
  NO_SCORE,
  sameLayout,
  updateByteLength,
  updateNorm,
  UpdateFormatError,
  type ModelUpdate,
  type UpdateLayout,
} from './update-codec'
import { computeCrc32, decodeFloat16, encodeFloat16 } from './weights-codec'

const small: UpdateLayout = { denseCoordinates: 6, sliceRows: 2, embedDim: 3 }
/** The DIGINETICA model's layout (PROTOCOL.md P9). */
const diginetica: UpdateLayout = { denseCoordinates: 16_384, sliceRows: 150, embedDim: 100 }

function update(
  layout: UpdateLayout,
  fill: (i: number) => number = (i) => i / 100 - 0.05,
): ModelUpdate {
  const count = layout.denseCoordinates + layout.sliceRows * layout.embedDim
  const buckets = layout.popularityBuckets ?? 0
  return {
    ...(buckets > 0
      ? { popularity: Float32Array.from({ length: buckets }, (_, i) => (i % 3) / 4 - 0.25) }
      : {}),
    baseVersion: 3,
    examples: 42,
    slice: 7,
    layout,
    idempotencyKey: Uint8Array.from({ length: 16 }, (_, i) => i * 11),
    values: Float32Array.from({ length: count }, (_, i) => fill(i)),
    score: { cases: 12, hits20: 5, reciprocalRank20: 2.2 },
  }
}

/** Rewrites the trailing CRC so that a test reaches the check after it. */
function reseal(bytes: Uint8Array): Uint8Array {
  new DataView(bytes.buffer).setUint32(bytes.length - 4, computeCrc32(bytes.subarray(0, -4)), true)
  return bytes
}

function codeOf(run: () => unknown): string {
  try {
    run()
  } catch (error) {
    if (error instanceof UpdateFormatError) return error.code
    throw error
  }
  return 'ok'
}

describe('update codec (PROTOCOL.md P8–P10)', () => {
  it('round-trips header and float16 values', () => {
    const original = update(small)
    const decoded = decodeUpdate(encodeUpdate(original))
    expect(decoded).toMatchObject({ baseVersion: 3, examples: 42, slice: 7, layout: small })
    expect(decoded.score).toEqual({ cases: 12, hits20: 5, reciprocalRank20: Math.fround(2.2) })
    expect(Array.from(decoded.idempotencyKey)).toEqual(Array.from(original.idempotencyKey))
    expect(Array.from(decoded.values)).toEqual(
      Array.from(original.values, (v) => decodeFloat16(encodeFloat16(v))),
    )
    expect(sameLayout(decoded.layout, small)).toBe(true)
  })

  it('P8b: a sketch update says so in its magic, and is not the slice layout of the same size', () => {
    const sketch = { ...small, tableSketch: true }
    const bytes = encodeUpdate(update(sketch))
    expect(String.fromCharCode(...bytes.subarray(0, 4))).toBe('PRS2')
    expect(bytes.length).toBe(updateByteLength(small))
    const decoded = decodeUpdate(bytes)
    expect(decoded.layout).toEqual(sketch)
    expect(sameLayout(decoded.layout, sketch)).toBe(true)
    expect(sameLayout(decoded.layout, small)).toBe(false)
    expect(sameLayout(decodeUpdate(encodeUpdate(update(small))).layout, sketch)).toBe(false)
  })

  it('P28: a popularity sketch follows the values, its width in a longer header', () => {
    for (const [layout, magic] of [
      [{ ...small, popularityBuckets: 5 }, 'PRU3'],
      [{ ...small, tableSketch: true, popularityBuckets: 5 }, 'PRS3'],
    ] as const) {
      const original = update(layout)
      const bytes = encodeUpdate(original)
      expect(String.fromCharCode(...bytes.subarray(0, 4))).toBe(magic)
      expect(bytes.length).toBe(updateByteLength(small) + 4 + 2 * 5)
      const decoded = decodeUpdate(bytes)
      expect(decoded.layout).toEqual(layout)
      expect(Array.from(decoded.popularity!)).toEqual(Array.from(original.popularity!))
      expect(Array.from(decoded.values)).toEqual(
        Array.from(original.values, (v) => decodeFloat16(encodeFloat16(v))),
      )
      // P13 compares layouts: another width, or none, is another layout.
      expect(sameLayout(decoded.layout, { ...layout, popularityBuckets: 6 })).toBe(false)
      expect(sameLayout(decoded.layout, { ...layout, popularityBuckets: undefined })).toBe(false)
    }
    // DIGINETICA's layout with the default 1,024 buckets still fits 64 KB.
    const withPopularity = { ...diginetica, popularityBuckets: 1024 }
    expect(encodeUpdate(update(withPopularity)).length).toBe(64_872)
    expect(updateByteLength(withPopularity)).toBeLessThanOrEqual(64 * 1024)
  })

  it('P28: refuses a sketch of the wrong width, non-zero padding, NaN counts', () => {
    const layout = { ...small, popularityBuckets: 5 }
    expect(codeOf(() => encodeUpdate({ ...update(layout), popularity: new Float32Array(4) }))).toBe(
      'E_UPDATE_LENGTH',
    )
    expect(codeOf(() => encodeUpdate({ ...update(small), popularity: new Float32Array(2) }))).toBe(
      'E_UPDATE_LENGTH',
    )
    const padded = encodeUpdate(update(layout))
    padded[51] = 1
    expect(codeOf(() => decodeUpdate(reseal(padded)))).toBe('E_UPDATE_HEADER')
    const none = encodeUpdate(update(layout))
    new DataView(none.buffer).setUint16(48, 0, true)
    expect(codeOf(() => decodeUpdate(reseal(none)))).toBe('E_UPDATE_HEADER')
    const nan = encodeUpdate(update(layout))
    new DataView(nan.buffer).setUint16(nan.length - 4 - 2, 0x7e00, true) // the last bucket
    expect(codeOf(() => decodeUpdate(reseal(nan)))).toBe('E_UPDATE_NONFINITE')
    // A body cut back to the old header's length is not read as one.
    expect(codeOf(() => decodeUpdate(encodeUpdate(update(layout)).subarray(0, 50)))).toBe(
      'E_UPDATE_LENGTH',
    )
  })

  it('P8/P9: the same size whatever the values and their zeros, under 64 KB for DIGINETICA', () => {
    const dense = encodeUpdate(update(diginetica))
    const sparse = encodeUpdate(update(diginetica, (i) => (i % 997 === 0 ? 0.01 : 0)))
    expect(dense.length).toBe(62_820)
    expect(sparse.length).toBe(dense.length)
    expect(updateByteLength(diginetica)).toBe(62_820)
    expect(dense.length).toBeLessThanOrEqual(64 * 1024)
  })

  it('P10: refuses a body one byte short or long, before reading it', () => {
    const bytes = encodeUpdate(update(small))
    expect(codeOf(() => decodeUpdate(bytes.subarray(0, -1)))).toBe('E_UPDATE_LENGTH')
    const longer = new Uint8Array(bytes.length + 1)
    longer.set(bytes)
    expect(codeOf(() => decodeUpdate(longer))).toBe('E_UPDATE_LENGTH')
    expect(codeOf(() => decodeUpdate(new Uint8Array(10)))).toBe('E_UPDATE_LENGTH')
    expect(codeOf(() => decodeUpdate('PRU1' as unknown as Uint8Array))).toBe('E_UPDATE_LENGTH')
  })

  it('P10: a header declaring a huge layout is refused by length, allocating nothing', () => {
    const bytes = encodeUpdate(update(small))
    new DataView(bytes.buffer).setUint32(16, 0xffffffff, true)
    const error = (() => {
      try {
        decodeUpdate(reseal(bytes))
      } catch (e) {
        return e as UpdateFormatError
      }
    })()
    expect(error?.code).toBe('E_UPDATE_LENGTH')
    expect(error?.message).toContain('D=4294967295')
  })

  it('P10: refuses another magic, an altered value and out-of-bounds header fields', () => {
    const bytes = () => encodeUpdate(update(small))
    const magic = bytes()
    magic[3] = '1'.charCodeAt(0) // the format before P27
    expect(codeOf(() => decodeUpdate(magic))).toBe('E_UPDATE_MAGIC')
    const altered = bytes()
    altered[53] = altered[53]! ^ 0x01
    expect(codeOf(() => decodeUpdate(altered))).toBe('E_UPDATE_CHECKSUM')
    for (const [offset, value] of [
      [4, 0], // base version 0
      [8, 0], // no examples
      [8, 1_000_001], // too many examples
    ] as const) {
      const b = bytes()
      new DataView(b.buffer).setUint32(offset, value, true)
      expect(
        codeOf(() => decodeUpdate(reseal(b))),
        `offset ${offset} = ${value}`,
      ).toBe('E_UPDATE_HEADER')
    }
  })

  it('P27: refuses a score that no full ranking could give', () => {
    const impossible = [
      { cases: 101, hits20: 0, reciprocalRank20: 0 }, // more cases than a device scores
      { cases: 3, hits20: 4, reciprocalRank20: 1 }, // more hits than cases
      { cases: 5, hits20: 2, reciprocalRank20: 2.5 }, // 1/rank above 1
      { cases: 5, hits20: 2, reciprocalRank20: 0.05 }, // 1/rank below 1/20
      { cases: 5, hits20: 0, reciprocalRank20: Number.NaN },
    ]
    for (const score of impossible) {
      expect(
        codeOf(() => encodeUpdate({ ...update(small), score })),
        JSON.stringify(score),
      ).toBe('E_UPDATE_HEADER')
      // And the same fields written into a valid body by hand.
      const b = encodeUpdate(update(small))
      const view = new DataView(b.buffer)
      view.setUint16(40, score.cases, true)
      view.setUint16(42, score.hits20, true)
      view.setFloat32(44, score.reciprocalRank20, true)
      expect(
        codeOf(() => decodeUpdate(reseal(b))),
        JSON.stringify(score),
      ).toBe('E_UPDATE_HEADER')
    }
    const unscored = encodeUpdate({ ...update(small), score: NO_SCORE })
    expect(decodeUpdate(unscored).score).toEqual(NO_SCORE)
  })

  it('P10: refuses NaN and infinite values, and will not encode what float16 cannot hold', () => {
    for (const bits of [0x7c00, 0xfc00, 0x7e00]) {
      const b = encodeUpdate(update(small))
      new DataView(b.buffer).setUint16(48 + 2 * 5, bits, true)
      expect(codeOf(() => decodeUpdate(reseal(b)))).toBe('E_UPDATE_NONFINITE')
    }
    expect(codeOf(() => encodeUpdate(update(small, () => Number.NaN)))).toBe('E_UPDATE_NONFINITE')
    expect(codeOf(() => encodeUpdate(update(small, () => 70_000)))).toBe('E_UPDATE_NONFINITE')
    expect(codeOf(() => encodeUpdate({ ...update(small), values: new Float32Array(3) }))).toBe(
      'E_UPDATE_LENGTH',
    )
    expect(
      codeOf(() => encodeUpdate({ ...update(small), idempotencyKey: new Uint8Array(8) })),
    ).toBe('E_UPDATE_HEADER')
  })

  it('fuzz: 3,000 damaged bodies decode to a valid update or a coded refusal, nothing else', () => {
    const random = createRandom(2026)
    const valids = [
      encodeUpdate(update(small)),
      encodeUpdate(update({ ...small, popularityBuckets: 7 })),
    ]
    const outcomes = new Map<string, number>()
    for (let round = 0; round < 3000; round++) {
      let bytes = valids[round % 8 < 4 ? 0 : 1]!.slice()
      const kind = round % 4
      if (kind === 0) bytes = bytes.subarray(0, Math.floor(random() * bytes.length))
      if (kind === 1) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256)
      if (kind === 2) {
        bytes[Math.floor(random() * 52)] = Math.floor(random() * 256)
        reseal(bytes)
      }
      if (kind === 3)
        bytes = Uint8Array.from({ length: Math.floor(random() * 200) }, () => random() * 256)
      let outcome: string
      try {
        const decoded = decodeUpdate(bytes)
        // Whatever decodes is a well-formed update: it re-encodes to the same bytes.
        expect(encodeUpdate(decoded)).toEqual(bytes)
        outcome = 'ok'
      } catch (error) {
        expect(error).toBeInstanceOf(UpdateFormatError)
        outcome = (error as UpdateFormatError).code
      }
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
    }
    // The damage reached every check.
    for (const code of [
      'E_UPDATE_LENGTH',
      'E_UPDATE_MAGIC',
      'E_UPDATE_CHECKSUM',
      'E_UPDATE_HEADER',
    ]) {
      expect(outcomes.get(code), code).toBeGreaterThan(0)
    }
  })

  it('measures the L2 norm the server checks against the clip bound (P11)', () => {
    expect(updateNorm(Float32Array.of(3, 0, -4))).toBe(5)
  })
})
