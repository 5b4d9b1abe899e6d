import { countItems } from '../../data/examples'
import type { SessionScorer } from '../../../model/eval/scorer'
import { createScoreRows } from './score-rows'

/**
 * S-POP: items of the prefix by how often they occur in it, then everything by training
 * popularity. Score = countInPrefix + popularity / (maxCount + 1): the popularity term stays
 * below 1, so one more in-prefix click always outweighs it and only breaks ties.
 */
export function createSPopScorer(train: Int32Array[], nItems: number): SessionScorer {
  const counts = countItems(train, nItems)
  let maxCount = 0
  for (const count of counts) maxCount = Math.max(maxCount, count)
  const popularity = new Float32Array(nItems)
  for (let i = 0; i < nItems; i++) popularity[i] = counts[i] / (maxCount + 1)
  const rows = createScoreRows(nItems)
  return {
    name: 'S-POP',
    scoreBatch(prefixes) {
      const out = rows(prefixes.length)
      for (let b = 0; b < prefixes.length; b++) {
        const offset = b * nItems
        out.set(popularity, offset)
        for (const item of prefixes[b]) out[offset + item] += 1
      }
      return out
    },
  }
}
