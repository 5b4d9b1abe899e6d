// Test helpers for the loaders: throwaway data folders and the error they must raise.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import zlib from 'node:zlib'
import { afterAll, expect } from 'vitest'
import { DataFormatError } from './read-lines'

/** A temp root removed after the file's tests; `writeFolder` makes one case folder in it. */
export function useTempFolders(prefix: string) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `pocketrec-${prefix}-`))
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }))
  let caseNo = 0
  return {
    root,
    /** Files by name (`.gz` names are gzipped) in a fresh folder; returns the folder. */
    writeFolder(files: Record<string, string>): string {
      const dir = path.join(root, `case-${++caseNo}`)
      fs.mkdirSync(dir)
      for (const [name, text] of Object.entries(files)) {
        fs.writeFileSync(path.join(dir, name), name.endsWith('.gz') ? zlib.gzipSync(text) : text)
      }
      return dir
    },
  }
}

/** Awaits a promise that must reject with a DataFormatError, and returns that error. */
export async function catchDataError(promise: Promise<unknown>): Promise<DataFormatError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(DataFormatError)
  return err as DataFormatError
}
