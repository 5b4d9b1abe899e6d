import { describe, expect, it } from 'vitest'
import { choice, int, intList, list, num, on, optionalNum, readOptions, text } from './options'

const FLAGS = {
  runs: int(7),
  roleRuns: intList([20, 3]),
  rate: num(0.5, 0, 1),
  denseRate: optionalNum(0),
  on: choice(['test', 'validation'] as const, 'test'),
  backends: list(['wasm', 'cpu'] as const, ['wasm']),
  results: text(),
  retrain: on(),
}

describe('a benchmark’s flags', () => {
  it('fills the defaults, camelCase keys from kebab-case flags', () => {
    expect(readOptions(FLAGS, [])).toEqual({
      runs: 7,
      roleRuns: [20, 3],
      rate: 0.5,
      denseRate: undefined,
      on: 'test',
      backends: ['wasm'],
      results: undefined,
      retrain: false,
    })
    const given = readOptions(FLAGS, [
      ...['--runs', '3', '--role-runs', '5,1', '--rate', '1', '--dense-rate', '0'],
      ...['--on', 'validation', '--backends', 'cpu,wasm', '--results', 'x.json', '--retrain'],
    ])
    expect(given).toEqual({
      runs: 3,
      roleRuns: [5, 1],
      rate: 1,
      denseRate: 0,
      on: 'validation',
      backends: ['cpu', 'wasm'],
      results: 'x.json',
      retrain: true,
    })
  })

  it('refuses a wrong value or an unknown flag, naming the flag', () => {
    const refused = (argv: string[]) => () => readOptions(FLAGS, argv)
    expect(refused(['--runs', '0'])).toThrow(/--runs: "0" is not an integer ≥ 1/)
    expect(refused(['--runs', '2.5'])).toThrow(/--runs/)
    expect(refused(['--runs', ''])).toThrow(/--runs: expected a number/)
    expect(refused(['--rate', '1.5'])).toThrow(/--rate: "1.5" is not a number in \[0, 1\]/)
    expect(refused(['--role-runs', '5,x'])).toThrow(/--role-runs: expected a number/)
    expect(refused(['--on', 'train'])).toThrow(/--on: expected one of test, validation/)
    expect(refused(['--backends', 'wasm,gpu'])).toThrow(/--backends: expected one of wasm, cpu/)
    expect(refused(['--nope'])).toThrow(/Unknown option '--nope'/)
  })
})
