import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import zlib from 'node:zlib'
import { afterAll, describe, expect, it } from 'vitest'
import { countPrefixCases } from './examples'
import { sharedDataDir } from './paths'
import { preprocessDigineticaRaw } from './preprocess-diginetica'
import { catchDataError } from './test-files'

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pocketrec-diginetica-'))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

const HEADER = 'session_id;user_id;item_id;timeframe;eventdate\n'

let caseNo = 0
function writeCsv(text: string, gz = false): string {
  const file = path.join(tmp, `case-${++caseNo}.csv${gz ? '.gz' : ''}`)
  fs.writeFileSync(file, gz ? zlib.gzipSync(text) : text)
  return file
}

/** Rows `session;NA;item;timeframe;date` from compact tuples. */
function formatRows(rows: [string, number, number, string][]): string {
  return rows.map(([s, item, frame, date]) => `${s};NA;${item};${frame};${date}\n`).join('')
}

describe('preprocessDigineticaRaw on the SR-GNN sample', () => {
  it('reproduces every count of diginetica-sample-raw/SOURCE.md', async () => {
    const file = path.join(
      sharedDataDir(),
      'diginetica-sample-raw',
      'sample_train-item-views.csv.gz',
    )
    const { dataset, stats } = await preprocessDigineticaRaw(file)
    expect(stats).toMatchObject({
      rows: 12_391,
      sessions: 2_986,
      distinctItems: 7_139,
      keptSessions: 525,
      keptItems: 317,
      maxDate: '2016-06-01',
      splitDate: '2016-05-25',
      droppedOnSplitDay: 9,
      trainSessions: 469,
      trainClicks: 1_674,
      trainExamples: 1_205,
      trainItems: 309, // SR-GNN hard-codes n_node = 310 (309 + padding) for the sample
      testSessions: 39,
      testClicks: 138,
      testExamples: 99,
    })
    expect(dataset.name).toBe('diginetica-sample-raw')
    expect(dataset.nItems).toBe(309)
    expect(countPrefixCases(dataset.train)).toBe(1_205)
    expect(countPrefixCases(dataset.test)).toBe(99)
    expect(dataset.test.every((s) => s.length >= 2)).toBe(true)
  })
})

describe('preprocessDigineticaRaw on small logs', () => {
  // Once "z" (a single click) is gone, items 1-3 appear ≥ 5 times and 9 twice.
  const rows: [string, number, number, string][] = [
    ['a', 2, 30, '2016-01-01'],
    ['a', 1, 10, '2016-01-01'],
    ['a', 9, 20, '2016-01-01'],
    ['b', 3, 0, '2016-01-02'],
    ['b', 1, 5, '2016-01-02'],
    ['c', 1, 0, '2016-01-01'], // same day as "a" but later in the file: after "a" in train
    ['c', 2, 1, '2016-01-01'],
    ['r', 9, 0, '2016-01-01'], // left with one click once 9 goes: dropped
    ['r', 1, 1, '2016-01-01'],
    ['z', 1, 0, '2016-01-03'],
    ['s', 3, 0, '2016-01-03'], // on the split day (2016-01-10 − 7): dropped
    ['s', 2, 1, '2016-01-03'],
    ['t', 2, 1, '2016-01-04'],
    ['t', 3, 2, '2016-01-04'],
    ['t', 1, 0, '2016-01-02'], // the last row in file order dates "t": train, not test
    ['u', 2, 0, '2016-01-04'],
    ['u', 3, 1, '2016-01-04'],
    ['v', 3, 0, '2016-01-05'],
    ['v', 1, 1, '2016-01-05'],
    ['w', 2, 0, '2016-01-10'],
    ['w', 3, 1, '2016-01-10'],
  ]

  it('follows the SR-GNN steps in order', async () => {
    const { dataset, stats } = await preprocessDigineticaRaw(
      writeCsv(HEADER + formatRows(rows), true),
    )
    const originalIds = (sessions: Int32Array[]) =>
      sessions.map((s) => Array.from(s, (i) => dataset.itemIds[i]))
    // clicks in timeframe order: "a" is 1, 9, 2 and 9 is rare; "t" is 1, 2, 3
    expect(originalIds(dataset.train)).toEqual([
      [1, 2], // a, 2016-01-01
      [1, 2], // c, 2016-01-01 (same day, later first appearance)
      [3, 1], // b, 2016-01-02
      [1, 2, 3], // t, 2016-01-02
    ])
    expect(Array.from(dataset.itemIds)).toEqual([1, 2, 3])
    expect(originalIds(dataset.test)).toEqual([
      [2, 3], // u
      [3, 1], // v
      [2, 3], // w
    ])
    expect(stats).toMatchObject({
      rows: rows.length,
      sessions: 10,
      droppedLength1Sessions: 1,
      droppedRareItems: 1,
      droppedShortSessions: 1,
      keptSessions: 8,
      keptItems: 3,
      maxDate: '2016-01-10',
      splitDate: '2016-01-03',
      droppedOnSplitDay: 1,
      trainSessions: 4,
      testSessions: 3,
    })
  })

  it('accepts the competition header', async () => {
    const text = 'sessionId;userId;itemId;timeframe;eventdate\n' + formatRows(rows)
    expect((await preprocessDigineticaRaw(writeCsv(text))).stats.trainSessions).toBe(4)
  })

  it.each([
    [
      'an impossible date',
      '2016-02-30',
      /:3: expected eventdate as a valid YYYY-MM-DD date, got "2016-02-30"/,
    ],
    ['a non-date', '20160105', /:3: expected eventdate .*got "20160105"/],
  ])('rejects %s naming file and line', async (_what, date, pattern) => {
    const file = writeCsv(HEADER + '1;NA;5;0;2016-01-01\n' + `1;NA;6;1;${date}\n`)
    const err = await catchDataError(preprocessDigineticaRaw(file))
    expect(err.message.startsWith(file)).toBe(true)
    expect(err.message).toMatch(pattern)
  })

  it.each([
    ['a wrong header', 'session;item;time\n', /:1: expected the header session_id;user_id/],
    ['a missing field', HEADER + '1;NA;5;0\n', /:2: expected 5 ;-separated fields, found 4/],
    ['a zero item', HEADER + '1;NA;0;0;2016-01-01\n', /:2: expected item_id .*got "0"/],
    ['a bad timeframe', HEADER + '1;NA;5;1.5;2016-01-01\n', /:2: expected timeframe .*"1.5"/],
  ])('rejects %s', async (_what, text, pattern) => {
    expect((await catchDataError(preprocessDigineticaRaw(writeCsv(text)))).message).toMatch(pattern)
  })
})
