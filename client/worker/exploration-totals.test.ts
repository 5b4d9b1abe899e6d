import { describe, expect, it } from 'vitest'
import { fleetTotals } from '../../test/fixtures/exploration-totals'
import {
  createExplorationTotals,
  EXPLORATION_REFRESH_MS,
  readExplorationTotals,
} from './exploration-totals'

const manifestUrl = new URL('https://shop.example/pocketrec/artifacts/manifest.json')
const settle = () => new Promise((resolve) => setTimeout(resolve, 0))

describe('the fleet’s exploration counts on the device (P30f)', () => {
  it('asks at most hourly and in the background; a failed or malformed answer keeps the last', async () => {
    let clock = 0
    const answers: Array<() => Response> = [
      () => Response.json(fleetTotals(3)),
      () => new Response('busy', { status: 503 }),
      () => Response.json({ ...fleetTotals(5), shown: [1, 2] }),
      () => Response.json(fleetTotals(7)),
    ]
    const asked: string[] = []
    const totals = createExplorationTotals({
      fetch: async (url) => {
        asked.push(String(url))
        return answers.shift()!()
      },
      now: () => clock,
    })
    // The first list does not wait for the answer.
    expect(totals.current(manifestUrl)).toBeUndefined()
    await settle()
    expect(asked).toEqual(['https://shop.example/v1/exploration'])
    expect(totals.current(manifestUrl)?.shown[0]).toBe(3)
    clock += EXPLORATION_REFRESH_MS - 1
    totals.current(manifestUrl)
    expect(asked).toHaveLength(1)
    for (let hour = 1; hour <= 3; hour++) {
      clock += EXPLORATION_REFRESH_MS
      totals.current(manifestUrl)
      await settle()
      expect(asked).toHaveLength(1 + hour)
      expect(totals.current(manifestUrl)?.shown[0]).toBe(hour < 3 ? 3 : 7)
    }
  })

  it('reads only the layout this code counts in', () => {
    expect(readExplorationTotals(fleetTotals(1))).not.toBeNull()
    expect(readExplorationTotals({ ...fleetTotals(1), buckets: 512 })).toBeNull()
    expect(readExplorationTotals({ ...fleetTotals(1), clicked: [...fleetTotals(1).clicked.slice(1), 'x'] })).toBeNull() // prettier-ignore
    expect(readExplorationTotals(null)).toBeNull()
    expect(readExplorationTotals('[]')).toBeNull()
  })
})
