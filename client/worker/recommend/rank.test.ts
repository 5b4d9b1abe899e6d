import * as tf from '@tensorflow/tfjs-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createGruScorer } from '../../../model/eval/gru-scorer'
import { setNodeBackend } from '../../../model/node-backend'
import { createGruModel, withBonuses, type GruModel } from '../../../model/gru-model'
import { readItemTable, type ItemTable } from './item-table'
import { rankCandidates, scoreByOrder, toProbabilities } from './rank'
import { DEFAULT_RECALL_SIZES, recallForYou, type Candidate } from './recall'
import { lookup, pools, tinyConfig } from './test-fixtures'

const byScore = (scores: ArrayLike<number>) => (a: number, b: number) => scores[b]! - scores[a]!

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`rankCandidates on ${backend}`, () => {
    let model: GruModel
    let table: ItemTable
    let before = 0
    beforeAll(async () => {
      await setNodeBackend(backend)
      model = createGruModel(tinyConfig, 5)
      table = await readItemTable(model)
      before = tf.memory().numTensors
    })
    afterEach(() => {
      expect(tf.memory().numTensors).toBe(before)
    })
    afterAll(() => {
      model.dispose()
    })

    it("orders recalled candidates as the trainer's full-catalogue scores do", async () => {
      const session = Int32Array.from([4, 9, 17, 2])
      const deps = { pools, lookup, table: async () => table, sizes: DEFAULT_RECALL_SIZES }
      const candidates = (await recallForYou(deps, session, 2)).slice(0, 25)
      const logits = rankCandidates(model, table, { session }, candidates)

      const scorer = createGruScorer(model)
      const full = (await scorer.scoreBatch([session])).slice() // [nItems]
      scorer.dispose?.()

      const indices = candidates.map((c) => c.index)
      candidates.forEach((c, i) => expect(logits[i]).toBeCloseTo(full[c.index]!, 4))
      const ours = candidates
        .map((_, i) => i)
        .sort(byScore(logits))
        .map((i) => indices[i])
      expect(ours).toEqual([...indices].sort(byScore(full)))
    })

    it('adds the model’s repeat bonus to what the session holds, as the trainer’s scorer does', async () => {
      const session = Int32Array.from([4, 9, 4, 17])
      const candidates = [4, 9, 17, 2, 30].map((index): Candidate => ({ index, source: 'embedding' })) // prettier-ignore
      const repeating = withBonuses(model, { repeatBonus: 2.5 })
      const plain = rankCandidates(model, table, { session }, candidates)
      const bonus = rankCandidates(repeating, table, { session }, candidates)
      expect(Array.from(bonus, (v, i) => v - plain[i]!).map((v) => Math.round(v * 1000) / 1000)).toEqual([2.5, 2.5, 2.5, 0, 0]) // prettier-ignore
      const scorer = createGruScorer(repeating)
      const full = (await scorer.scoreBatch([session])).slice()
      scorer.dispose?.()
      candidates.forEach((c, i) => expect(bonus[i]).toBeCloseTo(full[c.index]!, 4))
    })

    it('adds the model’s co-visitation bonus by place in the last item’s list, as the trainer’s scorer does', async () => {
      const session = Int32Array.from([4, 9, 17])
      const coVisited = [2, 30, 9] // the co-visitation list of 17, the session's last item
      const candidates = [2, 30, 9, 5].map((index): Candidate => ({ index, source: 'embedding' })) // prettier-ignore
      const covisiting = withBonuses(model, { coVisitBonus: 2 })
      const plain = rankCandidates(model, table, { session, coVisited }, candidates)
      const bonus = rankCandidates(covisiting, table, { session, coVisited }, candidates)
      expect(Array.from(bonus, (v, i) => v - plain[i]!).map((v) => Math.round(v * 1000) / 1000)).toEqual([2, 1.9, 1.8, 0]) // prettier-ignore
      const scorer = createGruScorer(covisiting, 'GRU', { coVisitation: (item) => (item === 17 ? coVisited : [5]) }) // prettier-ignore
      const full = (await scorer.scoreBatch([session])).slice()
      scorer.dispose?.()
      candidates.forEach((c, i) => expect(bonus[i]).toBeCloseTo(full[c.index]!, 4))
    })

    it('blends the anchor item with the session, and uses the anchor alone without one', async () => {
      const candidates: Candidate[] = [1, 6, 12, 30].map((index) => ({
        index,
        source: 'embedding',
      }))
      const anchor = { index: 8, weight: 0.7 }
      const session = Int32Array.from([4, 9])
      const blended = rankCandidates(model, table, { session, anchor }, candidates)
      const sessionOnly = rankCandidates(model, table, { session }, candidates)
      const anchorOnly = rankCandidates(
        model,
        table,
        { session: new Int32Array(0), anchor },
        candidates,
      )
      // Linear in the query: 0.7 · anchor logits + 0.3 · session logits.
      blended.forEach((z, i) =>
        expect(z).toBeCloseTo(0.7 * anchorOnly[i]! + 0.3 * sessionOnly[i]!, 4),
      )
      // Anchor alone: scale · cosine, at most the scale.
      for (const z of anchorOnly) expect(Math.abs(z)).toBeLessThanOrEqual(tinyConfig.scale + 1e-4)
    })

    it('gives nothing to rank an empty array, creating no tensor', async () => {
      expect(rankCandidates(model, table, { session: Int32Array.from([1]) }, [])).toHaveLength(0)
    })
  })
}

describe('scores for re-ranking', () => {
  it('turns logits into positive probabilities in the same order', () => {
    const p = toProbabilities(new Float32Array([2, -3, 0.5, 40]))
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5)
    expect([...p].every((x) => x >= 0)).toBe(true)
    expect([0, 1, 2, 3].sort(byScore(p))).toEqual([3, 0, 2, 1])
  })

  it('scores a given order 1, 1/2, 1/3…', () => {
    expect([...scoreByOrder(3)]).toEqual([1, 0.5, Math.fround(1 / 3)])
  })
})
