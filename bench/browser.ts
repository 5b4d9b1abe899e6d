// npm run bench:browser [-- --data <folder> --model <file> --backends cpu,wasm,webgl,webgpu]:
// the worker in headless Debian Chromium, one fresh profile per backend (forced with the tag's
// data-backend): cold start to the first for-you list, recommend p50/p95, a local fine-tuning
// step, main-thread long tasks while it trains, bundle sizes (gzip) and the model download; then
// a first and a repeat visit on a slow link (network-visit.ts) and the tag on a page that allows
// no worker, its long tasks counted (page-pools-visit.ts).
// Writes bench/results/browser.json and prints a markdown table. Everything stays on 127.0.0.1.
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { gzipSync } from 'node:zlib'
import { createGruModel, DEFAULT_GRU_CONFIG } from '../model/gru-model'
import { exportModelWeights } from '../model/model-weights'
import { syncRelease } from '../client/worker/sync-release'
import type { BackendName, ModelManifest, RecommendResponse } from '../shared/protocol'
import { decodeWeights } from '../shared/weights-codec'
import { exportArtifacts } from '../train/artifacts/export-artifacts'
import { loadDataset } from '../train/data/load-dataset'
import { sharedDataDir } from '../train/data/paths'
import { setNodeBackend } from '../model/node-backend'
import { runBenchmark, type BenchRun } from './harness'
import { measureNetworkVisit, RECORD_LONG_TASKS, VISIT_HEAD } from './network-visit'
import { measurePagePoolsOnly } from './page-pools-visit'
import { list, text, readOptions, type Options } from './options'
import { percentile } from './stats'
import {
  buildDist,
  openProfile,
  serveDist,
  waitForTag,
  writeTagPage,
} from '../test/browser/tag-page'
import { measureWorkerHeap } from '../test/browser/worker-heap'
import {
  latencyTable,
  networkTable,
  pagePoolsTable,
  sizeTable,
  type BackendResult,
  type PageMeasures,
} from './browser-report'

const WARMUP_CALLS = 5
const TIMED_CALLS = 50
/** Longest wait for local fine-tuning to finish one run; slow backends report what they did. */
const TRAIN_WINDOW_MS = 60_000
/** TRAIN_AFTER_IDLE_MS in client/worker/training-schedule.ts: the pause before fine-tuning. */
const TRAIN_AFTER_IDLE_MS = 1500
/** Chromium here has no GPU: both GPU backends run on SwiftShader, on the CPU. */
const SOFTWARE: Partial<Record<BackendName, string>> = {
  webgl: 'WebGL 2 on SwiftShader (software)',
  webgpu: 'WebGPU on SwiftShader (software fallback adapter)',
}

/**
 * Queued before the tag loads, as a shop's page would: consent, then the first for-you list.
 * Long tasks on the main thread are recorded from the start.
 */
const HEAD = `<script>
${RECORD_LONG_TASKS}
window.pocketrec = window.pocketrec || []
window.pocketrec.push(['consent', true])
window.__coldStart = new Promise((resolve, reject) => {
  const poll = setInterval(() => {
    if (typeof window.pocketrec !== 'function') return
    clearInterval(poll)
    window.pocketrec('recommend', { scenario: 'for-you', limit: 20 }).then(
      (response) => resolve({ ms: performance.now(), items: response.items.length }),
      reject,
    )
  }, 2)
})
</script>`

/** Runs in the page after the cold start; `ids` is a real session of product ids. */
async function measureInPage(args: {
  ids: string[]
  warmup: number
  timed: number
  windowMs: number
}): Promise<PageMeasures> {
  type Command = (name: string, ...rest: unknown[]) => Promise<unknown>
  const w = window as unknown as {
    pocketrec: Command
    __coldStart: Promise<{ ms: number; items: number }>
    __longTasks: Array<[number, number]>
  }
  type WorkerStatus = {
    training: { steps: number; state: string; losses: number[] }
    recallIndex: PageMeasures['recallIndex']
  }
  const workerStatus = async () =>
    ((await w.pocketrec('status')) as { worker: WorkerStatus }).worker
  const status = async () => (await workerStatus()).training
  const cold = await w.__coldStart
  // The first list may come from the pools while the model loads (progressive start): time the
  // model's lists only.
  const listsFrom = async () =>
    ((await w.pocketrec('status')) as { worker: { lists: string } | null }).worker?.lists
  while ((await listsFrom()) !== 'model') await new Promise((resolve) => setTimeout(resolve, 20))

  // recommend latency with a one-item session: local fine-tuning needs two items, so none runs.
  await w.pocketrec('track', 'Product Viewed', { product_id: args.ids[0] })
  const request = { scenario: 'for-you', limit: 20 }
  let backend = ''
  for (let i = 0; i < args.warmup; i++) await w.pocketrec('recommend', request)
  // Steady state: the neighbour index, built in the background after the first list, is ready.
  let recallIndex = (await workerStatus()).recallIndex
  for (let waited = 0; waited < 60_000; waited += 20) {
    if (recallIndex?.state !== 'pending' && recallIndex?.state !== 'building') break
    await new Promise((resolve) => setTimeout(resolve, 20))
    recallIndex = (await workerStatus()).recallIndex
  }
  const pageMs: number[] = []
  const workerMs: number[] = []
  for (let i = 0; i < args.timed; i++) {
    const t0 = performance.now()
    const response = (await w.pocketrec('recommend', request)) as RecommendResponse
    pageMs.push(performance.now() - t0)
    workerMs.push(response.latencyMs)
    backend = response.backend
  }
  // Steady state, before any fine-tuning: the bench reads the worker's heap now (worker-heap.ts).
  ;(window as unknown as { __steadyState: boolean }).__steadyState = true

  // The rest of the session: fine-tuning starts when the shopper pauses (1.5 s).
  let training = await status()
  const stepsBefore = training.steps
  for (const id of args.ids.slice(1)) {
    await w.pocketrec('track', 'Product Viewed', { product_id: id })
  }
  const t0 = performance.now()
  let startedAt: number | null = null
  let endedAt: number | null = null
  while (performance.now() - t0 < args.windowMs) {
    await new Promise((resolve) => setTimeout(resolve, 10))
    training = await status()
    if (startedAt === null && training.state === 'training') startedAt = performance.now()
    if (training.state === 'idle' && (startedAt !== null || training.steps > stepsBefore)) {
      // A short run can start and end between two polls: it finished, its span unmeasured.
      endedAt = performance.now()
      break
    }
  }
  const end = performance.now()
  // The same list for the whole session (10 items), once the fine-tuning run is over: the JS GRU
  // reads every step. Timed before it, on a machine where 50 calls outlast the pause, the calls
  // shared the worker with the run and the run went unseen (2026-12-07).
  const sessionWorkerMs: number[] = []
  for (let i = 0; i < args.timed; i++) {
    const response = (await w.pocketrec('recommend', request)) as RecommendResponse
    sessionWorkerMs.push(response.latencyMs)
  }
  return {
    coldStartMs: cold.ms,
    coldStartItems: cold.items,
    pageMs,
    workerMs,
    sessionWorkerMs,
    backend,
    training: {
      startedAfterMs: startedAt === null ? null : startedAt - t0,
      steps: training.steps,
      runMs: startedAt === null ? null : (endedAt ?? end) - startedAt,
      finished: endedAt !== null,
      lastLoss: training.losses.at(-1) ?? null,
      windowMs: end - t0,
    },
    longTasksDuringTraining: w.__longTasks.filter(
      ([start, duration]) => start + duration >= (startedAt ?? end) && start <= end,
    ),
    longTasksTotal: w.__longTasks.length,
    recallIndex,
  }
}

async function gzipSize(file: string): Promise<{ bytes: number; gzipBytes: number }> {
  const body = await readFile(file)
  return { bytes: body.length, gzipBytes: gzipSync(body, { level: 9 }).length }
}

/**
 * Loader, worker entry (with everything it imports statically: what a first list waits for), the
 * model part it imports once the first lists are served (TF.js, the model, training), and each
 * backend loaded on demand beyond those.
 */
export async function measureBundles(
  distDir: string,
  chunks: Awaited<ReturnType<typeof buildDist>>,
) {
  const byFile = new Map(chunks.map((c) => [c.fileName, c]))
  const closure = (start: string, exclude: Set<string>): Set<string> => {
    const seen = new Set<string>()
    const visit = (file: string) => {
      if (seen.has(file) || exclude.has(file)) return
      seen.add(file)
      for (const next of byFile.get(file)?.imports ?? []) visit(next)
    }
    visit(start)
    return seen
  }
  const sum = async (files: Iterable<string>) => {
    let bytes = 0
    let gzipBytes = 0
    for (const file of files) {
      const size = await gzipSize(path.join(distDir, file))
      bytes += size.bytes
      gzipBytes += size.gzipBytes
    }
    return { bytes, gzipBytes }
  }
  const worker = closure('pocketrec-worker.js', new Set())
  const dynamics = [...worker].flatMap((file) => byFile.get(file)?.dynamicImports ?? [])
  const partFile = dynamics.find((file) =>
    byFile.get(file)?.moduleIds.some((id) => id.endsWith('client/worker/model-part.ts')),
  )
  if (!partFile) throw new Error('expected the worker to import client/worker/model-part.ts lazily')
  const part = closure(partFile, worker)
  const lazy: Record<string, { files: string[]; bytes: number; gzipBytes: number }> = {}
  for (const dynamic of new Set(dynamics)) {
    // The model part, and what it imports too (the weights codec): counted in it.
    const files = [...closure(dynamic, new Set([...worker, ...part]))]
    if (files.length === 0) continue
    const ids = files.flatMap((f) => byFile.get(f)?.moduleIds ?? [])
    const name =
      ['webgpu', 'webgl', 'wasm'].find((b) => ids.some((id) => id.includes(`tfjs-backend-${b}`))) ??
      dynamic
    lazy[name] = { files, ...(await sum(files)) }
  }
  const wasm: Record<string, { bytes: number; gzipBytes: number }> = {}
  for (const file of (await readdir(distDir)).filter((f) => f.endsWith('.wasm'))) {
    wasm[file] = await gzipSize(path.join(distDir, file))
  }
  return {
    loader: await gzipSize(path.join(distDir, 'pocketrec.js')),
    widgets: await gzipSize(path.join(distDir, 'pocketrec-widgets.js')),
    worker: { files: [...worker], ...(await sum(worker)) },
    modelPart: { files: [...part], ...(await sum(part)) },
    lazyBackends: lazy,
    wasm,
  }
}

export const BROWSER_FLAGS = {
  /** Default: DIGINETICA with the trained model, else the YooChoose sample. */
  data: text(),
  model: text('models/diginetica-srgnn/model.prw'),
  backends: list(['cpu', 'wasm', 'webgl', 'webgpu'] as const, ['cpu', 'wasm', 'webgl', 'webgpu']),
  results: text('bench/results/browser.json'),
}

export async function benchBrowser(
  options: Options<typeof BROWSER_FLAGS>,
  run: BenchRun,
): Promise<void> {
  const { dataset, weights, modelNote } = await modelToServe(options)
  console.log(`${dataset.name}: ${dataset.nItems} items; ${modelNote}`)
  const { before } = run.stamp().loadAverage
  console.log(`load average before: ${before.join(' ')} on ${os.cpus().length} cores`)

  const work = await mkdtemp(path.join(os.tmpdir(), 'pocketrec-bench-browser-'))
  let server: { origin: string; close(): void } | undefined
  try {
    const publicDir = path.join(work, 'public')
    await exportArtifacts({ dataset, model: weights, outDir: path.join(publicDir, 'artifacts') })
    const distDir = path.join(work, 'dist')
    const chunks = await buildDist(publicDir, distDir)
    const bundles = await measureBundles(distDir, chunks)
    for (const backend of options.backends) {
      await writeTagPage(distDir, `bench-${backend}`, backend, HEAD)
    }
    server = await serveDist(distDir)
    const release = await syncRelease(new URL('/artifacts/manifest.json', server.origin), null)
    const byIndex = new Map(release.catalogue.items.map((item) => [item.index, item.id]))
    // A real session: the first test session with ten different items.
    const session = dataset.test.find((s) => new Set(s.slice(0, 10)).size === 10)!.slice(0, 10)
    const ids = Array.from(session, (index) => byIndex.get(index)!)
    const { download, downloadGzip } = await downloadSizes(release.manifest, distDir)
    const results: BackendResult[] = []
    for (const backend of options.backends) {
      results.push(await measureBackend(server.origin, backend, ids))
    }
    // The shop's page as shops write it (no forced backend), on a slow link.
    await writeFile(
      path.join(distDir, 'visit.html'),
      `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>visit</title>${VISIT_HEAD}` +
        '<script async src="/pocketrec.js" data-site="test-shop" data-endpoint="/"></script>\n',
    )
    const network = await measureNetworkVisit(distDir, '/visit.html', ids[0]!)
    console.log(`slow link: done, first visit ${network.first.totalBytes.toLocaleString('en')} B`)
    const pagePools = await measurePagePoolsOnly(distDir, server.origin, ids[0]!)
    console.log(`pools on the page: done, ${pagePools.longTasks.length} long tasks`)
    const { after } = run.stamp().loadAverage
    console.log(
      `\n${dataset.name}: ${dataset.nItems} items, d = ${String(weights.meta.embedDim)}; ${modelNote}\n` +
        `Chromium headless, no GPU: webgl and webgpu run in software. recommend: for-you, limit 20, ` +
        `one-item session, ${TIMED_CALLS} calls after ${WARMUP_CALLS} warm-up. Fine-tuning step: wall time ` +
        `of one local run / its steps, from training first seen in status() (polled every 50 ms) ` +
        `or from the end of the ${TRAIN_AFTER_IDLE_MS} ms idle delay, to idle again.\n` +
        `load average before ${before.join(' ')}, after ${after.join(' ')} (${os.cpus().length} cores)\n\n` +
        `${latencyTable(results)}\n\n${sizeTable(bundles, download, downloadGzip)}\n\n${networkTable(network)}\n\n${pagePoolsTable(pagePools)}`,
    )
    await run.write(options.results, {
      browser: '/usr/bin/chromium (Debian), headless, SwiftShader for WebGL and WebGPU',
      dataset: dataset.name,
      nItems: dataset.nItems,
      model: modelNote,
      // How long, not which: item ids from the log do not belong in a tracked results file.
      session: { items: ids.length, from: 'the first test session with ten distinct items' },
      settings: {
        warmupCalls: WARMUP_CALLS,
        timedCalls: TIMED_CALLS,
        trainWindowMs: TRAIN_WINDOW_MS,
        trainAfterIdleMs: TRAIN_AFTER_IDLE_MS,
      },
      download,
      downloadGzip,
      bundles,
      backends: results,
      network,
      pagePools,
    })
  } finally {
    server?.close()
    await rm(work, { recursive: true, force: true })
  }
}

/** The trained DIGINETICA model when there is one, else a seeded untrained one on YooChoose. */
async function modelToServe(options: Options<typeof BROWSER_FLAGS>) {
  const real = existsSync(options.model)
  const dataDir =
    options.data ??
    path.join(sharedDataDir(), real ? 'diginetica-srgnn' : 'yoochoose-clicks-100k-sessionrec')
  const dataset = await loadDataset(dataDir)
  if (real) {
    const weights = decodeWeights(await readFile(options.model))
    return { dataset, weights, modelNote: `trained model ${options.model}` }
  }
  await setNodeBackend('cpu')
  const model = createGruModel({ ...DEFAULT_GRU_CONFIG, nItems: dataset.nItems }, 1)
  const weights = await exportModelWeights(model)
  model.dispose()
  const modelNote = `NO trained model at ${options.model}: an untrained seeded model of ${dataset.name}'s size`
  return { dataset, weights, modelNote }
}

/** What each artifact weighs, and what travels when the browser accepts gzip (the .gz siblings). */
async function downloadSizes(manifest: ModelManifest, distDir: string) {
  const refs = {
    model: manifest.model,
    catalogue: manifest.catalogue,
    pools: manifest.pools,
    rules: manifest.rules,
  }
  const download = Object.fromEntries(
    Object.entries(refs).map(([name, ref]) => [name, ref.bytes]),
  ) as Record<keyof typeof refs, number>
  const downloadGzip = {} as Record<keyof typeof refs, number>
  for (const [name, ref] of Object.entries(refs) as [keyof typeof refs, { url: string }][]) {
    downloadGzip[name] = (await stat(path.join(distDir, 'artifacts', `${ref.url}.gz`))).size
  }
  return { download, downloadGzip }
}

/** One backend in a fresh browser profile: cold start, timed lists, then a fine-tuning run. */
async function measureBackend(
  origin: string,
  backend: BackendName,
  ids: string[],
): Promise<BackendResult> {
  const log: string[] = []
  const profile = await openProfile(log)
  const started = performance.now()
  try {
    await profile.page.goto(`${origin}/bench-${backend}.html`)
    await waitForTag(profile.page)
    const measuring = profile.page.evaluate(measureInPage, {
      ids,
      warmup: WARMUP_CALLS,
      timed: TIMED_CALLS,
      windowMs: TRAIN_WINDOW_MS,
    })
    // Fine-tuning waits 1.5 s for the shopper to pause: the steady heap is read before it starts.
    const steady = profile.page.waitForFunction(
      () => (window as unknown as { __steadyState?: boolean }).__steadyState === true,
      undefined,
      { timeout: 0 },
    )
    await Promise.race([steady, measuring])
    const heapSteady = await measureWorkerHeap(profile.context, profile.page)
    const m = await measuring
    const heapAfterTraining = await measureWorkerHeap(profile.context, profile.page)
    // status() is answered only between training slices, so `training` is first seen after
    // the first step (and its set-up) ran: runMs / steps is a lower bound. The idle delay's
    // end to the run's end, over the steps, includes reading the sessions and the
    // optimizer's set-up: an upper bound.
    const { steps, runMs, finished, windowMs } = m.training
    const stepMs =
      steps > 0 && runMs !== null
        ? { low: runMs / steps, high: finished ? (windowMs - TRAIN_AFTER_IDLE_MS) / steps : null }
        : null
    console.log(`${backend}: done in ${((performance.now() - started) / 1000).toFixed(0)} s`)
    return {
      backend,
      ran: m.backend,
      label: SOFTWARE[backend] ?? backend,
      coldStartMs: m.coldStartMs,
      recommendPageMs: { p50: percentile(m.pageMs, 50), p95: percentile(m.pageMs, 95) },
      recommendWorkerMs: { p50: percentile(m.workerMs, 50), p95: percentile(m.workerMs, 95) },
      recommendWorkerMs10: {
        p50: percentile(m.sessionWorkerMs, 50),
        p95: percentile(m.sessionWorkerMs, 95),
      },
      training: { ...m.training, stepMs },
      longTasksDuringTraining: m.longTasksDuringTraining.length,
      longestTaskDuringTrainingMs: Math.max(0, ...m.longTasksDuringTraining.map(([, d]) => d)),
      longTasksTotal: m.longTasksTotal,
      recallIndex: m.recallIndex,
      workerHeap: { steady: heapSteady, afterTraining: heapAfterTraining },
      seconds: (performance.now() - started) / 1000,
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    console.log(`${backend}: FAILED ${message}\n${log.slice(-10).join('\n')}`)
    return { backend, error: message, log: log.slice(-20) }
  } finally {
    await profile.close()
  }
}

runBenchmark({
  script: 'bench:browser',
  parse: (argv) => readOptions(BROWSER_FLAGS, argv),
  run: benchBrowser,
})
