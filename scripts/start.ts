// npm start: everything the demo storefront needs, then the server on 127.0.0.1.
// 1. a trained model (models/<dataset>/model.prw; trains one quick epoch if there is none),
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
import { defaultModelDir, saveModel } from '../train/model-file'
import { setNodeBackend } from '../model/node-backend'
import { DEFAULT_TRAIN_SETTINGS, trainOnDataset } from '../train/train-model'
import { writeLoader } from './build-loader'

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { data: { type: 'string' }, port: { type: 'string' }, config: { type: 'string' } },
    strict: true,
  })
  const data = values.data ?? path.join(sharedDataDir(), 'diginetica-srgnn')
  const port = Number(values.port ?? process.env.PORT ?? 8080)
  const dataset = await loadDataset(data)
  const modelFile = path.join(defaultModelDir(dataset.name), 'model.prw')
  if (!existsSync(modelFile)) {
    console.log(
      `no trained model in ${path.dirname(modelFile)}: training one quick epoch and choosing its scoring bonuses (about 12 minutes;`,
    )
    console.log(`npm run bench:quality -- --data ${data} trains the full model)`)
    await setNodeBackend('wasm')
    const settings = structuredClone(DEFAULT_TRAIN_SETTINGS)
    settings.fit.epochs = 1
    const { model, report } = await trainOnDataset(dataset, settings)
    await saveModel(model, path.dirname(modelFile), {
      ...report,
      command: 'npm start',
      date: new Date().toISOString(),
    })
    model.dispose()
  }
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
