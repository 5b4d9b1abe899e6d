import { beforeAll, describe, expect, it } from 'vitest'
import { MAX_SCORED_CASES } from '../../../shared/leader-upload'
import { evaluateScorer } from '../../../model/eval/evaluate'
import { createGruScorer } from '../../../model/eval/gru-scorer'
import { setNodeBackend } from '../../../model/node-backend'
import { expandPrefixes } from '../../../model/prefix-cases'
import { createRandom } from '../../../shared/random'
import { createGruModel, DEFAULT_GRU_CONFIG, type GruModel } from '../../../model/gru-model'
import { scoreCases } from './score-cases'

const config = { ...DEFAULT_GRU_CONFIG, nItems: 300, embedDim: 8, hiddenDim: 8, maxLen: 6 }
let model: GruModel

function sessionsOf(count: number, seed: number): Int32Array[] {
  const random = createRandom(seed)
  return Array.from({ length: count }, () =>
    Int32Array.from({ length: 2 + Math.floor(random() * 8) }, () =>
      // Mostly a small corner of the catalogue, so that some targets do rank in the top 20.
      Math.floor(random() * (random() < 0.7 ? 30 : config.nItems)),
    ),
  )
}

describe('scoring the downloaded model on the shopper’s own cases (PROTOCOL.md P27)', () => {
  beforeAll(async () => {
    await setNodeBackend('cpu')
    model = createGruModel(config, 7)
  })

  it('counts hits and reciprocal ranks exactly as the offline protocol ranks them', async () => {
    const sessions = sessionsOf(12, 1)
    const score = await scoreCases(model, sessions)
    const scorer = createGruScorer(model)
    const offline = await evaluateScorer(scorer, sessions, {
      nItems: config.nItems,
      trainCounts: new Int32Array(config.nItems),
      maxPrefixLen: config.maxLen,
    })
    scorer.dispose?.()
    expect(score.cases).toBe(offline.cases)
    expect(score.hits20).toBe(Math.round(offline.metrics['recall@20']! * offline.cases))
    expect(score.reciprocalRank20).toBeCloseTo(offline.metrics['mrr@20']! * offline.cases, 9)
    expect(score.hits20).toBeGreaterThan(0) // or the comparison above proves little
    expect(score.hits20).toBeLessThan(score.cases)
  })

  it(`scores at most ${MAX_SCORED_CASES} cases, the most recent`, async () => {
    const sessions = sessionsOf(60, 2)
    const all = sessions.reduce((n, s) => n + s.length - 1, 0)
    expect(all).toBeGreaterThan(MAX_SCORED_CASES)
    const score = await scoreCases(model, sessions)
    expect(score.cases).toBe(MAX_SCORED_CASES)
    // Each of the last 100 cases scored on its own: the last case of (prefix, target).
    const recent = expandPrefixes(sessions, { maxPrefixLen: config.maxLen }).slice(
      -MAX_SCORED_CASES,
    )
    let hits20 = 0
    let reciprocalRank20 = 0
    for (const c of recent) {
      const one = await scoreCases(model, [Int32Array.of(...c.prefix, c.target)], 1)
      expect(one.cases).toBe(1)
      hits20 += one.hits20
      reciprocalRank20 += one.reciprocalRank20
    }
    expect(score.hits20).toBe(hits20)
    expect(score.reciprocalRank20).toBeCloseTo(reciprocalRank20, 9)
    // The oldest cases rank differently, or this would not tell recent from old.
    const oldest = await scoreCases(model, sessions.slice(0, 20))
    expect(oldest.hits20 / oldest.cases).not.toBe(score.hits20 / score.cases)
  })

  it('scores nothing when there is no case', async () => {
    expect(await scoreCases(model, [Int32Array.of(4)])).toEqual({
      cases: 0,
      hits20: 0,
      reciprocalRank20: 0,
    })
  })
})
