import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { ERROR_CODES, PocketrecError, WeightsFormatError } from './errors'

const protocol = readFileSync(new URL('./PROTOCOL.md', import.meta.url), 'utf8')

describe('error codes', () => {
  it('every code PROTOCOL.md names is one the code can raise (no documented code is missing)', () => {
    const documented = new Set(protocol.match(/\bE_[A-Z0-9_]+\b/g))
    const known = new Set<string>(ERROR_CODES)
    expect([...documented].filter((code) => !known.has(code))).toEqual([])
    expect(documented.size).toBeGreaterThan(20)
  })

  it('lists each code once', () => {
    expect(new Set(ERROR_CODES).size).toBe(ERROR_CODES.length)
  })

  it('a subclass keeps its name and code through the one base', () => {
    const error = new WeightsFormatError('E_WEIGHTS_MAGIC', 'not PRW1')
    expect(error).toBeInstanceOf(PocketrecError)
    expect(error).toBeInstanceOf(Error)
    expect([error.name, error.code, error.message]).toEqual([
      'WeightsFormatError',
      'E_WEIGHTS_MAGIC',
      'not PRW1',
    ])
  })
})
