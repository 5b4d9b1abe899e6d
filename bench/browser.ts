// npm run bench:browser [-- --data <folder> --model <file> --backends cpu,wasm,webgl,webgpu]:
// the worker in headless Debian Chromium, one fresh profile per backend (forced with the tag's
// data-backend): cold start to the first for-you list, recommend p50/p95, a local fine-tuning
// step, main-thread long tasks while it trains, bundle sizes (gzip) and the model download.
// Writes bench/results/browser.json and prints a markdown table. Everything stays on 127.0.0.1.
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { gzipSync } from 'node:zlib'
import { createGruModel, DEFAULT_GRU_CONFIG } from '../model/gru-model'
import { exportModelWeights } from '../model/model-weights'
import { syncRelease } from '../client/worker/sync-release'
import type { BackendName, RecommendResponse } from '../shared/protocol'
import { decodeWeights, type WeightsFile } from '../shared/weights-codec'
import { exportArtifacts } from '../train/artifacts/export-artifacts'
import { loadDataset } from '../train/data/load-dataset'
import { sharedDataDir } from '../train/data/paths'
import { setNodeBackend } from '../model/node-backend'
import { describeCommand, describeMachine } from '../train/progress'
import {
  buildDist,
  openProfile,
  serveDist,
  waitForTag,
  writeTagPage,
} from '../test/browser/tag-page'

const WARMUP_CALLS = 5
const TIMED_CALLS = 50
/** Longest wait for local fine-tuning to finish one run; slow backends report what they did. */
const TRAIN_WINDOW_MS = 60_000
/** TRAIN_AFTER_IDLE_MS in client/worker/create-worker-api.ts: the pause before fine-tuning. */
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
window.__longTasks = []
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__longTasks.push([e.startTime, e.duration])
}).observe({ type: 'longtask', buffered: true })
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

const quantile = (xs: number[], q: number): number => {
  const s = xs.slice().sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!
}

interface PageMeasures {
  coldStartMs: number
  coldStartItems: number
  pageMs: number[]
  workerMs: number[]
  backend: string
  training: {
    /** From the last event to the first status() that reported training. */
    startedAfterMs: number | null
    steps: number
    /** From `training` first seen to `idle` again (or to the end of the window). */
    runMs: number | null
    finished: boolean
    lastLoss: number | null
    windowMs: number
  }
  longTasksDuringTraining: Array<[number, number]>
  longTasksTotal: number
  /** The neighbour recall the timed calls used (the index is built after the first list). */
  recallIndex: { state: string; clusters?: number; buildMs?: number } | null
}

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

  // The rest of the session: fine-tuning starts when the shopper pauses (1.5 s).
  for (const id of args.ids.slice(1)) {
    await w.pocketrec('track', 'Product Viewed', { product_id: id })
  }
  const t0 = performance.now()
  let startedAt: number | null = null
  let endedAt: number | null = null
  let training = await status()
  while (performance.now() - t0 < args.windowMs) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    training = await status()
    if (startedAt === null && training.state === 'training') startedAt = performance.now()
    if (startedAt !== null && training.state === 'idle') {
      endedAt = performance.now()
      break
    }
  }
  const end = performance.now()
  return {
    coldStartMs: cold.ms,
    coldStartItems: cold.items,
    pageMs,
    workerMs,
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

/** Loader, worker entry (with everything it imports statically) and each lazily loaded backend. */
async function measureBundles(distDir: string, chunks: Awaited<ReturnType<typeof buildDist>>) {
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
  const lazy: Record<string, { files: string[]; bytes: number; gzipBytes: number }> = {}
  for (const file of worker) {
    for (const dynamic of byFile.get(file)?.dynamicImports ?? []) {
      const files = [...closure(dynamic, worker)]
      const ids = files.flatMap((f) => byFile.get(f)?.moduleIds ?? [])
      const name =
        ['webgpu', 'webgl', 'wasm'].find((b) =>
          ids.some((id) => id.includes(`tfjs-backend-${b}`)),
        ) ?? dynamic
      lazy[name] = { files, ...(await sum(files)) }
    }
  }
  const wasm: Record<string, { bytes: number; gzipBytes: number }> = {}
  for (const file of (await readdir(distDir)).filter((f) => f.endsWith('.wasm'))) {
    wasm[file] = await gzipSize(path.join(distDir, file))
  }
  return {
    loader: await gzipSize(path.join(distDir, 'pocketrec.js')),
    worker: { files: [...worker], ...(await sum(worker)) },
    lazyBackends: lazy,
    wasm,
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      data: { type: 'string' },
      model: { type: 'string' },
      backends: { type: 'string' },
    },
    strict: true,
  })
  const backends = (values.backends ?? 'cpu,wasm,webgl,webgpu').split(',') as BackendName[]
  const load = os.loadavg()
  const cpus = os.cpus()
  const modelFile = values.model ?? 'models/diginetica-srgnn/model.prw'
  const real = existsSync(modelFile)
  const dataDir =
    values.data ??
    path.join(sharedDataDir(), real ? 'diginetica-srgnn' : 'yoochoose-clicks-100k-sessionrec')
  const dataset = await loadDataset(dataDir)
  let weights: WeightsFile
  let modelNote: string
  if (real) {
    weights = decodeWeights(await readFile(modelFile))
    modelNote = `trained model ${modelFile}`
  } else {
    await setNodeBackend('cpu')
    const model = createGruModel({ ...DEFAULT_GRU_CONFIG, nItems: dataset.nItems }, 1)
    weights = await exportModelWeights(model)
    model.dispose()
    modelNote = `NO trained model at ${modelFile}: an untrained seeded model on the YooChoose sample (not the DIGINETICA catalogue size)`
  }
  console.log(`${dataset.name}: ${dataset.nItems} items; ${modelNote}`)
  console.log(
    `load average before: ${load.map((l) => l.toFixed(2)).join(' ')} on ${cpus.length} cores`,
  )

  const work = await mkdtemp(path.join(os.tmpdir(), 'pocketrec-bench-browser-'))
  const results: Record<string, unknown>[] = []
  let server: { origin: string; close(): void } | undefined
  try {
    const publicDir = path.join(work, 'public')
    await exportArtifacts({ dataset, model: weights, outDir: path.join(publicDir, 'artifacts') })
    const distDir = path.join(work, 'dist')
    const chunks = await buildDist(publicDir, distDir)
    const bundles = await measureBundles(distDir, chunks)
    for (const backend of backends) await writeTagPage(distDir, `bench-${backend}`, backend, HEAD)
    server = await serveDist(distDir)
    const release = await syncRelease(new URL('/artifacts/manifest.json', server.origin), null)
    const byIndex = new Map(release.catalogue.items.map((item) => [item.index, item.id]))
    // A real session: the first test session with five different items.
    const session = dataset.test.find((s) => new Set(s.slice(0, 5)).size === 5)!.slice(0, 5)
    const ids = Array.from(session, (index) => byIndex.get(index)!)
    const download = {
      model: release.manifest.model.bytes,
      catalogue: release.manifest.catalogue.bytes,
      pools: release.manifest.pools.bytes,
      rules: release.manifest.rules.bytes,
    }
    // What travels when the browser accepts gzip: the server sends the exporter's .gz siblings.
    const wireBytes = async (ref: { url: string }) =>
      (await stat(path.join(distDir, 'artifacts', `${ref.url}.gz`))).size
    const downloadGzip = {
      model: await wireBytes(release.manifest.model),
      catalogue: await wireBytes(release.manifest.catalogue),
      pools: await wireBytes(release.manifest.pools),
      rules: await wireBytes(release.manifest.rules),
    }

    for (const backend of backends) {
      const log: string[] = []
      const profile = await openProfile(log)
      const started = performance.now()
      try {
        await profile.page.goto(`${server.origin}/bench-${backend}.html`)
        await waitForTag(profile.page)
        const m = await profile.page.evaluate(measureInPage, {
          ids,
          warmup: WARMUP_CALLS,
          timed: TIMED_CALLS,
          windowMs: TRAIN_WINDOW_MS,
        })
        // status() is answered only between training slices, so `training` is first seen after
        // the first step (and its set-up) ran: runMs / steps is a lower bound. The idle delay's
        // end to the run's end, over the steps, includes reading the sessions and the
        // optimizer's set-up: an upper bound.
        const { steps, runMs, finished, windowMs } = m.training
        const stepMs =
          steps > 0 && runMs !== null
            ? {
                low: runMs / steps,
                high: finished ? (windowMs - TRAIN_AFTER_IDLE_MS) / steps : null,
              }
            : null
        results.push({
          backend,
          ran: m.backend,
          label: SOFTWARE[backend] ?? backend,
          coldStartMs: m.coldStartMs,
          recommendPageMs: { p50: quantile(m.pageMs, 0.5), p95: quantile(m.pageMs, 0.95) },
          recommendWorkerMs: { p50: quantile(m.workerMs, 0.5), p95: quantile(m.workerMs, 0.95) },
          training: { ...m.training, stepMs },
          longTasksDuringTraining: m.longTasksDuringTraining.length,
          longestTaskDuringTrainingMs: Math.max(0, ...m.longTasksDuringTraining.map(([, d]) => d)),
          longTasksTotal: m.longTasksTotal,
          recallIndex: m.recallIndex,
          seconds: (performance.now() - started) / 1000,
        })
        console.log(`${backend}: done in ${((performance.now() - started) / 1000).toFixed(0)} s`)
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error)
        results.push({ backend, error: message, log: log.slice(-20) })
        console.log(`${backend}: FAILED ${message}\n${log.slice(-10).join('\n')}`)
      } finally {
        await profile.close()
      }
    }

    const loadAfter = os.loadavg()
    const kb = (b: number) => `${(b / 1024).toFixed(1)} KB`
    const ms = (v: number | null | undefined, digits = 1) => (v == null ? '—' : v.toFixed(digits))
    const rows = results.map((r) => {
      if (r.error) return `| ${r.backend} | failed: ${String(r.error).split('\n')[0]} | | | | | | |`
      const x = r as {
        label: string
        coldStartMs: number
        recommendPageMs: { p50: number; p95: number }
        recommendWorkerMs: { p50: number; p95: number }
        training: {
          stepMs: { low: number; high: number | null } | null
          steps: number
          finished: boolean
        }
        longTasksDuringTraining: number
        recallIndex: PageMeasures['recallIndex']
      }
      const index = x.recallIndex
      const recall =
        index?.state === 'ready'
          ? `index, ${index.clusters} clusters (built in ${ms(index.buildMs, 0)} ms)`
          : (index?.state ?? '—')
      const step =
        x.training.stepMs === null
          ? 'not measured (no step in 60 s)'
          : `${ms(x.training.stepMs.low, 0)}–${ms(x.training.stepMs.high, 0)} (${x.training.steps} steps${x.training.finished ? '' : ', unfinished'})`
      return `| ${x.label} | ${ms(x.coldStartMs, 0)} | ${ms(x.recommendPageMs.p50, 2)} / ${ms(x.recommendPageMs.p95, 2)} | ${ms(x.recommendWorkerMs.p50, 2)} / ${ms(x.recommendWorkerMs.p95, 2)} | ${step} | ${x.longTasksDuringTraining} | ${recall} |`
    })
    const table = [
      '| backend | cold start to first list, ms | recommend p50 / p95, ms (page) | recommend p50 / p95, ms (worker latencyMs) | fine-tuning step, ms (low–high) | long tasks while training | neighbour recall |',
      '| --- | ---: | ---: | ---: | ---: | ---: | --- |',
      ...rows,
    ].join('\n')
    const lazyRows = Object.entries(bundles.lazyBackends).map(
      ([name, b]) =>
        `| worker: ${name} backend (loaded on demand) | ${kb(b.bytes)} | ${kb(b.gzipBytes)} |`,
    )
    const wasmRows = Object.entries(bundles.wasm).map(
      ([name, b]) => `| ${name} | ${kb(b.bytes)} | ${kb(b.gzipBytes)} |`,
    )
    const sizes = [
      '| file | bytes | gzip |',
      '| --- | ---: | ---: |',
      `| loader dist/pocketrec.js | ${kb(bundles.loader.bytes)} | ${kb(bundles.loader.gzipBytes)} |`,
      `| worker JS (pocketrec-worker.js + static imports; tfjs-core, cpu backend) | ${kb(bundles.worker.bytes)} | ${kb(bundles.worker.gzipBytes)} |`,
      ...lazyRows,
      ...wasmRows,
      `| model download (manifest model.bytes) | ${download.model.toLocaleString('en')} B | ${downloadGzip.model.toLocaleString('en')} B |`,
      `| catalogue + pools + rules download | ${(download.catalogue + download.pools + download.rules).toLocaleString('en')} B | ${(downloadGzip.catalogue + downloadGzip.pools + downloadGzip.rules).toLocaleString('en')} B |`,
    ].join('\n')
    console.log(
      `\n${dataset.name}: ${dataset.nItems} items, d = ${String(weights.meta.embedDim)}; ${modelNote}\n` +
        `Chromium headless, no GPU: webgl and webgpu run in software. recommend: for-you, limit 20, ` +
        `one-item session, ${TIMED_CALLS} calls after ${WARMUP_CALLS} warm-up. Fine-tuning step: wall time ` +
        `of one local run / its steps, from training first seen in status() (polled every 50 ms) ` +
        `or from the end of the ${TRAIN_AFTER_IDLE_MS} ms idle delay, to idle again.\n` +
        `load average before ${load.map((l) => l.toFixed(2)).join(' ')}, after ${loadAfter.map((l) => l.toFixed(2)).join(' ')} (${cpus.length} cores)\n\n` +
        `${table}\n\n${sizes}`,
    )
    const out = path.resolve('bench', 'results', 'browser.json')
    await mkdir(path.dirname(out), { recursive: true })
    await writeFile(
      out,
      JSON.stringify(
        {
          date: new Date().toISOString(),
          machine: describeMachine(),
          browser: '/usr/bin/chromium (Debian), headless, SwiftShader for WebGL and WebGPU',
          loadAverage: { before: load, after: loadAfter },
          command: describeCommand('bench:browser'),
          dataset: dataset.name,
          nItems: dataset.nItems,
          model: modelNote,
          // How long, not which: item ids from the log do not belong in a tracked results file.
          session: { items: ids.length, from: 'the first test session with five distinct items' },
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
        },
        null,
        2,
      ) + '\n',
    )
    console.log(`\nwritten ${path.relative(process.cwd(), out)}`)
  } finally {
    server?.close()
    await rm(work, { recursive: true, force: true })
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? `${error.name}: ${error.message}` : error)
  process.exit(1)
})
