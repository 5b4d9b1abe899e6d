// The few best of many scores, without sorting them all: used by recall over the whole catalogue
// and by the neighbour index over the clusters it probes.

/**
 * Indices of the `count` highest scores, best first; ties go to the lower index so the result is
 * deterministic. A bounded min-heap over the read-back scores: tf.topk is slow on WebGPU and
 * sorting 43k floats to keep 100 wastes most of the work. NaN never qualifies.
 */
export function selectTopIndices(
  scores: ArrayLike<number>,
  count: number,
  skip: ReadonlySet<number> = new Set(),
): number[] {
  if (count <= 0) return []
  const heap: number[] = [] // indices; heap[0] is the worst kept
  const worse = (a: number, b: number) =>
    scores[a]! < scores[b]! || (scores[a] === scores[b] && a > b)
  const swap = (i: number, j: number) => {
    const t = heap[i]!
    heap[i] = heap[j]!
    heap[j] = t
  }
  // Most of 43k scores lose to the worst kept one: one comparison, then the next score.
  let floor = -Infinity
  for (let index = 0; index < scores.length; index++) {
    const score = scores[index]!
    // `>=` is false for NaN; an equal score can only lose its tie (higher index).
    if (!(score >= floor) || (heap.length === count && score === floor)) continue
    if (skip.has(index)) continue
    if (heap.length < count) {
      heap.push(index)
      for (let i = heap.length - 1; i > 0;) {
        const parent = (i - 1) >> 1
        if (!worse(heap[i]!, heap[parent]!)) break
        swap(i, parent)
        i = parent
      }
    } else {
      heap[0] = index
      for (let i = 0; ;) {
        const l = 2 * i + 1
        const r = l + 1
        let w = i
        if (l < heap.length && worse(heap[l]!, heap[w]!)) w = l
        if (r < heap.length && worse(heap[r]!, heap[w]!)) w = r
        if (w === i) break
        swap(i, w)
        i = w
      }
    }
    if (heap.length === count) floor = scores[heap[0]!]!
  }
  return heap.sort((a, b) => (worse(a, b) ? 1 : worse(b, a) ? -1 : 0))
}
