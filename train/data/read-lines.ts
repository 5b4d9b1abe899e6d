import fs from 'node:fs'
import readline from 'node:readline'
import zlib from 'node:zlib'
import { PocketrecError } from '../../shared/errors'

/** One line of a text file, without its line break; `lineNo` counts from 1. */
export interface NumberedLine {
  line: string
  lineNo: number
}

// Longer inputs are cut in messages so that one bad multi-megabyte line does not flood a log.
const MAX_QUOTED_CHARS = 80

/**
 * A data file does not have the expected format. The message names the file, the line (when
 * there is one), what was expected and what arrived, so that a reader can open the file there.
 */
export class DataFormatError extends PocketrecError<'E_DATA_FORMAT'> {
  readonly file: string
  readonly lineNo: number | undefined
  readonly expected: string
  readonly got: string

  /** `got` is the offending text as read; it is quoted (and cut) in the message. */
  constructor(file: string, lineNo: number | undefined, expected: string, got: string) {
    const where = lineNo === undefined ? file : `${file}:${lineNo}`
    super(
      'DataFormatError',
      'E_DATA_FORMAT',
      `${where}: expected ${expected}, got ${quoteInput(got)}`,
    )
    this.file = file
    this.lineNo = lineNo
    this.expected = expected
    this.got = got
  }
}

/** JSON-quotes `text` for an error message, cutting it to a readable length. */
export function quoteInput(text: string): string {
  if (text.length <= MAX_QUOTED_CHARS) return JSON.stringify(text)
  return `${JSON.stringify(text.slice(0, MAX_QUOTED_CHARS))}… (${text.length} chars)`
}

/**
 * Streams the lines of `file`, gunzipping it when the name ends in `.gz`. Both `\n` and `\r\n`
 * end a line; a final line break does not produce an empty last line. Read errors, including a
 * corrupt or truncated gzip stream, reject the iteration.
 */
export async function* readLines(file: string): AsyncGenerator<NumberedLine> {
  const raw = fs.createReadStream(file)
  let input: NodeJS.ReadableStream = raw
  if (file.endsWith('.gz')) {
    const gunzip = zlib.createGunzip()
    // `pipe` does not forward errors: without this an unreadable file would hang the reader.
    raw.on('error', (err) => gunzip.destroy(err))
    input = raw.pipe(gunzip)
  }
  const lines = readline.createInterface({ input, crlfDelay: Infinity })
  let lineNo = 0
  try {
    for await (const line of lines) {
      lineNo += 1
      yield { line, lineNo }
    }
  } finally {
    // Reached early when the caller stops (e.g. on a format error): release the file handle.
    lines.close()
    raw.destroy()
  }
}

/**
 * Tracks blank lines so that only trailing ones are accepted: a blank line followed by data is
 * reported at the blank line, since a hole in a session file usually means a broken export.
 */
export class BlankLineGuard {
  private pendingBlank: number | undefined

  constructor(
    private readonly file: string,
    private readonly expected: string,
  ) {}

  /** Returns true for a blank line (to be skipped); throws when data follows a blank line. */
  skipBlank(line: string, lineNo: number): boolean {
    if (line.trim() === '') {
      this.pendingBlank ??= lineNo
      return true
    }
    if (this.pendingBlank !== undefined) {
      throw new DataFormatError(this.file, this.pendingBlank, this.expected, '')
    }
    return false
  }
}
