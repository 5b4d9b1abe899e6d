import { createHmac } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  EXPERIMENT_GROUPS,
  experimentProblem,
  experimentUnit,
  placeDevice,
  type Experiment,
} from './experiments'

const assignArm = (experiment: Experiment, id: string) => placeDevice(experiment, id).arm

const ids = (n: number, prefix = 'device') => Array.from({ length: n }, (_, i) => `${prefix}-${i}`)

const split = (arms: Array<[string, number]>, key = 'k1'): Experiment => ({
  id: 'model-vs-pop',
  key,
  arms: arms.map(([name, share]) => ({ name, share })),
})

describe('arm assignment by a keyed hash of the device id', () => {
  it('is HMAC-SHA256 under the experiment key, its first 48 bits over 2^48', () => {
    const mac = createHmac('sha256', 'k1').update('device-7').digest()
    expect(experimentUnit('k1', 'device-7')).toBe(mac.readUIntBE(0, 6) / 2 ** 48)
  })

  it('gives a device the same arm every time, and another key reshuffles devices', () => {
    const experiment = split([
      ['control', 1],
      ['model', 1],
    ])
    const first = ids(2000).map((id) => assignArm(experiment, id))
    expect(ids(2000).map((id) => assignArm(experiment, id))).toEqual(first)
    const other = ids(2000).map((id) => assignArm({ ...experiment, key: 'k2' }, id))
    const same = other.filter((arm, i) => arm === first[i]).length
    expect(same).toBeGreaterThan(900) // half agree by chance, not all
    expect(same).toBeLessThan(1100)
  })

  it('follows the shares (relative weights), within four standard deviations', () => {
    const n = 20_000
    const experiment = split([
      ['a', 1],
      ['b', 2],
      ['c', 7],
    ])
    const counts = [0, 0, 0]
    for (const id of ids(n)) counts[assignArm(experiment, id)]! += 1
    for (const [i, p] of [0.1, 0.2, 0.7].entries()) {
      expect(Math.abs(counts[i]! - n * p)).toBeLessThan(4 * Math.sqrt(n * p * (1 - p)))
    }
  })

  it('splits independently in two experiments with different keys', () => {
    const first = split([['a', 1], ['b', 1]], 'first') // prettier-ignore
    const second = split([['a', 1], ['b', 1]], 'second') // prettier-ignore
    const table = [0, 0, 0, 0]
    for (const id of ids(8000)) table[assignArm(first, id) * 2 + assignArm(second, id)]! += 1
    for (const cell of table) expect(Math.abs(cell - 2000)).toBeLessThan(4 * Math.sqrt(1500))
  })

  it('puts devices in random groups, uniform and independent of the arm', () => {
    const experiment = split([
      ['a', 1],
      ['b', 1],
    ])
    const counts = new Array<number>(2 * EXPERIMENT_GROUPS).fill(0)
    const n = 32_000
    for (const id of ids(n)) {
      const { arm, group } = placeDevice(experiment, id)
      counts[arm * EXPERIMENT_GROUPS + group]! += 1
    }
    const expected = n / counts.length
    for (const cell of counts)
      expect(Math.abs(cell - expected)).toBeLessThan(5 * Math.sqrt(expected))
  })

  it('refuses an experiment a device cannot apply, naming the field', () => {
    const good = split([
      ['a', 1],
      ['b', 1],
    ])
    expect(experimentProblem(good)).toBeNull()
    expect(experimentProblem(split([['a', 1]]))).toMatch(/^arms: 2 to 8/)
    expect(experimentProblem(split([['a', 1], ['a', 1]]))).toMatch(/arms\[1\]\.name a twice/) // prettier-ignore
    expect(experimentProblem(split([['a', 1], ['b', 0]]))).toMatch(/arms\[1\]\.share 0/) // prettier-ignore
    expect(experimentProblem(split([['a', 1], ['b c', 1]]))).toMatch(/arms\[1\]\.name/) // prettier-ignore
    expect(experimentProblem({ ...good, id: '../x' })).toMatch(/^id/)
    expect(experimentProblem({ ...good, key: '' })).toMatch(/^key/)
    expect(() => assignArm({ ...good, arms: [] }, 'd')).toThrow(/model-vs-pop: arms/)
  })
})
