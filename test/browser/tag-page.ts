// A bare shop page with the script tag, served the way a shop would serve it: the vite build of
// the worker (and demo), the loader, the trainer's artifacts and the Hono app on 127.0.0.1.
// Used by the backend parity test and `npm run bench:browser`.
import { catalogueFrom } from '../fixtures/read-artifact'
import { serve } from '@hono/node-server'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { build, type Rollup } from 'vite'
import type { BackendName } from '../../shared/protocol'
import { writeLoader } from '../../scripts/build-loader'
import { createApp } from '../../server/app'
import { writeTestRelease } from '../fixtures/exported-release'
import { createGruModel, DEFAULT_GRU_CONFIG } from '../../model/gru-model'
import { exportModelWeights } from '../../model/model-weights'
import { setNodeBackend } from '../../model/node-backend'
import { exportArtifacts } from '../../train/artifacts/export-artifacts'
import { loadDataset } from '../../train/data/load-dataset'
import { sharedDataDir } from '../../train/data/paths'
import type { FederationOptions } from '../../server/config'
import { startMountedPair, type MountedPair } from '../fixtures/listen'
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './harness'

/** Builds the worker, demo and loader into `distDir`, with `publicDir` (artifacts/) copied in. */
export async function buildDist(publicDir: string, distDir: string): Promise<Rollup.OutputChunk[]> {
  const output = await build({
    configFile: path.resolve('vite.config.ts'),
    publicDir,
    logLevel: 'error',
    build: { outDir: distDir, emptyOutDir: true },
  })
  await writeLoader(distDir)
  const outputs = (Array.isArray(output) ? output : [output]) as Rollup.RollupOutput[]
  return outputs.flatMap((o) => o.output.filter((c): c is Rollup.OutputChunk => c.type === 'chunk'))
}

/**
 * The artifacts of a small real catalogue (the YooChoose sample) and an untrained model (seed 1)
 * into `<publicDir>/artifacts`: a fast build for tests of the flow; quality is measured elsewhere.
 */
export async function exportSampleRelease(publicDir: string): Promise<void> {
  await setNodeBackend('cpu')
  const dataset = await loadDataset(path.join(sharedDataDir(), 'yoochoose-clicks-100k-sessionrec'))
  const model = createGruModel({ ...DEFAULT_GRU_CONFIG, nItems: dataset.nItems }, 1)
  const weights = await exportModelWeights(model)
  model.dispose()
  await exportArtifacts({
    dataset,
    model: weights,
    outDir: path.join(publicDir, 'artifacts'),
    createdAt: '2026-11-27T00:00:00.000Z',
  })
}

/** Writes `<name>.html`: the shop's two lines, the tag forcing `backend`, nothing else. */
export async function writeTagPage(
  distDir: string,
  name: string,
  backend: BackendName,
  extraHead = '',
): Promise<string> {
  await writeFile(
    path.join(distDir, `${name}.html`),
    '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>tag page</title>' +
      extraHead +
      '<script>window.pocketrec = window.pocketrec || []</script>' +
      `<script async src="/pocketrec.js" data-site="test-shop" data-endpoint="/" data-backend="${backend}"></script>\n`,
  )
  return `/${name}.html`
}

/** Serves `distDir` with the real server app on 127.0.0.1 and a port the OS picks. */
export async function serveDist(distDir: string): Promise<{ origin: string; close(): void }> {
  const app = createApp({ distDir: path.relative(process.cwd(), distDir) })
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' })
  await new Promise((resolve) => server.once('listening', resolve))
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => server.close(),
  }
}

/** A fresh Chromium profile (its own IndexedDB); `close` deletes it. */
export async function openProfile(
  log: string[] = [],
): Promise<{ context: BrowserContext; page: Page; close(): Promise<void> }> {
  const profile = await mkdtemp(path.join(tmpdir(), 'pocketrec-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 30_000,
  })
  const page = context.pages()[0] ?? (await context.newPage())
  page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`))
  page.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`))
  return {
    context,
    page,
    close: async () => {
      await context.close().catch(() => undefined)
      await rm(profile, { recursive: true, force: true })
    },
  }
}

/** Resolves once the tag has replaced the queue with the command function. */
export async function waitForTag(page: Page): Promise<void> {
  await page.waitForFunction(
    () => typeof (window as unknown as { pocketrec?: unknown }).pocketrec === 'function',
    undefined,
    { timeout: 30_000 },
  )
}

/**
 * One record of the worker's database as the page's origin holds it (`store`, `key`), or
 * undefined. It looks for the database first: opening one that is not there would create it,
 * empty, under the worker's feet.
 */
export function readStoredRecord(page: Page, store: string, key: string): Promise<unknown> {
  return page.evaluate(
    async ([store, key]) => {
      const names = (await indexedDB.databases()).map((db) => db.name)
      if (!names.includes('pocketrec')) return undefined
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        const open = indexedDB.open('pocketrec')
        open.onsuccess = () => resolve(open.result)
        open.onerror = () => reject(open.error)
      })
      try {
        if (!db.objectStoreNames.contains(store)) return undefined
        return await new Promise<unknown>((resolve, reject) => {
          const get = db.transaction(store).objectStore(store).get(key)
          get.onsuccess = () => resolve(get.result)
          get.onerror = () => reject(get.error)
        })
      } finally {
        db.close()
      }
    },
    [store, key] as const,
  )
}

/**
 * The tag's shop page served by a leader with a helper mounted at /helper (as `npm start` runs
 * them), one update a release, client ids at a test's difficulty (the default is BENCHMARKS.md's),
 * and the first four in-stock products of its catalogue for a shopper to view. `helperUrl` names
 * the helper to devices from another origin than the leader's (startMountedPair's option).
 */
export async function startFederatedShop(
  work: string,
  options: Pick<Parameters<typeof startMountedPair>[0], 'helperUrl'> & {
    /** Federation settings over the test's (a release per update). */
    settings?: FederationOptions['settings']
  } = {},
): Promise<{
  pair: MountedPair
  viewed: Array<{ id: string; index: number }>
  distDir: string
  chunks: Rollup.OutputChunk[]
}> {
  const publicDir = path.join(work, 'public')
  const artifactsDir = path.join(publicDir, 'artifacts')
  const release = await writeTestRelease(16, artifactsDir)
  const catalogue = catalogueFrom(release.files.get(path.basename(release.manifest.catalogue.url)))
  const viewed = catalogue.items.filter((item) => item.inStock).slice(0, 4)
  const distDir = path.join(work, 'dist')
  const chunks = await buildDist(publicDir, distDir)
  await writeTagPage(distDir, 'shop', 'wasm')
  const pair = await startMountedPair({
    dir: work,
    distDir,
    federation: {
      artifactsDir,
      promotion: 'auto',
      site: 'test-shop',
      settings: { bufferSize: 1, minBuffer: 1, ...options.settings },
      clientIds: { bits: 10 },
    },
    ...(options.helperUrl ? { helperUrl: options.helperUrl } : {}),
  })
  return { pair, viewed: viewed.map(({ id, index }) => ({ id, index })), distDir, chunks }
}
