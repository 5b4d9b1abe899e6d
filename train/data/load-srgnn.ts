import fs from 'node:fs'
import path from 'node:path'
import { BlankLineGuard, DataFormatError, readLines } from './read-lines'
import type { SessionDataset } from './types'

const INT32_MAX = 2_147_483_647
const CODE_0 = 48
const CODE_9 = 57
const CODE_SPACE = 32

const ID_LINE_EXPECTED = 'positive integer item ids separated by single spaces'

/**
 * Loads a folder in the SR-GNN text layout: `train_sessions.txt(.gz)` and
 * `test_sessions.txt(.gz)`, one session per line, positive integer item ids separated by single
 * spaces, no header. Items are numbered by first appearance in the training file; test clicks on
 * unseen items are dropped, then test sessions shorter than 2 (counted in `dropped`).
 */
export async function loadSrgnnFolder(dir: string): Promise<SessionDataset> {
  const trainFile = findDataFile(dir, 'train_sessions.txt')
  const testFile = findDataFile(dir, 'test_sessions.txt')
  const [train, test] = await Promise.all([readIdSessions(trainFile), readIdSessions(testFile)])
  if (train.length === 0) {
    throw new DataFormatError(trainFile, undefined, 'at least one training session', '')
  }
  return indexSessions(path.basename(path.resolve(dir)), train, test)
}

/**
 * Reads one session per line as original item ids. Trailing whitespace is tolerated, so are blank
 * lines at the end of the file; anything else off the format is a `DataFormatError`.
 */
export async function readIdSessions(file: string): Promise<Int32Array[]> {
  const sessions: Int32Array[] = []
  const blanks = new BlankLineGuard(file, 'a session (item ids separated by single spaces)')
  const ids: number[] = []
  for await (const { line, lineNo } of readLines(file)) {
    if (blanks.skipBlank(line, lineNo)) continue
    ids.length = 0
    if (!parseIdLine(line, ids)) throw new DataFormatError(file, lineNo, ID_LINE_EXPECTED, line)
    sessions.push(Int32Array.from(ids))
  }
  return sessions
}

/**
 * Appends the ids of `line` to `out`; false when the line is off the format. Hand-rolled over
 * char codes because split + regex + Number costs several times more on the 906k clicks of
 * DIGINETICA, and this also catches zero, overflow and double spaces in the same pass.
 */
function parseIdLine(line: string, out: number[]): boolean {
  let end = line.length
  while (end > 0 && isTrailingSpace(line.charCodeAt(end - 1))) end -= 1
  let value = 0
  let digits = 0
  for (let i = 0; i < end; i += 1) {
    const c = line.charCodeAt(i)
    if (c >= CODE_0 && c <= CODE_9) {
      value = value * 10 + (c - CODE_0)
      digits += 1
      if (value > INT32_MAX) return false
    } else if (c === CODE_SPACE && digits > 0) {
      if (value === 0) return false
      out.push(value)
      value = 0
      digits = 0
    } else {
      return false
    }
  }
  if (digits === 0 || value === 0) return false
  out.push(value)
  return true
}

function isTrailingSpace(code: number): boolean {
  // space, tab, carriage return (a stray `\r` survives when only some lines end in `\r\n`)
  return code === 32 || code === 9 || code === 13
}

/**
 * Builds a `SessionDataset` from sessions of original ids: internal indices follow the first
 * appearance in `train` (in order), test clicks on items unseen in training are removed, then
 * test sessions shorter than 2; `testAsPublished` keeps them, as negative ids, for the protocol.
 * Shared by every layout so that all of them number items alike.
 */
export function indexSessions(
  name: string,
  train: ArrayLike<number>[],
  test: ArrayLike<number>[],
): SessionDataset {
  const indexOf = new Map<number, number>()
  const itemIds: number[] = []
  const trainIdx = train.map((session) => {
    const out = new Int32Array(session.length)
    for (let i = 0; i < session.length; i += 1) {
      const id = session[i]
      let idx = indexOf.get(id)
      if (idx === undefined) {
        idx = itemIds.length
        indexOf.set(id, idx)
        itemIds.push(id)
      }
      out[i] = idx
    }
    return out
  })
  const testIdx: Int32Array[] = []
  const published: Int32Array[] = []
  const unknownOf = new Map<number, number>()
  let droppedClicks = 0
  let droppedSessions = 0
  const kept: number[] = []
  for (const session of test) {
    kept.length = 0
    const asPublished = new Int32Array(session.length)
    for (let i = 0; i < session.length; i += 1) {
      const idx = indexOf.get(session[i])
      if (idx === undefined) {
        droppedClicks += 1
        let unknown = unknownOf.get(session[i])
        if (unknown === undefined) unknownOf.set(session[i], (unknown = -(unknownOf.size + 1)))
        asPublished[i] = unknown
      } else {
        kept.push(idx)
        asPublished[i] = idx
      }
    }
    if (session.length >= 2) published.push(asPublished)
    if (kept.length < 2) droppedSessions += 1
    else testIdx.push(Int32Array.from(kept))
  }
  return {
    name,
    nItems: itemIds.length,
    itemIds: Int32Array.from(itemIds),
    train: trainIdx,
    test: testIdx,
    dropped: { testClicks: droppedClicks, testSessions: droppedSessions },
    testAsPublished: published,
  }
}

/**
 * Finds `<base>.gz` or `<base>` in `dir`. Both at once is refused: they may differ (a stale
 * unpacked copy), and silently preferring one would hide that.
 */
export function findDataFile(dir: string, base: string): string {
  const plain = path.join(dir, base)
  const gz = `${plain}.gz`
  const hasPlain = fs.existsSync(plain)
  const hasGz = fs.existsSync(gz)
  if (hasPlain && hasGz) {
    throw new DataFormatError(dir, undefined, `only one of ${base} and ${base}.gz`, 'both')
  }
  if (hasGz) return gz
  if (hasPlain) return plain
  const present = fs.readdirSync(dir).sort().join(', ')
  throw new DataFormatError(dir, undefined, `a file ${base} or ${base}.gz`, present)
}
