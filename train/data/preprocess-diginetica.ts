import path from 'node:path'
import { indexSessions } from './load-srgnn'
import { BlankLineGuard, DataFormatError, readLines } from './read-lines'
import type { SessionDataset } from './types'

const INT32_MAX = 2_147_483_647
const DAY_MS = 86_400_000
// SR-GNN's sample header and the CIKM Cup 2016 header; the columns mean the same.
const HEADERS = [
  'session_id;user_id;item_id;timeframe;eventdate',
  'sessionId;userId;itemId;timeframe;eventdate',
]
const INTEGER = /^-?\d+$/
const POSITIVE_INTEGER = /^[1-9]\d*$/
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/

/** SR-GNN protocol constants (`datasets/preprocess.py`, DIGINETICA branch). */
const MIN_ITEM_COUNT = 5
const MIN_SESSION_LENGTH = 2
const TEST_DAYS = 7

/** What each step of the protocol kept and dropped, for reports and for checking the split. */
export interface DigineticaStats {
  rows: number
  sessions: number
  distinctItems: number
  /** Step 2: sessions with a single click. */
  droppedLength1Sessions: number
  /** Step 3: distinct items seen < 5 times (counted after step 2). */
  droppedRareItems: number
  /** Step 3: sessions left with < 2 clicks once rare items are gone. */
  droppedShortSessions: number
  /** Sessions and distinct items that survive steps 2-3. */
  keptSessions: number
  keptItems: number
  /** Latest session date and the split day (both `YYYY-MM-DD`, UTC day arithmetic). */
  maxDate: string
  splitDate: string
  /** Step 4: sessions dated exactly on the split day, in neither split. */
  droppedOnSplitDay: number
  trainSessions: number
  trainClicks: number
  /** Prefix → next examples, Σ (L − 1). */
  trainExamples: number
  /** Distinct items of the training split = `nItems`. */
  trainItems: number
  /** Step 5: test clicks on items unseen in training, then test sessions left < 2. */
  droppedTestClicks: number
  droppedTestSessions: number
  testSessions: number
  testClicks: number
  testExamples: number
}

interface RawSession {
  items: number[]
  frames: number[]
  /** Day number (days since 1970-01-01 UTC) of the session's last row in file order. */
  day: number
}

/**
 * Turns a raw DIGINETICA click log (`train-item-views.csv`, `;`-separated, optionally gzipped)
 * into the SR-GNN/NARM split, following `CRIPAC-DIG/SR-GNN` `datasets/preprocess.py` step by step
 * (see `diginetica-srgnn/SOURCE.md`). Internal indices are SR-GNN's item numbers minus 1 and
 * `itemIds` holds the raw DIGINETICA item ids.
 */
export async function preprocessDigineticaRaw(
  file: string,
): Promise<{ dataset: SessionDataset; stats: DigineticaStats }> {
  const { sessions, rows } = await readRawSessions(file)
  const rawSessions = sessions.size
  const distinctItems = new Set<number>()
  for (const s of sessions.values()) for (const item of s.items) distinctItems.add(item)

  // Step 1 (second half): order clicks by timeframe. The script sorts the raw (item, timeframe)
  // pairs with Python's stable `sorted`, so equal timeframes keep file order; we do the same.
  for (const s of sessions.values()) s.items = sortByFrame(s)

  // Step 2: drop length-1 sessions. Item counts (step 3) are taken AFTER this, as the script
  // does; counting before it would keep items whose only support is single-click sessions.
  let droppedLength1Sessions = 0
  for (const [id, s] of sessions) {
    if (s.items.length === 1) {
      sessions.delete(id)
      droppedLength1Sessions += 1
    }
  }

  // Step 3: one counting pass, then one filtering pass (counts are not recomputed after
  // sessions disappear, so a surviving item may end below 5 occurrences; the script does this).
  const counts = new Map<number, number>()
  for (const s of sessions.values()) {
    for (const item of s.items) counts.set(item, (counts.get(item) ?? 0) + 1)
  }
  let droppedRareItems = 0
  for (const n of counts.values()) if (n < MIN_ITEM_COUNT) droppedRareItems += 1
  let droppedShortSessions = 0
  for (const [id, s] of sessions) {
    const kept = s.items.filter((item) => (counts.get(item) ?? 0) >= MIN_ITEM_COUNT)
    if (kept.length < MIN_SESSION_LENGTH) {
      sessions.delete(id)
      droppedShortSessions += 1
    } else {
      s.items = kept
    }
  }
  const keptItems = new Set<number>()
  for (const s of sessions.values()) for (const item of s.items) keptItems.add(item)

  // Step 4: whole-day dates, split = max − 7 days; `<` for train and `>` for test, so the split
  // day itself is in neither. The script uses local-time `mktime`; UTC day numbers give the same
  // comparisons without depending on the machine's time zone (or a DST change in the last week).
  if (sessions.size === 0) {
    throw new DataFormatError(file, undefined, 'sessions left after the SR-GNN filters', '')
  }
  let maxDay = -Infinity
  for (const s of sessions.values()) maxDay = Math.max(maxDay, s.day)
  const splitDay = maxDay - TEST_DAYS
  // Map iteration order = first appearance of the session id in the file, which is the order of
  // the script's dicts on Python ≥ 3.7. `sort` is stable, so same-day sessions keep that order;
  // this is our reading of "ties in dict order" (Python 2 would have used hash order instead).
  const all = [...sessions.values()]
  const trainRaw = all.filter((s) => s.day < splitDay).sort((a, b) => a.day - b.day)
  const testRaw = all.filter((s) => s.day > splitDay).sort((a, b) => a.day - b.day)

  // Step 5: renumbering by first appearance in the date-sorted training sessions and removal of
  // unseen test items is exactly what `indexSessions` does for every layout.
  const name = path.basename(path.dirname(path.resolve(file)))
  const dataset = indexSessions(
    name,
    trainRaw.map((s) => s.items),
    testRaw.map((s) => s.items),
  )
  const trainClicks = sumLengths(dataset.train)
  const testClicks = sumLengths(dataset.test)
  const stats: DigineticaStats = {
    rows,
    sessions: rawSessions,
    distinctItems: distinctItems.size,
    droppedLength1Sessions,
    droppedRareItems,
    droppedShortSessions,
    keptSessions: sessions.size,
    keptItems: keptItems.size,
    maxDate: formatDay(maxDay),
    splitDate: formatDay(splitDay),
    droppedOnSplitDay: all.length - trainRaw.length - testRaw.length,
    trainSessions: dataset.train.length,
    trainClicks,
    trainExamples: trainClicks - dataset.train.length,
    trainItems: dataset.nItems,
    droppedTestClicks: dataset.dropped?.testClicks ?? 0,
    droppedTestSessions: dataset.dropped?.testSessions ?? 0,
    testSessions: dataset.test.length,
    testClicks,
    testExamples: testClicks - dataset.test.length,
  }
  return { dataset, stats }
}

/** Reads and validates the raw CSV into sessions keyed by session id, in first-appearance order. */
async function readRawSessions(
  file: string,
): Promise<{ sessions: Map<string, RawSession>; rows: number }> {
  const sessions = new Map<string, RawSession>()
  const blanks = new BlankLineGuard(file, 'a ;-separated row')
  let sawHeader = false
  let rows = 0
  for await (const { line, lineNo } of readLines(file)) {
    if (!sawHeader) {
      const header = line.replace(/^\uFEFF/, '').trimEnd()
      if (!HEADERS.includes(header)) {
        throw new DataFormatError(file, lineNo, `the header ${HEADERS.join(' or ')}`, line)
      }
      sawHeader = true
      continue
    }
    if (blanks.skipBlank(line, lineNo)) continue
    const fields = line.trimEnd().split(';')
    if (fields.length !== 5) {
      throw new DataFormatError(file, lineNo, `5 ;-separated fields, found ${fields.length}`, line)
    }
    const [sessionId, , itemText, frameText, dateText] = fields
    if (sessionId === '') throw new DataFormatError(file, lineNo, 'a non-empty session id', line)
    if (!POSITIVE_INTEGER.test(itemText) || Number(itemText) > INT32_MAX) {
      const expected = `item_id to be an integer in 1..${INT32_MAX}`
      throw new DataFormatError(file, lineNo, expected, itemText)
    }
    if (!INTEGER.test(frameText)) {
      throw new DataFormatError(file, lineNo, 'timeframe to be an integer', frameText)
    }
    const day = parseDay(dateText)
    if (day === undefined) {
      throw new DataFormatError(file, lineNo, 'eventdate as a valid YYYY-MM-DD date', dateText)
    }
    let session = sessions.get(sessionId)
    if (session === undefined) {
      session = { items: [], frames: [], day }
      sessions.set(sessionId, session)
    }
    session.items.push(Number(itemText))
    session.frames.push(Number(frameText))
    // Step 1: the script keeps the date of the session's last row in file order.
    session.day = day
    rows += 1
  }
  if (!sawHeader) throw new DataFormatError(file, 1, `the header ${HEADERS[0]}`, '')
  return { sessions, rows }
}

/** Days since 1970-01-01 for a calendar-valid `YYYY-MM-DD`, else undefined. */
function parseDay(text: string): number | undefined {
  const match = ISO_DATE.exec(text)
  if (!match) return undefined
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])]
  const ms = Date.UTC(year, month - 1, day)
  const back = new Date(ms)
  // Date.UTC rolls 2016-02-30 over to March 1st; the round trip catches such dates.
  if (back.getUTCFullYear() !== year || back.getUTCMonth() !== month - 1) return undefined
  if (back.getUTCDate() !== day) return undefined
  return ms / DAY_MS
}

function formatDay(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10)
}

function sortByFrame(session: RawSession): number[] {
  const { items, frames } = session
  const order = items.map((_, i) => i).sort((a, b) => frames[a] - frames[b])
  return order.map((i) => items[i])
}

function sumLengths(sessions: Int32Array[]): number {
  let n = 0
  for (const s of sessions) n += s.length
  return n
}
