import path from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { countPrefixCases } from './examples'
import { expandPrefixes } from '../../model/prefix-cases'
import { indexSessions, loadSrgnnFolder, readIdSessions } from './load-srgnn'
import { sharedDataDir } from './paths'
import { catchDataError, useTempFolders } from './test-files'
import type { SessionDataset } from './types'

const { writeFolder } = useTempFolders('srgnn')

describe('loadSrgnnFolder on diginetica-srgnn', () => {
  let data: SessionDataset
  beforeAll(async () => {
    data = await loadSrgnnFolder(path.join(sharedDataDir(), 'diginetica-srgnn'))
  })

  it('has the published split sizes', () => {
    expect(data.name).toBe('diginetica-srgnn')
    expect(data.train.length).toBe(186_670)
    expect(data.test.length).toBe(15_963)
    expect(data.nItems).toBe(43_097)
    expect(data.dropped).toEqual({ testClicks: 0, testSessions: 0 })
    const clicks = (s: Int32Array[]) => s.reduce((n, x) => n + x.length, 0)
    expect([clicks(data.train), clicks(data.test)]).toEqual([906_140, 76_821])
  })

  it('gives 719,470 train and 60,858 test prefix cases', () => {
    expect(expandPrefixes(data.train).length).toBe(719_470)
    expect(expandPrefixes(data.test).length).toBe(60_858)
    expect(countPrefixCases(data.test)).toBe(60_858)
  })

  it('numbers items as the SR-GNN ids minus 1 (first appearance = id order there)', () => {
    let mismatches = 0
    for (let i = 0; i < data.nItems; i += 1) if (data.itemIds[i] !== i + 1) mismatches += 1
    expect(mismatches).toBe(0)
    expect(Array.from(data.train[0])).toEqual([0, 1]) // first line: "1 2"
  })
})

describe('loadSrgnnFolder on small folders', () => {
  it('indexes by first appearance and drops unseen test items, then short sessions', async () => {
    const dir = writeFolder({
      'train_sessions.txt': '30 10 30\n20 10  \n',
      'test_sessions.txt.gz': '10 99 20\n99 30\n30\n20 30 30\n',
    })
    const data = await loadSrgnnFolder(dir)
    expect(Array.from(data.itemIds)).toEqual([30, 10, 20])
    expect(data.train.map((s) => Array.from(s))).toEqual([
      [0, 1, 0],
      [2, 1],
    ])
    expect(data.test.map((s) => Array.from(s))).toEqual([
      [1, 2],
      [2, 0, 0],
    ])
    // 2 clicks on 99; "99 30" and the length-1 "30" go
    expect(data.dropped).toEqual({ testClicks: 2, testSessions: 2 })
    // The split as published keeps them (99 as -1) for the protocol, the length-1 "30" aside.
    expect(data.testAsPublished!.map((s) => Array.from(s))).toEqual([
      [1, -1, 2],
      [-1, 0],
      [2, 0, 0],
    ])
  })

  it('accepts blank lines at the end but not in the middle', async () => {
    const ok = writeFolder({ 'train_sessions.txt': '1 2\n\n\n', 'test_sessions.txt': '1 2\n' })
    expect((await loadSrgnnFolder(ok)).train.length).toBe(1)
    const file = path.join(writeFolder({ 'x.txt': '1 2\n\n3 4\n' }), 'x.txt')
    const err = await catchDataError(readIdSessions(file))
    expect(err.message).toContain('x.txt:2:')
  })

  it.each([
    ['a non-integer id', '1 2\n12 x 4\n', 2, '"12 x 4"'],
    ['a zero id', '1 2\n3 0\n', 2, '"3 0"'],
    ['a negative id', '-1 2\n', 1, '"-1 2"'],
    ['a decimal id', '1 2.5\n', 1, '"1 2.5"'],
    ['a double space', '1  2\n', 1, '"1  2"'],
    ['leading whitespace', ' 1 2\n', 1, '" 1 2"'],
    ['an id over int32', '1 2147483648\n', 1, '"1 2147483648"'],
  ])('rejects %s with file and line', async (_what, text, lineNo, quoted) => {
    const dir = writeFolder({ 'train_sessions.txt.gz': text, 'test_sessions.txt': '1 2\n' })
    const err = await catchDataError(loadSrgnnFolder(dir))
    expect(err.code).toBe('E_DATA_FORMAT')
    expect(err.lineNo).toBe(lineNo)
    expect(err.message).toContain(`train_sessions.txt.gz:${lineNo}: expected positive integer`)
    expect(err.message).toContain(`got ${quoted}`)
  })

  it('reports a missing file and refuses a .txt beside its .gz', async () => {
    const missing = writeFolder({ 'train_sessions.txt': '1 2\n' })
    expect((await catchDataError(loadSrgnnFolder(missing))).message).toMatch(
      /expected a file test_sessions\.txt or test_sessions\.txt\.gz, got "train_sessions\.txt"/,
    )
    const both = writeFolder({
      'train_sessions.txt': '1 2\n',
      'train_sessions.txt.gz': '1 2\n',
      'test_sessions.txt': '1 2\n',
    })
    expect((await catchDataError(loadSrgnnFolder(both))).message).toContain('only one of')
  })

  it('refuses an empty training file', async () => {
    const dir = writeFolder({ 'train_sessions.txt': '', 'test_sessions.txt': '1 2\n' })
    expect((await catchDataError(loadSrgnnFolder(dir))).message).toContain('at least one training')
  })
})

describe('indexSessions', () => {
  it('does not modify its inputs', () => {
    const train = [Int32Array.of(7, 8)]
    const test = [Int32Array.of(8, 9, 7)]
    const data = indexSessions('t', train, test)
    expect(Array.from(train[0])).toEqual([7, 8])
    expect(Array.from(test[0])).toEqual([8, 9, 7])
    expect(Array.from(data.test[0])).toEqual([1, 0])
  })
})
