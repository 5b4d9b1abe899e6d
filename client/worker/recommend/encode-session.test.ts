import { describe, expect, it } from 'vitest'
import { encodeSession } from './encode-session'
import { lookup } from './test-fixtures'

describe('encodeSession', () => {
  it('maps product ids to model rows, oldest first', () => {
    expect([...encodeSession(['p4', 'p9', 'p17'], lookup, 5)]).toEqual([4, 9, 17])
  })

  it('drops ids the catalogue does not know', () => {
    expect([...encodeSession(['p4', 'new-sku', 'p9'], lookup, 5)]).toEqual([4, 9])
  })

  it('collapses consecutive repeats but keeps a later return to a product', () => {
    expect([...encodeSession(['p4', 'p4', 'p4', 'p9', 'p4'], lookup, 5)]).toEqual([4, 9, 4])
  })

  it('keeps only the last maxLen items', () => {
    const ids = ['p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7']
    expect([...encodeSession(ids, lookup, 3)]).toEqual([5, 6, 7])
  })

  it('gives an empty session for no events', () => {
    expect(encodeSession([], lookup, 5)).toHaveLength(0)
  })
})
