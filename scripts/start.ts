// npm start: everything the demo storefront needs, then the server on 127.0.0.1.
// 1. the model devices get (models/<dataset>/shipped.prw; one quick epoch if there is none),
// 2. the artifacts devices download (public/artifacts, rebuilt when the model is newer),
// 3. the demo, worker and script-tag bundles (dist/), 4. the HTTP server.
import { existsSync, rmSync, statSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { build } from 'vite'
import { startServer } from '../server/main'
import { decodeWeights } from '../shared/weights-codec'
import { exportArtifacts } from '../train/artifacts/export-artifacts'
import { loadDataset } from '../train/data/load-dataset'
import { sharedDataDir } from '../train/data/paths'
import {
  defaultModelDir,
  loadModel,
  saveModel,
  saveShippedModel,
  SHIPPED_MODEL_FILE,
} from '../train/model-file'
import type { SessionDataset } from '../train/data/types'
import type { GruModel } from '../model/gru-model'
import { setNodeBackend } from '../model/node-backend'
import { DEFAULT_TRAIN_SETTINGS, fitShippedForm, trainOnDataset } from '../train/train-model'
import { writeLoader } from './build-loader'

/**
 * models/<dataset>/shipped.prw, from the trained model.prw when there is one (trained on in its
 * shipped form, as `npm run train` does), else from one quick epoch whose k-means quantisation
 * ships as is (about 5 minutes in all).
 */
async function makeShippedModel(dataset: SessionDataset, dir: string, data: string) {
  await setNodeBackend('wasm')
  const floatFile = path.join(dir, 'model.prw')
  const settings = structuredClone(DEFAULT_TRAIN_SETTINGS)
  let model: GruModel
  if (existsSync(floatFile)) {
    console.log(`training ${floatFile} on in its shipped form …`)
    model = await loadModel(floatFile)
  } else {
    console.log(`no trained model in ${dir}: training one quick epoch (about 5 minutes;`)
    console.log(`npm run bench:quality -- --data ${data} trains the full model)`)
    settings.fit.epochs = 1
    settings.shipped.epochs = 0
    const trained = await trainOnDataset(dataset, settings)
    model = trained.model
    await saveModel(model, dir, { ...trained.report, command: 'npm start', date: stamp() })
  }
  const shipped = await fitShippedForm(model, dataset, settings)
  await saveShippedModel(shipped.model, dir, {
    ...shipped.report,
    command: 'npm start',
    date: stamp(),
  })
  shipped.model.dispose()
  model.dispose()
}

const stamp = () => new Date().toISOString()

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { data: { type: 'string' }, port: { type: 'string' }, config: { type: 'string' } },
    strict: true,
  })
  const data = values.data ?? path.join(sharedDataDir(), 'diginetica-srgnn')
  const port = Number(values.port ?? process.env.PORT ?? 8080)
  const dataset = await loadDataset(data)
  const dir = defaultModelDir(dataset.name)
  const modelFile = path.join(dir, SHIPPED_MODEL_FILE)
  if (!existsSync(modelFile)) await makeShippedModel(dataset, dir, data)
  const manifest = path.resolve('public/artifacts/manifest.json')
  if (!existsSync(manifest) || statSync(manifest).mtimeMs < statSync(modelFile).mtimeMs) {
    console.log('exporting artifacts to public/artifacts …')
    const weights = decodeWeights(await readFile(modelFile))
    await exportArtifacts({ dataset, model: weights, outDir: path.resolve('public/artifacts') })
    // The demo's store was seeded from the previous export: start it again from this one.
    rmSync(path.resolve('.data'), { recursive: true, force: true })
  }
  console.log('building the storefront, worker and script tag …')
  await build({ configFile: path.resolve('vite.config.ts'), logLevel: 'warn' })
  await writeLoader(path.resolve('dist'))
  // The demo aggregates too: an embedded SQLite store in .data/, seeded from this export, with
  // a stand-in helper of the two-server channel in the same process (P29c).
  // --config (or POCKETREC_CONFIG): the shop's site, keys and origins (README "Configuration").
  await startServer({
    port,
    distDir: path.resolve('dist'),
    configFile: values.config,
    federation: { artifactsDir: path.resolve('public/artifacts'), helper: 'stand-in' },
  })
  console.log(
    `\nPocket Market (the demo storefront) is at http://127.0.0.1:${port}/  — Ctrl-C to stop`,
  )
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? `${error.name}: ${error.message}` : error)
  process.exit(1)
})
