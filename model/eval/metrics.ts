// Ranking metrics for the next-item protocol: one target per case, full ranking over the
// catalogue; MAP@K counts every item the session goes on to as relevant (below). Everything here runs once per case on rows of ~43k scores, so the loops are kept
// flat and allocation-free apart from the small top-K result.

/** Size of the lists that coverage and popularity share are measured on. */
export const LIST_K = 20

export type RankMetricName = `${'recall' | 'mrr' | 'ndcg' | 'map'}@${number}`

export interface MetricsResult {
  cases: number
  /**
   * Fractions in [0, 1]: recall@K (hit rate), mrr@K (0 beyond K), ndcg@K (IDCG = 1) of the
   * target; map@K, the mean over cases of AP@K = (1 / |R|) · Σ_{i ≤ K, list[i] ∈ R} precision@i,
   * R the distinct items the session goes on to from the target on (as session-rec's MAP, which
   * also counts every later item; with R = {target} it equals mrr@K).
   */
  metrics: Record<RankMetricName, number>
  /** Distinct items shown in any top-20 list, over nItems. */
  'coverage@20': number
  /** Share of all top-20 slots taken by the popular items. */
  'popShare@20': number
}

export interface MetricsAccumulator {
  /**
   * One case: the target's rank, the best items (at least the largest K), and the items the
   * session goes on to, target first (only the target when absent).
   */
  add(rank: number, topK: Int32Array, rest?: ArrayLike<number>): void
  /** A case no scorer could rank (its prefix holds no known item): a miss, with no list. */
  addMiss(): void
  result(): MetricsResult
}

export interface MetricsOptions {
  ks?: readonly number[]
  nItems: number
  /** 1 for the popular items (see `popularMask`), 0 elsewhere; length nItems. */
  popularItems: Uint8Array
}

/**
 * 1-based rank of `target` in the row `scores[offset .. offset + nItems)`: 1 + the number of other
 * items scoring >= the target. Ties count against the scorer, so a constant row ranks last;
 * a NaN target ranks last and NaN elsewhere never beats the target.
 */
export function rankOfTarget(
  scores: Float32Array,
  offset: number,
  nItems: number,
  target: number,
): number {
  const t = scores[offset + target]
  if (t !== t) return nItems
  // The target itself passes the test, which supplies the "1 +". Adding the comparison as a
  // number instead of branching on it runs ~3× faster on rows where the outcome is random.
  let rank = 0
  for (let j = offset, end = offset + nItems; j < end; j++) rank += +(scores[j] >= t)
  return rank
}

/**
 * Indices of the k best items of the row, best first; ties go to the lower index and NaN ranks
 * below every number. One pass with a sorted buffer of k: once it is full (and NaN-free), almost
 * every item fails a single comparison with the current k-th score.
 */
export function topKIndices(
  scores: Float32Array,
  offset: number,
  nItems: number,
  k: number,
): Int32Array {
  const size = Math.max(0, Math.min(k, nItems))
  const idx = new Int32Array(size)
  const val = new Float64Array(size)
  if (size === 0) return idx
  const end = offset + nItems
  let count = 0
  let j = offset
  // Filling, or a NaN still in the buffer: the full comparison is needed. Rare after k items.
  for (; j < end && (count < size || val[size - 1] !== val[size - 1]); j++) {
    const s = scores[j]
    let p: number
    if (count < size) p = count++
    else if (s === s) p = size - 1
    else continue
    for (; p > 0; p--) {
      const b = val[p - 1]
      if (!(b < s || (b !== b && s === s))) break
      val[p] = b
      idx[p] = idx[p - 1]
    }
    val[p] = s
    idx[p] = j - offset
  }
  // The buffer is full of numbers: NaN fails `s > worst`, and an equal score never displaces an
  // entry because items arrive in index order.
  let worst = val[size - 1]
  for (; j < end; j++) {
    const s = scores[j]
    if (s > worst) {
      let p = size - 1
      for (; p > 0 && val[p - 1] < s; p--) {
        val[p] = val[p - 1]
        idx[p] = idx[p - 1]
      }
      val[p] = s
      idx[p] = j - offset
      worst = val[size - 1]
    }
  }
  return idx
}

/**
 * 1 for the ceil(fraction · n) items with the highest counts (ties to the lower index), 0
 * elsewhere. Items never seen are never popular, even when fewer than that many were seen.
 */
export function popularMask(counts: Int32Array, fraction = 0.01): Uint8Array {
  if (!(fraction >= 0 && fraction <= 1)) {
    throw new RangeError(`expected a popular fraction in [0, 1], got ${fraction}`)
  }
  const n = counts.length
  const order = Array.from({ length: n }, (_, i) => i).sort(
    (a, b) => counts[b] - counts[a] || a - b,
  )
  const mask = new Uint8Array(n)
  const take = Math.ceil(fraction * n)
  for (let r = 0; r < take && counts[order[r]] > 0; r++) mask[order[r]] = 1
  return mask
}

export function createMetricsAccumulator(options: MetricsOptions): MetricsAccumulator {
  const ks = [...(options.ks ?? [5, 10, 20])]
  const { nItems, popularItems } = options
  if (popularItems.length !== nItems) {
    throw new RangeError(`expected popularItems of length ${nItems}, got ${popularItems.length}`)
  }
  for (const k of ks) {
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`expected cut-offs K ≥ 1, got ${k}`)
  }
  const hits = new Float64Array(ks.length)
  const reciprocal = new Float64Array(ks.length)
  const gain = new Float64Array(ks.length)
  const precisionSums = new Float64Array(ks.length)
  const maxK = Math.max(...ks)
  const shown = new Uint8Array(nItems)
  let distinctShown = 0
  let slots = 0
  let popularSlots = 0
  let cases = 0

  return {
    addMiss() {
      cases++
    },
    add(rank, topK, rest) {
      cases++
      const rr = 1 / rank
      const dcg = 1 / Math.log2(rank + 1)
      for (let c = 0; c < ks.length; c++) {
        if (rank <= ks[c]) {
          hits[c]++
          reciprocal[c] += rr
          gain[c] += dcg
        }
      }
      if (rest === undefined || rest.length <= 1) {
        // One relevant item: AP@K is its reciprocal rank.
        for (let c = 0; c < ks.length; c++) if (rank <= ks[c]) precisionSums[c] += rr
      } else {
        if (topK.length < Math.min(maxK, nItems)) {
          throw new RangeError(
            `expected the best ${maxK} items for map@${maxK}, got ${topK.length}`,
          )
        }
        const relevant = new Set<number>()
        for (let i = 0; i < rest.length; i++) relevant.add(rest[i])
        let found = 0
        let sum = 0
        let c = 0
        const ordered = [...ks.keys()].sort((a, b) => ks[a] - ks[b])
        for (let i = 0; i < Math.min(maxK, topK.length) && c < ordered.length; i++) {
          if (relevant.has(topK[i])) sum += ++found / (i + 1)
          while (c < ordered.length && ks[ordered[c]] === i + 1) {
            precisionSums[ordered[c++]] += sum / relevant.size
          }
        }
        for (; c < ordered.length; c++) precisionSums[ordered[c]] += sum / relevant.size
      }
      const listLength = Math.min(LIST_K, topK.length)
      for (let r = 0; r < listLength; r++) {
        const item = topK[r]
        if (shown[item] === 0) {
          shown[item] = 1
          distinctShown++
        }
        popularSlots += popularItems[item]
      }
      slots += listLength
    },
    result() {
      const metrics = {} as Record<RankMetricName, number>
      // An empty run reports zeros rather than NaN, so tables and JSON stay well-formed.
      const perCase = cases === 0 ? 0 : 1 / cases
      ks.forEach((k, c) => {
        metrics[`recall@${k}`] = hits[c] * perCase
        metrics[`mrr@${k}`] = reciprocal[c] * perCase
        metrics[`ndcg@${k}`] = gain[c] * perCase
        metrics[`map@${k}`] = precisionSums[c] * perCase
      })
      return {
        cases,
        metrics,
        'coverage@20': nItems === 0 ? 0 : distinctShown / nItems,
        'popShare@20': slots === 0 ? 0 : popularSlots / slots,
      }
    },
  }
}
