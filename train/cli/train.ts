// npm run train -- --data <folder> [options]: offline (T-1) training with a live progress line;
// writes the model and a JSON report to models/<dataset>/ (git-ignored).
import { parseArgs } from 'node:util'
import { describeCommand, describeMachine } from '../progress'
import path from 'node:path'
import { loadDataset } from '../data/load-dataset'
import { defaultModelDir, saveModel } from '../model-file'
import { setNodeBackend } from '../../model/node-backend'
import { trainOnDataset } from '../train-model'
import { backendFromArgs, TRAIN_OPTIONS, settingsFromArgs } from './train-options'

async function main(): Promise<void> {
  const { values } = parseArgs({ options: TRAIN_OPTIONS, strict: true })
  if (!values.data)
    throw new Error('expected --data <folder> (e.g. ../shared/data/diginetica-srgnn)')
  await setNodeBackend(backendFromArgs(values.backend))
  const dataset = await loadDataset(values.data)
  const settings = settingsFromArgs(values)
  const { model, report } = await trainOnDataset(dataset, settings)
  const dir = values.out ? path.resolve(values.out) : defaultModelDir(dataset.name)
  const bytes = await saveModel(model, dir, {
    ...report,
    command: describeCommand('train'),
    machine: describeMachine(),
    date: new Date().toISOString(),
  })
  console.log(
    `model written to ${path.join(dir, 'model.prw')} (${bytes.float32} B; float16 ${bytes.float16} B, int8 ${bytes.int8} B)`,
  )
  model.dispose()
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? `${error.name}: ${error.message}` : error)
  process.exit(1)
})
