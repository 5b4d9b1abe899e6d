import { describe, expect, it } from 'vitest'
import { drain, inSlices, type Steps } from './slices'

function* counting(n: number, log: string[]): Steps<number> {
  for (let i = 0; i < n; i++) {
    log.push(`step ${i}`)
    yield
  }
  return n
}

describe('work in steps', () => {
  it('drain runs every step in one go and returns the result', () => {
    const log: string[] = []
    expect(drain(counting(3, log))).toBe(3)
    expect(log).toEqual(['step 0', 'step 1', 'step 2'])
  })

  it('inSlices pauses when a slice has used its budget, and only then', async () => {
    const log: string[] = []
    const pause = async () => void log.push('pause')
    // A budget of 0: every step ends its slice.
    expect(await inSlices(counting(3, log), 0, pause)).toBe(3)
    expect(log).toEqual(['step 0', 'pause', 'step 1', 'pause', 'step 2', 'pause'])
    log.length = 0
    expect(await inSlices(counting(3, log), Infinity, pause)).toBe(3)
    expect(log).toEqual(['step 0', 'step 1', 'step 2'])
  })

  it('gives the event loop its turns by default, and a throw inside a step rejects', async () => {
    let turns = 0
    const ticker = setInterval(() => turns++, 0)
    function* slow(): Steps<string> {
      for (let i = 0; i < 5; i++) {
        const until = performance.now() + 3
        while (performance.now() < until) {
          /* a step of work */
        }
        yield
      }
      throw new Error('bad record')
    }
    await expect(inSlices(slow(), 1)).rejects.toThrow('bad record')
    clearInterval(ticker)
    expect(turns).toBeGreaterThanOrEqual(2)
  })
})
