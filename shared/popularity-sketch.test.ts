import { describe, expect, it } from 'vitest'
import {
  addPopularityEstimate,
  popularityCell,
  POPULARITY_CLIP,
  sketchPopularity,
} from './popularity-sketch'
import { createRandom } from './random'

const norm = (values: Float32Array) => Math.hypot(...values)

describe('popularity sketch (PROTOCOL.md P28)', () => {
  it('counts an item once however often the device viewed it', () => {
    const once = sketchPopularity([Int32Array.from([3, 9])], 4, 64).values
    const often = sketchPopularity([Int32Array.from([3, 3, 9]), Int32Array.from([9, 3])], 4, 64)
    expect(Array.from(often.values)).toEqual(Array.from(once))
  })

  it('puts ±1 in each item’s cell and clips the whole report to norm 1', () => {
    const [bucket, sign] = popularityCell(2, 17, 32)
    const single = sketchPopularity([Int32Array.from([17, 17])], 2, 32)
    expect(single.values[bucket]).toBe(sign)
    expect(norm(single.values)).toBeCloseTo(1, 6)

    const many = sketchPopularity([Int32Array.from({ length: 40 }, (_, i) => i)], 2, 32)
    expect(many.norm).toBeGreaterThan(POPULARITY_CLIP)
    expect(norm(many.values)).toBeCloseTo(POPULARITY_CLIP, 5)
  })

  it('changes its cells with the seed (base version)', () => {
    const cells = Array.from({ length: 20 }, (_, seed) => popularityCell(seed, 5, 1024)[0])
    expect(new Set(cells).size).toBeGreaterThan(15)
  })

  it('summed over versions, estimates the counts; collisions average out', () => {
    // 8 buckets for 100 items: every version, about one item in eight shares item 5's bucket.
    // With one seed for all versions those items would read ≈ ±30 forever.
    const buckets = 8
    const random = createRandom(11)
    const versions = 400
    const estimate = new Float32Array(100)
    for (let version = 1; version <= versions; version++) {
      const sums = new Float64Array(buckets)
      for (let device = 0; device < 50; device++) {
        // 30 devices view item 5; 20 view one of items 0–49 other than 5. Items 50–99: nobody.
        const item = device < 30 ? 5 : [0, 1, 2, 3, 4, 6, 7, 8, 9][Math.floor(random() * 9)]!
        const { values } = sketchPopularity([Int32Array.of(item)], version, buckets)
        values.forEach((v, b) => (sums[b] += v))
      }
      addPopularityEstimate(estimate, sums, version)
    }
    const perVersion = Array.from(estimate, (e) => e / versions)
    expect(perVersion[5]).toBeGreaterThan(27)
    expect(perVersion[5]).toBeLessThan(33)
    const unviewed = perVersion.slice(50)
    expect(Math.max(...unviewed.map(Math.abs))).toBeLessThan(4)
  })
})
