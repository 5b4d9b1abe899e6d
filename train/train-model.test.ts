import { beforeAll, describe, expect, it } from 'vitest'
import { createGruModel, DEFAULT_GRU_CONFIG } from '../model/gru-model'
import { setNodeBackend } from '../model/node-backend'
import { createRandom } from '../shared/random'
import type { SessionDataset } from './data/types'
import { chooseBonuses, CO_VISIT_BONUSES, REPEAT_BONUSES } from './train-model'

const N = 60

/** Sessions of three distinct items, then (`repeat`) the first again or (else) a fourth. */
function dataset(repeat: boolean, seed: number): SessionDataset {
  const random = createRandom(seed)
  const train = Array.from({ length: 400 }, () => {
    const [a, b, c, d] = Array.from({ length: 4 }, (_, k) => (Math.floor(random() * 15) + 15 * k) % N) // prettier-ignore
    return Int32Array.from([a!, b!, c!, repeat ? a! : d!])
  })
  return { name: 'repeats', nItems: N, itemIds: Int32Array.from({ length: N }, (_, i) => i), train, test: [] } // prettier-ignore
}

describe('the repeat bonus, chosen on the validation split', () => {
  beforeAll(async () => {
    await setNodeBackend('cpu')
  })

  it('is chosen where shoppers come back to what they viewed, and left at 0 where they never do', async () => {
    const settings = { validationFraction: 0.25, validationCases: 1000 }
    const config = { ...DEFAULT_GRU_CONFIG, nItems: N, embedDim: 8, hiddenDim: 8, maxLen: 5 }
    const logs: string[] = []
    const model = createGruModel(config, 3)
    const back = await chooseBonuses(model, dataset(true, 1), settings, (l) => logs.push(l))
    expect(back.repeatBonus.trials.map((t) => t.bonus)).toEqual([...REPEAT_BONUSES])
    expect(back.repeatBonus.chosen).toBeGreaterThan(0)
    expect(back.model.config.repeatBonus).toBe(back.repeatBonus.chosen)
    const chosen = back.repeatBonus.trials.find((t) => t.bonus === back.repeatBonus.chosen)!
    expect(chosen.mrr20).toBeGreaterThan(back.repeatBonus.trials[0]!.mrr20)
    expect(logs[0]).toMatch(/^repeat bonus \d/)
    const never = await chooseBonuses(model, dataset(false, 2), settings, () => {})
    expect(never.repeatBonus.chosen).toBe(0)
    // The chosen model shares the trained variables: one dispose frees them.
    expect(back.model.variables.get('item_embedding')).toBe(model.variables.get('item_embedding'))
    model.dispose()
  })

  it("chooses a co-visitation bonus where the last item's co-visits tell the next item, with the repeat bonus in place", async () => {
    // Each item has a partner the shoppers view next; the model is untrained, so only the
    // co-visitation lists (of the fit split) can tell it.
    const random = createRandom(4)
    const partner = (i: number) => (i * 11 + 5) % N
    const train = Array.from({ length: 600 }, () => {
      const a = Math.floor(random() * N)
      return Int32Array.from([a, partner(a), partner(partner(a))])
    })
    const data: SessionDataset = { name: 'partners', nItems: N, itemIds: Int32Array.from({ length: N }, (_, i) => i), train, test: [] } // prettier-ignore
    const settings = { validationFraction: 0.25, validationCases: 1000 }
    const model = createGruModel({ ...DEFAULT_GRU_CONFIG, nItems: N, embedDim: 8, hiddenDim: 8, maxLen: 5 }, 3) // prettier-ignore
    const logs: string[] = []
    const chosen = await chooseBonuses(model, data, settings, (l) => logs.push(l))
    expect(chosen.coVisitBonus.trials.map((t) => t.bonus)).toEqual([...CO_VISIT_BONUSES])
    expect(chosen.coVisitBonus.chosen).toBeGreaterThan(0)
    expect(chosen.model.config.coVisitBonus).toBe(chosen.coVisitBonus.chosen)
    expect(chosen.model.config.repeatBonus).toBe(chosen.repeatBonus.chosen)
    const [none, ...some] = chosen.coVisitBonus.trials
    expect(Math.max(...some.map((t) => t.recall20))).toBeGreaterThan(none!.recall20 + 0.05)
    expect(logs[1]).toMatch(/^co-visitation bonus \d/)
    model.dispose()
  })
})
