// A download's Range header (RFC 9110 §14): devices resume an interrupted artifact with
// `bytes=<first>-`. One range of the file's plain bytes is served; anything else is ignored
// (a 200 with the whole file, which the device takes as well), as the RFC allows.

export type RangeAnswer =
  /** No Range, or one this server ignores: the whole file, 200. */
  | { kind: 'whole' }
  /** 206 with these bytes (inclusive `end`). */
  | { kind: 'part'; start: number; end: number }
  /** 416: the range starts past the file. */
  | { kind: 'unsatisfiable' }

const SINGLE_RANGE = /^bytes=(\d{1,15})-(\d{1,15})?$/

export function answerRange(header: string | undefined, size: number): RangeAnswer {
  const match = header === undefined ? null : SINGLE_RANGE.exec(header.trim())
  if (!match) return { kind: 'whole' }
  const start = Number(match[1])
  const last = match[2] === undefined ? Infinity : Number(match[2])
  if (last < start) return { kind: 'whole' }
  if (start >= size) return { kind: 'unsatisfiable' }
  return { kind: 'part', start, end: Math.min(last, size - 1) }
}

/** The Content-Range of an answer (RFC 9110 §14.4). */
export function contentRange(answer: RangeAnswer, size: number): string | null {
  if (answer.kind === 'part') return `bytes ${answer.start}-${answer.end}/${size}`
  if (answer.kind === 'unsatisfiable') return `bytes */${size}`
  return null
}
