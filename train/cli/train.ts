// npm run train -- --data <folder> [options]: offline (T-1) training with a live progress line;
// writes the model and a JSON report to models/<dataset>/ (git-ignored). With --tune <minutes>,
// the settings are first searched on the validation split (tune.ts), and the trials recorded;
// the search's journal in <out>/tune/ lets the same command resume it.
import { parseArgs } from 'node:util'
import { describeCommand, describeMachine } from '../progress'
import path from 'node:path'
import { loadDataset } from '../data/load-dataset'
import { defaultModelDir, saveModel } from '../model-file'
import { setNodeBackend } from '../../model/node-backend'
import { trainOnDataset } from '../train-model'
import { printTrials, trainTuned, tuneSettings } from '../tune'
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
  const dir = values.out ? path.resolve(values.out) : defaultModelDir(dataset.name)
  const tuneMinutes = tuneMinutesFromArgs(values)
  // The search is journalled beside the model: the same command resumes it (tune.ts).
  const tuned =
    tuneMinutes === undefined
      ? undefined
      : await tuneSettings(dataset, settingsFromArgs(values), {
          budgetMinutes: tuneMinutes,
          journal: path.join(dir, 'tune'),
        })
  if (tuned) printTrials(tuned)
  const { model, report } = tuned
    ? await trainTuned(dataset, tuned)
    : await trainOnDataset(dataset, settingsFromArgs(values))
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
