import { describe, expect, it } from 'vitest'
import { buildCoVisitation, topNeighbours } from './co-visitation'

const sessions = [Int32Array.from([0, 1, 2, 3, 4]), Int32Array.from([1, 0, 1])]

function weightOf(graph: ReturnType<typeof buildCoVisitation>, a: number, b: number): number {
  for (let e = graph.offsets[a]!; e < graph.offsets[a + 1]!; e++) {
    if (graph.neighbours[e] === b) return graph.weights[e]!
  }
  return 0
}

describe('buildCoVisitation', () => {
  it('weighs pairs within the window by 1/distance, once per session at the closest distance', () => {
    const graph = buildCoVisitation(sessions, 6, 3)
    // (0,1): distance 1 in the first session, and 1 again (once, not twice) in the second.
    expect(weightOf(graph, 0, 1)).toBe(2)
    expect(weightOf(graph, 1, 0)).toBe(2)
    expect(weightOf(graph, 0, 2)).toBe(0.5)
    expect(weightOf(graph, 0, 3)).toBeCloseTo(1 / 3, 6)
    expect(weightOf(graph, 0, 4)).toBe(0) // four positions apart: outside the window
    expect(weightOf(graph, 1, 1)).toBe(0) // a repeated view is not a co-visit
    expect(Array.from(graph.neighbours.subarray(graph.offsets[2]!, graph.offsets[3]!))).toEqual([
      0, 1, 3, 4,
    ])
    expect(graph.offsets[6]! - graph.offsets[5]!).toBe(0) // item 5 never seen
  })

  it('lists the strongest neighbours first, lower index first on ties', () => {
    const graph = buildCoVisitation(sessions, 6, 3)
    expect(topNeighbours(graph, 0, 2)).toEqual([1, 2])
    expect(topNeighbours(graph, 2, 3)).toEqual([1, 3, 0])
    expect(topNeighbours(graph, 5, 20)).toEqual([])
  })

  it('narrows with the window and refuses out-of-range items', () => {
    const graph = buildCoVisitation(sessions, 6, 1)
    expect(topNeighbours(graph, 0, 10)).toEqual([1])
    expect(() => buildCoVisitation([Int32Array.from([0, 7])], 6)).toThrow(
      'expected item indices in 0..5, got 7',
    )
    expect(() => buildCoVisitation(sessions, 6, 0)).toThrow(/window of at least 1/)
  })
})
