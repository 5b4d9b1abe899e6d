// npm run eval -- --data <folder> --model <file>: the full protocol on the test split.
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { countItems } from '../data/examples'
import { loadDataset } from '../data/load-dataset'
import { evaluateScorer, formatReportTable } from '../../model/eval/evaluate'
import { createGruScorer } from '../../model/eval/gru-scorer'
import { loadModel } from '../model-file'
import { setNodeBackend } from '../../model/node-backend'
import { backendFromArgs } from './train-options'
import { createProgressLine } from '../progress'

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { data: { type: 'string' }, model: { type: 'string' }, backend: { type: 'string' } },
    strict: true,
  })
  if (!values.data || !values.model) throw new Error('expected --data <folder> --model <file>')
  await setNodeBackend(backendFromArgs(values.backend))
  const dataset = await loadDataset(values.data)
  const model = await loadModel(values.model)
  if (model.config.nItems !== dataset.nItems) {
    throw new Error(
      `expected a model over ${dataset.nItems} items for ${dataset.name}, got ${model.config.nItems}`,
    )
  }
  const scorer = createGruScorer(model)
  const progress = createProgressLine(process.stderr, 10)
  // Every case of the split as published: an item unseen in training is a miss (issue 16).
  const report = await evaluateScorer(scorer, dataset.testAsPublished ?? dataset.test, {
    nItems: dataset.nItems,
    trainCounts: countItems(dataset.train, dataset.nItems),
    maxPrefixLen: model.config.maxLen,
    onProgress: (done, total) => progress.update(`evaluating ${done}/${total} cases`),
  })
  progress.done()
  console.log(formatReportTable([report]))
  console.log(
    `${report.cases} cases; ${report.unknownTargets} with a target unseen in training and ` +
      `${report.unknownPrefixes} with no known item before it, counted as misses`,
  )
  const out = path.join(path.dirname(path.resolve(values.model)), `eval-${dataset.name}.json`)
  await writeFile(
    out,
    JSON.stringify(
      { dataset: dataset.name, model: values.model, date: new Date().toISOString(), report },
      null,
      2,
    ),
  )
  console.log(`written ${out}`)
  scorer.dispose?.()
  model.dispose()
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? `${error.name}: ${error.message}` : error)
  process.exit(1)
})
