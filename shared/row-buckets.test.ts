import { describe, expect, it } from 'vitest'
import { createRandom } from './random'
import { bucketsOf, buildBucketLayout, placeRows, positionInBucket } from './row-buckets'

const params = { nItems: 43_097, buckets: 48, hashes: 3, seed: 5 }

describe('row buckets', () => {
  const layout = buildBucketLayout(params)

  it('put every row in each of its buckets once, ascending, findable by binary search', () => {
    let memberships = 0
    for (let row = 0; row < params.nItems; row++) {
      const buckets = bucketsOf(row, params)
      memberships += buckets.length
      for (const b of buckets) {
        const at = positionInBucket(layout, b, row)
        expect(at).toBeGreaterThanOrEqual(0)
        expect(layout.rows[layout.offsets[b]! + at]).toBe(row)
      }
    }
    expect(layout.rows.length).toBe(memberships)
    for (let b = 0; b < params.buckets; b++) {
      const bucket = layout.rows.subarray(layout.offsets[b], layout.offsets[b + 1])
      for (let i = 1; i < bucket.length; i++) expect(bucket[i]!).toBeGreaterThan(bucket[i - 1]!)
      expect(bucket.length).toBeLessThanOrEqual(2 ** layout.domainBits)
    }
    // About hashes × nItems / B rows per bucket: DIGINETICA's buckets fit a 12-bit domain.
    expect(layout.domainBits).toBe(12)
    expect(positionInBucket(layout, 0, -1)).toBe(-1)
  })

  it('place a full update of 32 rows in 48 buckets, one per bucket, each in one of its own', () => {
    const random = createRandom(9)
    let dropped = 0
    for (let trial = 0; trial < 2000; trial++) {
      const rows = new Set<number>()
      while (rows.size < 32) rows.add(Math.floor(random() * params.nItems))
      const placed = placeRows([...rows], params, random)
      dropped += placed.dropped.length
      const held = [...placed.bucketRow].filter((row) => row >= 0)
      // Every row is placed or dropped, none twice, none invented.
      expect(new Set([...held, ...placed.dropped])).toEqual(rows)
      expect(held.length + placed.dropped.length).toBe(32)
      placed.bucketRow.forEach((row, b) => {
        if (row >= 0) expect(bucketsOf(row, params)).toContain(b)
      })
    }
    // At 2/3 load with three hashes cuckoo hashing essentially never fails.
    expect(dropped).toBe(0)
  })

  it('drop, rather than loop forever, when rows outnumber buckets', () => {
    const placed = placeRows([1, 2, 3, 4, 5], { ...params, buckets: 3 }, createRandom(1), 50)
    expect(placed.dropped.length).toBe(2)
    expect([...placed.bucketRow].every((row) => row >= 0)).toBe(true)
  })
})
