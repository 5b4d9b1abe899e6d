// Evaluates the baselines on one SR-GNN-layout folder and prints a markdown table:
//   npx tsx train/eval/run-baselines.ts [folder] [--only POP,S-POP,Item-KNN,S-KNN] [--validation]
// `--validation` fits on the first 90 % of the training sessions and evaluates on the last 10 %,
// the split to tune on; without it the full training set is used and the test set is scored.

import path from 'node:path'
import { parseArgs } from 'node:util'
import { countItems, splitValidation } from '../data/examples'
import { loadSrgnnFolder } from '../data/load-srgnn'
import { sharedDataDir } from '../data/paths'
import { createItemKnnScorer } from './baselines/item-knn'
import { createPopScorer } from './baselines/pop'
import { createSKnnScorer } from './baselines/s-knn'
import { createSPopScorer } from './baselines/s-pop'
import { evaluateScorer, formatReportTable, type EvalReport } from '../../model/eval/evaluate'
import type { SessionScorer } from '../../model/eval/scorer'

const factories: Record<string, (train: Int32Array[], nItems: number) => SessionScorer> = {
  POP: createPopScorer,
  'S-POP': createSPopScorer,
  'Item-KNN': createItemKnnScorer,
  'S-KNN': createSKnnScorer,
}

async function runBaselines(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { only: { type: 'string' }, validation: { type: 'boolean', default: false } },
  })
  const dir = positionals[0] ?? path.join(sharedDataDir(), 'diginetica-srgnn')
  const names = values.only?.split(',') ?? Object.keys(factories)
  for (const name of names) {
    if (!(name in factories)) {
      throw new Error(`expected baselines among ${Object.keys(factories).join(', ')}, got ${name}`)
    }
  }
  const data = await loadSrgnnFolder(dir)
  const { fit, validation } = splitValidation(data.train, 0.1)
  const [train, test] = values.validation
    ? [fit, validation.filter((s) => s.length >= 2)]
    : [data.train, data.test]
  const trainCounts = countItems(train, data.nItems)
  const split = values.validation ? 'last 10 % of train' : 'test'
  console.log(`${data.name}: ${train.length} training sessions, evaluated on ${split}`)

  const reports: EvalReport[] = []
  for (const name of names) {
    const builtAt = performance.now()
    const scorer = factories[name](train, data.nItems)
    const buildS = (performance.now() - builtAt) / 1000
    const report = await evaluateScorer(scorer, test, { nItems: data.nItems, trainCounts })
    scorer.dispose?.()
    const evalS = (report.msPerCase * report.cases) / 1000
    console.log(`${name}: built in ${buildS.toFixed(1)} s, evaluated in ${evalS.toFixed(1)} s`)
    reports.push(report)
  }
  console.log(formatReportTable(reports))
}

await runBaselines()
