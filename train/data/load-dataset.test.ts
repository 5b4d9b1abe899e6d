import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { detectLayout, loadDataset } from './load-dataset'
import { sharedDataDir } from './paths'
import { DataFormatError } from './read-lines'

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pocketrec-load-dataset-'))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

describe('detectLayout', () => {
  it('recognises the three shared folders', () => {
    const detect = (name: string) => detectLayout(path.join(sharedDataDir(), name))
    expect(detect('diginetica-srgnn')).toBe('srgnn')
    expect(detect('yoochoose-clicks-100k-sessionrec')).toBe('session-rec')
    expect(detect('diginetica-sample-raw')).toBe('diginetica-raw')
  })

  it('lists what it looked for and what it found when nothing matches', () => {
    fs.writeFileSync(path.join(tmp, 'train.txt'), '1 2\n')
    let err: unknown
    try {
      detectLayout(tmp)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(DataFormatError)
    expect((err as DataFormatError).message).toMatch(
      /expected train_sessions\.txt\(\.gz\) \+ test_sessions\.txt\(\.gz\) \(SR-GNN\), .*_train_full.*raw DIGINETICA.*got "train\.txt"/,
    )
  })
})

describe('loadDataset', () => {
  it('loads the raw sample through the SR-GNN preprocessing, by folder or by file', async () => {
    const dir = path.join(sharedDataDir(), 'diginetica-sample-raw')
    const byDir = await loadDataset(dir)
    expect([byDir.train.length, byDir.test.length, byDir.nItems]).toEqual([469, 39, 309])
    const byFile = await loadDataset(path.join(dir, 'sample_train-item-views.csv.gz'))
    expect(byFile.itemIds).toEqual(byDir.itemIds)
  })

  it('loads the session-rec folder', async () => {
    const data = await loadDataset(path.join(sharedDataDir(), 'yoochoose-clicks-100k-sessionrec'))
    expect([data.train.length, data.test.length]).toEqual([17_794, 3_416])
  })

  it('refuses a file that is not a raw CSV', async () => {
    const file = path.join(tmp, 'train.txt')
    await expect(loadDataset(file)).rejects.toThrow(/got "train\.txt"/)
  })
})
