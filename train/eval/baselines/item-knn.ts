// Item-KNN as in the GRU4Rec authors' baseline code (session-rec `iknn`): item-to-item
// co-occurrence in training sessions, scored from the last item of the prefix only.

import { countItems } from '../../data/examples'
import { topKIndices } from '../../../model/eval/metrics'
import type { SessionScorer } from '../../../model/eval/scorer'
import { createScoreRows } from './score-rows'
import { indexSessions } from './session-index'

export interface ItemKnnOptions {
  /** Added to both supports; damps similarities of rarely seen items. session-rec: 20. */
  lambda?: number
  /** Exponent split between the two supports (0.5 = cosine-like). session-rec: 0.5. */
  alpha?: number
  /** Neighbours kept per item; only the top 20 can matter for @20 metrics. session-rec: 100. */
  neighbours?: number
}

/**
 * sim(i, j) = cooc(i, j) / ((supp(i) + lambda)^alpha · (supp(j) + lambda)^(1 - alpha)), where
 * supp counts clicks and cooc sums n_i(s) · n_j(s) over sessions s, exactly as session-rec
 * counts (repeated clicks weigh more). With lambda = 0 and alpha = 0.5 it is cosine similarity.
 * Neighbour lists are stored sparse (CSR), never as a dense nItems² matrix.
 */
export function createItemKnnScorer(
  train: Int32Array[],
  nItems: number,
  options: ItemKnnOptions = {},
): SessionScorer {
  const { lambda = 20, alpha = 0.5, neighbours = 100 } = options
  const graph = buildNeighbourLists(train, nItems, lambda, alpha, neighbours)
  const rows = createScoreRows(nItems)
  return {
    name: 'Item-KNN',
    scoreBatch(prefixes) {
      const out = rows(prefixes.length)
      out.fill(0)
      for (let b = 0; b < prefixes.length; b++) {
        const prefix = prefixes[b]
        if (prefix.length === 0) continue
        const last = prefix[prefix.length - 1]
        const offset = b * nItems
        for (let e = graph.offsets[last]; e < graph.offsets[last + 1]; e++) {
          out[offset + graph.items[e]] = graph.sims[e]
        }
      }
      return out
    },
  }
}

interface NeighbourLists {
  /** Item i's neighbours are items[offsets[i] .. offsets[i + 1]), best first. */
  offsets: Int32Array
  items: Int32Array
  sims: Float32Array
}

function buildNeighbourLists(
  train: Int32Array[],
  nItems: number,
  lambda: number,
  alpha: number,
  keep: number,
): NeighbourLists {
  const support = countItems(train, nItems)
  const { sessions, postings } = indexSessions(train, nItems)

  const cooc = new Float64Array(nItems)
  const touched = new Int32Array(nItems)
  const compact = new Float32Array(nItems)
  const offsets = new Int32Array(nItems + 1)
  const items: number[] = []
  const sims: number[] = []
  for (let i = 0; i < nItems; i++) {
    let nTouched = 0
    for (let p = postings.offsets[i]; p < postings.offsets[i + 1]; p++) {
      const s = postings.sessions[p]
      const ni = postings.clicks[p]
      for (let e = sessions.offsets[s]; e < sessions.offsets[s + 1]; e++) {
        const j = sessions.items[e]
        if (j === i) continue
        if (cooc[j] === 0) touched[nTouched++] = j
        cooc[j] += ni * sessions.clicks[e]
      }
    }
    // Sorting the touched items makes ties in the selection go to the lower item index.
    const candidates = touched.subarray(0, nTouched).sort()
    const norm = Math.pow(support[i] + lambda, alpha)
    for (let c = 0; c < nTouched; c++) {
      const j = candidates[c]
      compact[c] = cooc[j] / (norm * Math.pow(support[j] + lambda, 1 - alpha))
      cooc[j] = 0
    }
    for (const c of topKIndices(compact, 0, nTouched, keep)) {
      items.push(candidates[c])
      sims.push(compact[c])
    }
    offsets[i + 1] = items.length
  }
  return { offsets, items: Int32Array.from(items), sims: Float32Array.from(sims) }
}
