import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { countPrefixCases } from './examples'
import { loadSessionRecFolder, parseSessionRecTsv } from './load-session-rec'
import { sharedDataDir } from './paths'
import { catchDataError, useTempFolders } from './test-files'

const { writeFolder } = useTempFolders('session-rec')

const HEADER = 'SessionId\tItemId\tTime\n'
const YOOCHOOSE = 'yoochoose-clicks-100k-sessionrec'

function writeTsv(text: string): string {
  return path.join(writeFolder({ 'x_test.txt': text }), 'x_test.txt')
}

describe('loadSessionRecFolder on the YooChoose sample', () => {
  it('matches the counts of SOURCE.md', async () => {
    const data = await loadSessionRecFolder(path.join(sharedDataDir(), YOOCHOOSE))
    const clicks = (s: Int32Array[]) => s.reduce((n, x) => n + x.length, 0)
    expect(data.name).toBe(YOOCHOOSE)
    expect([data.train.length, clicks(data.train), data.nItems]).toEqual([17_794, 70_278, 2_933])
    // every test item occurs in train_full, so nothing is dropped
    expect([data.test.length, clicks(data.test)]).toEqual([3_416, 13_568])
    expect(countPrefixCases(data.test)).toBe(10_152)
    expect(data.dropped).toEqual({ testClicks: 0, testSessions: 0 })
  })

  it('orders sessions by first click time, not by file (session id) order', async () => {
    const file = path.join(sharedDataDir(), YOOCHOOSE, 'yoochoose-clicks-100k_train_full.txt.gz')
    const sessions = await parseSessionRecTsv(file)
    expect(sessions.length).toBe(17_794)
    let outOfOrder = 0
    for (let i = 1; i < sessions.length; i += 1) {
      if (sessions[i - 1].times[0] > sessions[i].times[0]) outOfOrder += 1
    }
    expect(outOfOrder).toBe(0)
    // the file lists session 3 (Apr 2) before session 7 (Apr 2, earlier) and 29 (Apr 1)
    expect(sessions[0].sessionId).not.toBe('3')
    expect(sessions.every((s) => s.items.length >= 2)).toBe(true)
  })
})

describe('parseSessionRecTsv', () => {
  it('groups scattered rows, sorts clicks by time (stable) and sessions by first time', async () => {
    const file = writeTsv(
      HEADER + 'b\t5\t20\na\t1\t30.5\nb\t6\t10\na\t2\t30.5\nc\t7\t10\na\t3\t1e1\n',
    )
    expect(await parseSessionRecTsv(file)).toEqual([
      { sessionId: 'b', items: [6, 5], times: [10, 20] },
      { sessionId: 'a', items: [3, 1, 2], times: [10, 30.5, 30.5] },
      { sessionId: 'c', items: [7], times: [10] },
    ])
  })

  it('accepts extra columns in any order and CRLF line ends', async () => {
    const file = writeTsv('Time\tExtra\tItemId\tSessionId\r\n5\tz\t9\ts1\r\n6\tz\t8\ts1\r\n')
    expect(await parseSessionRecTsv(file)).toEqual([
      { sessionId: 's1', items: [9, 8], times: [5, 6] },
    ])
  })

  it('rejects a wrong header', async () => {
    const err = await catchDataError(parseSessionRecTsv(writeTsv('session,item,time\n1\t2\t3\n')))
    expect(err.message).toMatch(
      /x_test\.txt:1: expected a tab-separated header with columns SessionId, ItemId and Time, got "session,item,time"/,
    )
  })

  it('rejects an empty file', async () => {
    expect((await catchDataError(parseSessionRecTsv(writeTsv('')))).lineNo).toBe(1)
  })

  it.each([
    [
      'a row with too few columns',
      '1\t2\n',
      /:3: expected 3 tab-separated columns.*found 2, got "1\\t2"/,
    ],
    ['a row with too many columns', '1\t2\t3\t4\n', /:3: expected 3 tab-separated .*found 4/],
    ['a non-integer item', '1\tab\t3\n', /:3: expected ItemId to be an integer .*got "ab"/],
    ['a negative item', '1\t-2\t3\n', /:3: expected ItemId .*got "-2"/],
    ['a bad time', '1\t2\tnoon\n', /:3: expected Time to be a number .*got "noon"/],
    ['an empty session id', '\t2\t3\n', /:3: expected a non-empty SessionId/],
    ['a blank line before data', '\n1\t2\t3\n', /:3: expected a tab-separated row, got ""/],
  ])('rejects %s naming file and line', async (_what, row, pattern) => {
    const file = writeTsv(HEADER + '1\t2\t3\n' + row)
    const err = await catchDataError(parseSessionRecTsv(file))
    expect(err.message.startsWith(file)).toBe(true)
    expect(err.message).toMatch(pattern)
  })
})

describe('loadSessionRecFolder on small folders', () => {
  it('drops unseen test items and refuses ambiguous prefixes', async () => {
    const dir = writeFolder({
      'd_train_full.txt.gz': HEADER + '1\t10\t1\n1\t11\t2\n',
      'd_test.txt': HEADER + '2\t11\t5\n2\t12\t6\n2\t10\t7\n3\t12\t8\n3\t10\t9\n',
      'd_train_tr.txt': HEADER,
    })
    const data = await loadSessionRecFolder(dir)
    expect(data.test.map((s) => Array.from(s))).toEqual([[1, 0]])
    expect(data.dropped).toEqual({ testClicks: 2, testSessions: 1 })
    fs.writeFileSync(path.join(dir, 'e_train_full.txt'), HEADER)
    expect((await catchDataError(loadSessionRecFolder(dir))).message).toContain('got "d, e"')
  })
})
