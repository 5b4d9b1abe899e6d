import { describe, expect, it } from 'vitest'
import { createRandom } from './random'
import {
  addContribution,
  applySparseSums,
  checkContribution,
  createSparseSums,
  denseWindowStart,
  fromFixed,
  toFixed,
  type SparseContribution,
  type SparseLayout,
} from './sparse-update'

const shape = { denseSize: 10, nItems: 6, embedDim: 2 }
const layout: SparseLayout = { maxRows: 3, embedDim: 2, denseCoordinates: 4, negativeRows: 1 }
const negativeRows = Int32Array.of(5)

function contribution(
  rows: number[],
  rowValues: number[],
  denseStart: number,
  dense: number[],
  negatives: number[] = [0, 0],
): SparseContribution {
  return {
    rows: Int32Array.from(rows),
    rowValues: Int32Array.from(rowValues, toFixed),
    denseStart,
    dense: Int32Array.from(dense, toFixed),
    negatives: Int32Array.from(negatives, toFixed),
  }
}

describe('fixed point', () => {
  it('rounds to the nearest 2^-16 and back', () => {
    for (const x of [0, 1, -1, 0.123456, -3.75, 1000.5]) {
      expect(Math.abs(fromFixed(toFixed(x)) - x)).toBeLessThanOrEqual(2 ** -17)
    }
  })
})

describe('sparse sums', () => {
  it('count each row once per contribution that trained it and step it by its own mean', () => {
    const sums = createSparseSums(shape, negativeRows)
    addContribution(sums, contribution([1, 3], [1, 2, 0.5, 0.5], 8, [1, 1, 1, 1]), 2)
    addContribution(sums, contribution([1], [3, 4], 0, [1, 1, 1, 1], [-1, 2]), 2)
    expect(Array.from(sums.counts)).toEqual([0, 2, 0, 1, 0, 0])
    // The windows [8, 9, 0, 1] and [0, 1, 2, 3] wrap around and overlap on 0 and 1.
    expect(Array.from(sums.denseCounts)).toEqual([2, 2, 1, 1, 0, 0, 0, 0, 1, 1])

    const weights = { dense: new Float32Array(10).fill(1), table: new Float32Array(12).fill(1) }
    const next = applySparseSums(weights, sums, { tableRate: 1, denseRate: 0.5 }, 2)
    // Row 1: the mean of (1, 2) and (3, 4), not the sum and not a 1/2 of the buffer's sum.
    expect(Array.from(next.table.subarray(2, 4))).toEqual([3, 4])
    expect(Array.from(next.table.subarray(6, 8))).toEqual([1.5, 1.5])
    // Rows nobody trained keep their weights exactly.
    expect(Array.from(next.table.subarray(0, 2))).toEqual([1, 1])
    // The public negative (row 5) moves by its mean over both updates: (−1 + 0)/2, (2 + 0)/2.
    expect(Array.from(next.table.subarray(10, 12))).toEqual([1 + 0.5 * -0.5, 1 + 0.5 * 1])
    expect(next.dense[0]).toBe(1.5)
    expect(next.dense[4]).toBe(1)
    expect(next.dense[9]).toBe(1.5)
    // The inputs are left as they were.
    expect(weights.table.every((v) => v === 1)).toBe(true)
  })

  it('of two random shares per value equal the plaintext sums bit for bit (Z/2^32)', () => {
    const random = createRandom(3)
    const u32 = () => Math.floor(random() * 2 ** 32) | 0
    const plain = createSparseSums(shape, negativeRows)
    const leader = createSparseSums(shape, negativeRows)
    const helper = createSparseSums(shape, negativeRows)
    for (let n = 0; n < 50; n++) {
      const c = contribution(
        [n % 5, (n + 2) % 5],
        Array.from({ length: 4 }, () => (random() - 0.5) * 60),
        n % 10,
        Array.from({ length: 4 }, () => (random() - 0.5) * 60),
        Array.from({ length: 2 }, () => (random() - 0.5) * 60),
      )
      addContribution(plain, c, 2)
      const mask = (values: Int32Array) => Int32Array.from(values, u32)
      const share = {
        rowValues: mask(c.rowValues),
        dense: mask(c.dense),
        negatives: mask(c.negatives),
      }
      const minus = (a: Int32Array, b: Int32Array) => Int32Array.from(a, (v, i) => (v - b[i]!) | 0)
      addContribution(leader, { ...c, ...share }, 2)
      addContribution(
        helper,
        {
          ...c,
          rowValues: minus(c.rowValues, share.rowValues),
          dense: minus(c.dense, share.dense),
          negatives: minus(c.negatives, share.negatives),
        },
        2,
      )
    }
    const combined = Int32Array.from(leader.table, (v, i) => (v + helper.table[i]!) | 0)
    expect(combined).toEqual(plain.table)
    expect(Int32Array.from(leader.dense, (v, i) => (v + helper.dense[i]!) | 0)).toEqual(plain.dense)
    expect(Int32Array.from(leader.negatives, (v, i) => (v + helper.negatives[i]!) | 0)).toEqual(
      plain.negatives,
    )
    // And neither share alone is the sum.
    expect(leader.table).not.toEqual(plain.table)
  })

  it('reject a contribution that does not fit the layout, naming what is wrong', () => {
    const ok = contribution([1, 2], [0, 0, 0, 0], 0, [0, 0, 0, 0])
    expect(() => checkContribution(ok, layout, shape)).not.toThrow()
    expect(() =>
      checkContribution(contribution([1, 1], [0, 0, 0, 0], 0, [0, 0, 0, 0]), layout, shape),
    ).toThrow(/distinct rows, got 1 twice/)
    expect(() =>
      checkContribution(contribution([6], [0, 0], 0, [0, 0, 0, 0]), layout, shape),
    ).toThrow(/rows in \[0, 6\), got 6/)
    expect(() =>
      checkContribution(
        contribution([0, 1, 2, 3], Array(8).fill(0), 0, [0, 0, 0, 0]),
        layout,
        shape,
      ),
    ).toThrow(/at most 3 rows, got 4/)
    expect(() => checkContribution(contribution([1], [0], 0, [0, 0, 0, 0]), layout, shape)).toThrow(
      /2 row values, got 1/,
    )
    expect(() => checkContribution(contribution([1], [0, 0], 0, [0]), layout, shape)).toThrow(
      /4 dense values, got 1/,
    )
    expect(() =>
      checkContribution(contribution([1], [0, 0], 10, [0, 0, 0, 0]), layout, shape),
    ).toThrow(/denseStart in \[0, 10\), got 10/)
    expect(() =>
      checkContribution(contribution([1], [0, 0], 0, [0, 0, 0, 0], [0]), layout, shape),
    ).toThrow(/2 negative values, got 1/)
  })
})

describe('denseWindowStart', () => {
  it('is (s·D) mod P without losing precision for 32-bit slices', () => {
    expect(denseWindowStart(3, layout, shape)).toBe(2)
    const big = { ...shape, denseSize: 100_700 }
    const wide = { ...layout, denseCoordinates: 8192 }
    expect(denseWindowStart(0xffffffff, wide, big)).toBe(Number((0xffffffffn * 8192n) % 100_700n))
  })
})
