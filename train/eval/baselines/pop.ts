import { countItems } from '../../data/examples'
import type { SessionScorer } from '../../../model/eval/scorer'
import { createScoreRows } from './score-rows'

/** POP: every prefix gets the training click counts, the floor any recommender must beat. */
export function createPopScorer(train: Int32Array[], nItems: number): SessionScorer {
  const popularity = Float32Array.from(countItems(train, nItems))
  const rows = createScoreRows(nItems)
  return {
    name: 'POP',
    scoreBatch(prefixes) {
      const out = rows(prefixes.length)
      for (let b = 0; b < prefixes.length; b++) out.set(popularity, b * nItems)
      return out
    },
  }
}
