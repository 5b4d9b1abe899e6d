import fs from 'node:fs'
import path from 'node:path'
import { findDataFile, indexSessions } from './load-srgnn'
import { BlankLineGuard, DataFormatError, readLines } from './read-lines'
import type { SessionDataset } from './types'

const INT32_MAX = 2_147_483_647
const REQUIRED_COLUMNS = ['SessionId', 'ItemId', 'Time'] as const
const HEADER_EXPECTED = 'a tab-separated header with columns SessionId, ItemId and Time'
const INTEGER = /^\d+$/
// Unix seconds, possibly with a fraction (session-rec writes milliseconds after the point).
const DECIMAL = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/
const TRAIN_FULL = /^(.+)_train_full\.txt(\.gz)?$/

/** One session of a session-rec file, clicks in time order. */
export interface TimedSession {
  sessionId: string
  /** Original item ids, as in the file. */
  items: number[]
  /** Click times in the file's unit (Unix seconds for session-rec), ascending. */
  times: number[]
}

/**
 * Loads a folder in the session-rec / GRU4Rec layout: `<prefix>_train_full.txt(.gz)` as training
 * and `<prefix>_test.txt(.gz)` as test (the `_train_tr` / `_train_valid` files are ignored: we
 * carve validation ourselves). Sessions are ordered by their first click time.
 */
export async function loadSessionRecFolder(dir: string): Promise<SessionDataset> {
  const prefix = findSessionRecPrefix(dir)
  if (prefix === undefined) {
    const present = fs.readdirSync(dir).sort().join(', ')
    throw new DataFormatError(dir, undefined, 'a file <name>_train_full.txt(.gz)', present)
  }
  const trainFile = findDataFile(dir, `${prefix}_train_full.txt`)
  const testFile = findDataFile(dir, `${prefix}_test.txt`)
  const [train, test] = await Promise.all([
    parseSessionRecTsv(trainFile),
    parseSessionRecTsv(testFile),
  ])
  if (train.length === 0) {
    throw new DataFormatError(trainFile, undefined, 'at least one training session', '')
  }
  return indexSessions(
    path.basename(path.resolve(dir)),
    train.map((s) => s.items),
    test.map((s) => s.items),
  )
}

/**
 * The `<prefix>` of the single `<prefix>_train_full.txt(.gz)` in `dir`, undefined when there is
 * none; several different prefixes are an error (we would not know which pair to load).
 */
export function findSessionRecPrefix(dir: string): string | undefined {
  const prefixes = new Set<string>()
  for (const name of fs.readdirSync(dir)) {
    const match = TRAIN_FULL.exec(name)
    if (match) prefixes.add(match[1])
  }
  if (prefixes.size > 1) {
    const names = [...prefixes].sort().join(', ')
    throw new DataFormatError(dir, undefined, 'one <name>_train_full.txt(.gz)', names)
  }
  return prefixes.values().next().value
}

/**
 * Reads a session-rec TSV (header naming SessionId, ItemId and Time; other columns are allowed
 * and ignored) into sessions: rows grouped by SessionId wherever they appear, clicks sorted by
 * Time (stable, so equal times keep file order), sessions sorted by their first click time
 * (stable too: ties keep the order of first appearance in the file).
 */
export async function parseSessionRecTsv(file: string): Promise<TimedSession[]> {
  const byId = new Map<string, TimedSession>()
  const blanks = new BlankLineGuard(file, 'a tab-separated row')
  let columns: { count: number; session: number; item: number; time: number } | undefined
  for await (const { line, lineNo } of readLines(file)) {
    if (columns === undefined) {
      columns = parseHeader(file, line)
      continue
    }
    if (blanks.skipBlank(line, lineNo)) continue
    const fields = line.split('\t')
    if (fields.length !== columns.count) {
      const expected = `${columns.count} tab-separated columns (as in the header)`
      throw new DataFormatError(file, lineNo, `${expected}, found ${fields.length}`, line)
    }
    const sessionId = fields[columns.session]
    const itemText = fields[columns.item]
    const timeText = fields[columns.time]
    if (sessionId === '') throw new DataFormatError(file, lineNo, 'a non-empty SessionId', line)
    if (!INTEGER.test(itemText) || Number(itemText) > INT32_MAX) {
      const expected = `ItemId to be an integer in 0..${INT32_MAX}`
      throw new DataFormatError(file, lineNo, expected, itemText)
    }
    if (!DECIMAL.test(timeText)) {
      throw new DataFormatError(file, lineNo, 'Time to be a number (Unix seconds)', timeText)
    }
    let session = byId.get(sessionId)
    if (session === undefined) {
      session = { sessionId, items: [], times: [] }
      byId.set(sessionId, session)
    }
    session.items.push(Number(itemText))
    session.times.push(Number(timeText))
  }
  if (columns === undefined) throw new DataFormatError(file, 1, HEADER_EXPECTED, '')
  const sessions = [...byId.values()].map(sortClicksByTime)
  // Array.prototype.sort is stable (ES2019), which the tie rules above rely on.
  return sessions.sort((a, b) => a.times[0] - b.times[0])
}

function parseHeader(
  file: string,
  line: string,
): { count: number; session: number; item: number; time: number } {
  // Strip a byte-order mark: spreadsheet exports add one and it would hide the first column.
  const names = line.replace(/^\uFEFF/, '').split('\t')
  const [session, item, time] = REQUIRED_COLUMNS.map((c) => names.indexOf(c))
  if (session < 0 || item < 0 || time < 0) throw new DataFormatError(file, 1, HEADER_EXPECTED, line)
  return { count: names.length, session, item, time }
}

function sortClicksByTime(session: TimedSession): TimedSession {
  const { times, items } = session
  let sorted = true
  for (let i = 1; i < times.length && sorted; i += 1) sorted = times[i - 1] <= times[i]
  // Files are normally already time-ordered within a session; skip the index sort then.
  if (sorted) return session
  const order = times.map((_, i) => i).sort((a, b) => times[a] - times[b])
  return {
    sessionId: session.sessionId,
    items: order.map((i) => items[i]),
    times: order.map((i) => times[i]),
  }
}
