import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import zlib from 'node:zlib'
import { afterAll, describe, expect, it } from 'vitest'
import { DataFormatError, quoteInput, readLines, type NumberedLine } from './read-lines'

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pocketrec-read-lines-'))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

async function collectLines(file: string): Promise<NumberedLine[]> {
  const out: NumberedLine[] = []
  for await (const l of readLines(file)) out.push(l)
  return out
}

describe('readLines', () => {
  it('numbers lines from 1 and drops the final line break', async () => {
    const file = path.join(tmp, 'plain.txt')
    fs.writeFileSync(file, 'a b\r\nc\n\nd\n')
    expect(await collectLines(file)).toEqual([
      { line: 'a b', lineNo: 1 },
      { line: 'c', lineNo: 2 },
      { line: '', lineNo: 3 },
      { line: 'd', lineNo: 4 },
    ])
  })

  it('gunzips .gz files transparently', async () => {
    const file = path.join(tmp, 'packed.txt.gz')
    fs.writeFileSync(file, zlib.gzipSync('1 2\n3 4 5'))
    expect(await collectLines(file)).toEqual([
      { line: '1 2', lineNo: 1 },
      { line: '3 4 5', lineNo: 2 },
    ])
  })

  it('rejects a missing file and a corrupt gzip stream instead of hanging', async () => {
    await expect(collectLines(path.join(tmp, 'absent.txt.gz'))).rejects.toThrow(/ENOENT/)
    const bad = path.join(tmp, 'bad.txt.gz')
    fs.writeFileSync(bad, 'not gzip at all')
    await expect(collectLines(bad)).rejects.toThrow()
  })

  it('stops cleanly when the caller breaks out early', async () => {
    const file = path.join(tmp, 'many.txt')
    fs.writeFileSync(file, 'x\n'.repeat(10_000))
    let n = 0
    for await (const _ of readLines(file)) if (++n === 3) break
    expect(n).toBe(3)
  })
})

describe('DataFormatError', () => {
  it('names file, line, expectation and input, with a stable code', () => {
    const err = new DataFormatError('train_sessions.txt.gz', 17, 'positive integer ids', '12 x 4')
    expect(err).toBeInstanceOf(Error)
    expect(err.name).toBe('DataFormatError')
    expect(err.code).toBe('E_DATA_FORMAT')
    expect(err.message).toBe(
      'train_sessions.txt.gz:17: expected positive integer ids, got "12 x 4"',
    )
    expect([err.file, err.lineNo, err.got]).toEqual(['train_sessions.txt.gz', 17, '12 x 4'])
  })

  it('cuts long inputs in the message', () => {
    expect(quoteInput('z'.repeat(500))).toMatch(/…\s\(500 chars\)$/)
    expect(quoteInput('a\tb')).toBe('"a\\tb"')
  })
})
