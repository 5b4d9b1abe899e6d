import { describe, expect, it } from 'vitest'
import { countItems, countPrefixCases, splitValidation } from './examples'
import { expandPrefixes } from '../../model/prefix-cases'

const sessions = [Int32Array.of(4, 2, 7, 2), Int32Array.of(1), Int32Array.of(3, 0)]

describe('expandPrefixes', () => {
  it('emits s[:k] → s[k] for k = 1..L-1, session by session, k ascending', () => {
    const cases = expandPrefixes(sessions)
    expect(cases.map((c) => [Array.from(c.prefix), c.target])).toEqual([
      [[4], 2],
      [[4, 2], 7],
      [[4, 2, 7], 2],
      [[3], 0],
    ])
    expect(countPrefixCases(sessions)).toBe(4)
  })

  it('keeps the last maxPrefixLen items as views on the session', () => {
    const cases = expandPrefixes(sessions, { maxPrefixLen: 2 })
    expect(cases.map((c) => Array.from(c.prefix))).toEqual([[4], [4, 2], [2, 7], [3]])
    expect(cases[2].prefix.buffer).toBe(sessions[0].buffer)
  })

  it('refuses a non-positive or fractional maxPrefixLen', () => {
    expect(() => expandPrefixes(sessions, { maxPrefixLen: 0 })).toThrow(/positive integer, got 0/)
    expect(() => expandPrefixes(sessions, { maxPrefixLen: 1.5 })).toThrow(/got 1.5/)
  })
})

describe('splitValidation', () => {
  const train = Array.from({ length: 10 }, (_, i) => Int32Array.of(i, i))

  it('takes the last fraction of sessions as validation', () => {
    const { fit, validation } = splitValidation(train, 0.2)
    expect(fit.map((s) => s[0])).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    expect(validation.map((s) => s[0])).toEqual([8, 9])
    expect(splitValidation(train, 0).validation).toEqual([])
    expect(splitValidation(train, 0.14).validation.length).toBe(1)
  })

  it('refuses fractions outside [0, 1)', () => {
    expect(() => splitValidation(train, 1)).toThrow(/\[0, 1\), got 1/)
    expect(() => splitValidation(train, -0.1)).toThrow(RangeError)
    expect(() => splitValidation(train, Number.NaN)).toThrow(RangeError)
  })
})

describe('countItems', () => {
  it('counts clicks per item index', () => {
    expect(Array.from(countItems(sessions, 8))).toEqual([1, 1, 2, 1, 1, 0, 0, 1])
  })

  it('refuses indices outside 0..nItems-1', () => {
    expect(() => countItems(sessions, 5)).toThrow(/0\.\.4, got 7/)
  })
})
