import { beforeAll, describe, expect, it } from 'vitest'
import { createGruModel, DEFAULT_GRU_CONFIG } from '../model/gru-model'
import { setNodeBackend } from '../model/node-backend'
import { createRandom } from '../shared/random'
import type { SessionDataset } from './data/types'
import { chooseRepeatBonus, REPEAT_BONUSES } from './train-model'

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
    const back = await chooseRepeatBonus(model, dataset(true, 1), settings, (l) => logs.push(l))
    expect(back.choice.trials.map((t) => t.bonus)).toEqual([...REPEAT_BONUSES])
    expect(back.choice.chosen).toBeGreaterThan(0)
    expect(back.model.config.repeatBonus).toBe(back.choice.chosen)
    const chosen = back.choice.trials.find((t) => t.bonus === back.choice.chosen)!
    expect(chosen.mrr20).toBeGreaterThan(back.choice.trials[0]!.mrr20)
    expect(logs[0]).toMatch(/^repeat bonus \d/)
    const never = await chooseRepeatBonus(model, dataset(false, 2), settings, () => {})
    expect(never.choice.chosen).toBe(0)
    // The chosen model shares the trained variables: one dispose frees them.
    expect(back.model.variables.get('item_embedding')).toBe(model.variables.get('item_embedding'))
    model.dispose()
  })
})
