import fs from 'node:fs'
import path from 'node:path'
import { findSessionRecPrefix, loadSessionRecFolder } from './load-session-rec'
import { loadSrgnnFolder } from './load-srgnn'
import { preprocessDigineticaRaw } from './preprocess-diginetica'
import { DataFormatError } from './read-lines'
import type { SessionDataset } from './types'

export type DatasetLayout = 'srgnn' | 'session-rec' | 'diginetica-raw'

const RAW_CSV = /\.csv(\.gz)?$/
const LOOKED_FOR =
  'train_sessions.txt(.gz) + test_sessions.txt(.gz) (SR-GNN), ' +
  '<name>_train_full.txt(.gz) + <name>_test.txt(.gz) (session-rec), ' +
  'or one raw DIGINETICA *.csv(.gz)'

/**
 * Which layout `dir` holds. When several match, the first of SR-GNN, session-rec, raw CSV wins:
 * an already split folder is what the benchmarks were computed on, a raw log is only re-derived.
 */
export function detectLayout(dir: string): DatasetLayout {
  const names = fs.readdirSync(dir)
  const has = (base: string) => names.includes(base) || names.includes(`${base}.gz`)
  if (has('train_sessions.txt') && has('test_sessions.txt')) return 'srgnn'
  const prefix = findSessionRecPrefix(dir)
  if (prefix !== undefined && has(`${prefix}_test.txt`)) return 'session-rec'
  if (names.filter((n) => RAW_CSV.test(n)).length === 1) return 'diginetica-raw'
  throw new DataFormatError(dir, undefined, LOOKED_FOR, names.sort().join(', '))
}

/**
 * Loads any supported dataset folder (or a raw DIGINETICA CSV file given directly) as a
 * `SessionDataset`; a raw log goes through the SR-GNN preprocessing first.
 */
export async function loadDataset(dirOrFile: string): Promise<SessionDataset> {
  if (fs.statSync(dirOrFile).isFile()) {
    if (!RAW_CSV.test(dirOrFile)) {
      throw new DataFormatError(dirOrFile, undefined, LOOKED_FOR, path.basename(dirOrFile))
    }
    return (await preprocessDigineticaRaw(dirOrFile)).dataset
  }
  switch (detectLayout(dirOrFile)) {
    case 'srgnn':
      return loadSrgnnFolder(dirOrFile)
    case 'session-rec':
      return loadSessionRecFolder(dirOrFile)
    case 'diginetica-raw': {
      const csv = fs.readdirSync(dirOrFile).find((n) => RAW_CSV.test(n)) ?? ''
      return (await preprocessDigineticaRaw(path.join(dirOrFile, csv))).dataset
    }
  }
}
