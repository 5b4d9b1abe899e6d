// Session-based KNN (session-rec `sknn`, Jannach & Ludewig 2017): find the training sessions most
// similar to the current prefix among the most recent ones sharing an item with it, and score
// each item by the summed similarity of the neighbours that contain it.

import { topKIndices } from '../../../model/eval/metrics'
import type { SessionScorer } from '../../../model/eval/scorer'
import { createScoreRows } from './score-rows'
import { indexSessions } from './session-index'

export interface SKnnOptions {
  /** Neighbour sessions kept. session-rec's DIGINETICA configs: 100. */
  k?: number
  /** Candidate sessions: the most recent ones sharing an item with the prefix. session-rec: 500. */
  sampleSize?: number
  /** Between the binary item sets of the prefix and a training session. */
  similarity?: 'cosine' | 'jaccard'
}

/**
 * Training sessions must be in time order: "most recent" means the highest session index.
 * Items of the prefix are scored like any other (session-rec does not remove them either).
 */
export function createSKnnScorer(
  train: Int32Array[],
  nItems: number,
  options: SKnnOptions = {},
): SessionScorer {
  const { k = 100, sampleSize = 500, similarity = 'cosine' } = options
  const { sessions, postings } = indexSessions(train, nItems)
  const rows = createScoreRows(nItems)

  // Per-prefix scratch, reused across calls; stamps avoid clearing nItems-long arrays per case.
  const prefixStamp = new Int32Array(nItems).fill(-1)
  let stamp = 0
  const distinct = new Int32Array(nItems)
  const cursors = new Int32Array(nItems)
  const candidates = new Int32Array(sampleSize)
  const sims = new Float32Array(sampleSize)

  /** Fills candidates[0 .. n) with the most recent sessions holding any of the items, newest first. */
  function sampleCandidates(nDistinct: number): number {
    for (let q = 0; q < nDistinct; q++) cursors[q] = postings.offsets[distinct[q] + 1] - 1
    let n = 0
    // A merge from the tails of the ascending posting lists; a session on several lists is the
    // head of all of them at once, so advancing every list at the maximum removes duplicates.
    while (n < sampleSize) {
      let newest = -1
      for (let q = 0; q < nDistinct; q++) {
        const c = cursors[q]
        if (c >= postings.offsets[distinct[q]] && postings.sessions[c] > newest) {
          newest = postings.sessions[c]
        }
      }
      if (newest < 0) break
      candidates[n++] = newest
      for (let q = 0; q < nDistinct; q++) {
        const c = cursors[q]
        if (c >= postings.offsets[distinct[q]] && postings.sessions[c] === newest) cursors[q]--
      }
    }
    return n
  }

  function scorePrefix(prefix: Int32Array, out: Float32Array, offset: number): void {
    stamp++
    let nDistinct = 0
    for (const item of prefix) {
      if (prefixStamp[item] !== stamp) {
        prefixStamp[item] = stamp
        distinct[nDistinct++] = item
      }
    }
    const nCandidates = sampleCandidates(nDistinct)
    for (let c = 0; c < nCandidates; c++) {
      const s = candidates[c]
      const start = sessions.offsets[s]
      const size = sessions.offsets[s + 1] - start
      let overlap = 0
      for (let e = start; e < start + size; e++) {
        if (prefixStamp[sessions.items[e]] === stamp) overlap++
      }
      sims[c] =
        similarity === 'cosine'
          ? overlap / Math.sqrt(size * nDistinct)
          : overlap / (size + nDistinct - overlap)
    }
    // Candidates are newest first, so equal similarities keep the more recent sessions.
    for (const c of topKIndices(sims, 0, nCandidates, k)) {
      const s = candidates[c]
      for (let e = sessions.offsets[s]; e < sessions.offsets[s + 1]; e++) {
        out[offset + sessions.items[e]] += sims[c]
      }
    }
  }

  return {
    name: 'S-KNN',
    scoreBatch(prefixes) {
      const out = rows(prefixes.length)
      out.fill(0)
      for (let b = 0; b < prefixes.length; b++) scorePrefix(prefixes[b], out, b * nItems)
      return out
    },
  }
}
