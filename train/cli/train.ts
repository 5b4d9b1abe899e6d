// npm run train -- --data <folder> [options]: offline (T-1) training with a live progress line;
// writes the model and a JSON report to models/<dataset>/ (git-ignored). With --tune <minutes>,
// the settings are first searched on the validation split (tune.ts), and the trials recorded.
import { parseArgs } from 'node:util'
import { describeCommand, describeMachine } from '../progress'
import path from 'node:path'
import { loadDataset } from '../data/load-dataset'
import { defaultModelDir, saveModel } from '../model-file'
import { setNodeBackend } from '../../model/node-backend'
import { trainOnDataset } from '../train-model'
import { printTrials, tuneSettings } from '../tune'
import {
  backendFromArgs,
  TRAIN_OPTIONS,
  settingsFromArgs,
  tuneMinutesFromArgs,
} from './train-options'

async function main(): Promise<void> {
  const { values } = parseArgs({ options: TRAIN_OPTIONS, strict: true })
  if (!values.data)
    throw new Error('expected --data <folder> (e.g. ../shared/data/diginetica-srgnn)')
  await setNodeBackend(backendFromArgs(values.backend))
  const dataset = await loadDataset(values.data)
  const tuneMinutes = tuneMinutesFromArgs(values)
  const tuned =
    tuneMinutes === undefined
      ? undefined
      : await tuneSettings(dataset, settingsFromArgs(values), { budgetMinutes: tuneMinutes })
  if (tuned) printTrials(tuned)
  const settings = tuned?.best ?? settingsFromArgs(values)
  const { model, report } = await trainOnDataset(dataset, settings)
  const dir = values.out ? path.resolve(values.out) : defaultModelDir(dataset.name)
  const bytes = await saveModel(model, dir, {
    ...report,
    ...(tuned ? { tune: { trials: tuned.trials, seconds: tuned.seconds } } : {}),
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
