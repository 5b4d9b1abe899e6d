import { describe, expect, it } from 'vitest'
import { answerRange, contentRange } from './byte-range'

describe('a download resumed with Range', () => {
  it('answers the rest of the file from the first byte asked for, or a closed part of it', () => {
    expect(answerRange('bytes=600-', 1000)).toEqual({ kind: 'part', start: 600, end: 999 })
    expect(answerRange('bytes=0-9', 1000)).toEqual({ kind: 'part', start: 0, end: 9 })
    expect(answerRange('bytes=990-5000', 1000)).toEqual({ kind: 'part', start: 990, end: 999 })
    expect(contentRange({ kind: 'part', start: 600, end: 999 }, 1000)).toBe('bytes 600-999/1000')
  })

  it('refuses a start past the end with 416, and serves the whole file for anything else', () => {
    expect(answerRange('bytes=1000-', 1000)).toEqual({ kind: 'unsatisfiable' })
    expect(contentRange({ kind: 'unsatisfiable' }, 1000)).toBe('bytes */1000')
    for (const ignored of [
      undefined,
      '',
      'bytes=-100',
      'bytes=1-2,5-6',
      'items=1-',
      'bytes=9-3',
      'bytes=1e3-',
    ]) {
      expect(answerRange(ignored, 1000), String(ignored)).toEqual({ kind: 'whole' })
    }
    expect(contentRange({ kind: 'whole' }, 1000)).toBeNull()
  })
})
