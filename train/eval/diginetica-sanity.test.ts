// End-to-end check of the protocol on the real DIGINETICA SR-GNN split: POP and S-POP must
// reproduce the sanity values in ../shared/data/diginetica-srgnn/SOURCE.md (60,858 cases).

import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { countItems } from '../data/examples'
import { loadSrgnnFolder } from '../data/load-srgnn'
import { sharedDataDir } from '../data/paths'
import type { SessionDataset } from '../data/types'
import { createPopScorer } from './baselines/pop'
import { createSPopScorer } from './baselines/s-pop'
import { evaluateScorer, type EvalReport } from '../../model/eval/evaluate'
import type { SessionScorer } from '../../model/eval/scorer'

let dataset: Promise<SessionDataset> | undefined

async function evaluateOnDiginetica(
  createScorer: (train: Int32Array[], nItems: number) => SessionScorer,
): Promise<EvalReport> {
  dataset ??= loadSrgnnFolder(path.join(sharedDataDir(), 'diginetica-srgnn'))
  const { train, testAsPublished, nItems } = await dataset
  const trainCounts = countItems(train, nItems)
  // The split as published, as bench:quality scores it (issue 16): every case counts.
  return evaluateScorer(createScorer(train, nItems), testAsPublished!, { nItems, trainCounts })
}

// The sanity values are rounded to 0.01 points; 0.2 points leaves room for tie handling.
const TOLERANCE = 0.002

describe('baselines on DIGINETICA (SR-GNN split)', () => {
  it('POP reproduces Recall@20 0.93 % and MRR@20 0.21 % over all 60,858 cases', async () => {
    const report = await evaluateOnDiginetica(createPopScorer)
    expect(report.cases).toBe(60_858)
    // The SR-GNN split names no item its training part lacks.
    expect([report.unknownTargets, report.unknownPrefixes]).toEqual([0, 0])
    expect(Math.abs(report.metrics['recall@20'] - 0.0093)).toBeLessThan(TOLERANCE)
    expect(Math.abs(report.metrics['mrr@20'] - 0.0021)).toBeLessThan(TOLERANCE)
  })

  it('S-POP reproduces Recall@20 21.08 % and MRR@20 13.69 %', async () => {
    const report = await evaluateOnDiginetica(createSPopScorer)
    expect(report.cases).toBe(60_858)
    expect(Math.abs(report.metrics['recall@20'] - 0.2108)).toBeLessThan(TOLERANCE)
    expect(Math.abs(report.metrics['mrr@20'] - 0.1369)).toBeLessThan(TOLERANCE)
  })
})
