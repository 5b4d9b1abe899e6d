// bench:browser's report: what one backend's run yields and the markdown tables it prints.
import type { BackendName } from '../shared/protocol'
import type { WorkerHeap } from '../test/browser/worker-heap'
import type { measureBundles } from './browser'
import type { NetworkVisitResult } from './network-visit'
import { CPU_SLOWDOWN, type PagePoolsResult } from './page-pools-visit'

/** What one page measures after its cold start (bench/browser.ts's measureInPage). */
export interface PageMeasures {
  coldStartMs: number
  coldStartItems: number
  pageMs: number[]
  workerMs: number[]
  /** The worker's latencyMs with the whole session (ids.length items) behind the list. */
  sessionWorkerMs: number[]
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

export type BackendResult =
  | {
      backend: BackendName
      ran: string
      label: string
      coldStartMs: number
      recommendPageMs: { p50: number; p95: number }
      recommendWorkerMs: { p50: number; p95: number }
      recommendWorkerMs10: { p50: number; p95: number }
      training: PageMeasures['training'] & { stepMs: { low: number; high: number | null } | null }
      longTasksDuringTraining: number
      longestTaskDuringTrainingMs: number
      longTasksTotal: number
      recallIndex: PageMeasures['recallIndex']
      workerHeap: { steady: WorkerHeap; afterTraining: WorkerHeap }
      seconds: number
    }
  | { backend: BackendName; error: string; log: string[] }

const ms = (v: number | null | undefined, digits = 1) => (v == null ? '—' : v.toFixed(digits))
const kb = (b: number) => `${(b / 1024).toFixed(1)} KB`
const mb = (heap: WorkerHeap) =>
  `${(heap.totalBytes / 1e6).toFixed(1)} (${[heap.jsHeapBytes, heap.arrayBufferBytes, heap.wasmBytes].map((b) => (b / 1e6).toFixed(1)).join(' + ')})`

export function latencyTable(results: BackendResult[]): string {
  const rows = results.map((r) => {
    if ('error' in r) return `| ${r.backend} | failed: ${r.error.split('\n')[0]} | | | | | | | |`
    const index = r.recallIndex
    const recall =
      index?.state === 'ready'
        ? `index, ${index.clusters} clusters (built in ${ms(index.buildMs, 0)} ms)`
        : (index?.state ?? '—')
    const step =
      r.training.stepMs === null
        ? r.training.finished
          ? `not measured (${r.training.steps} steps between two polls)`
          : 'not measured (no step in 60 s)'
        : `${ms(r.training.stepMs.low, 0)}–${ms(r.training.stepMs.high, 0)} (${r.training.steps} steps${r.training.finished ? '' : ', unfinished'})`
    const heap = r.workerHeap
    return `| ${r.label} | ${ms(r.coldStartMs, 0)} | ${ms(r.recommendPageMs.p50, 2)} / ${ms(r.recommendPageMs.p95, 2)} | ${ms(r.recommendWorkerMs.p50, 2)} / ${ms(r.recommendWorkerMs.p95, 2)} | ${ms(r.recommendWorkerMs10.p50, 2)} / ${ms(r.recommendWorkerMs10.p95, 2)} | ${step} | ${r.longTasksDuringTraining} | ${recall} | ${mb(heap.steady)} / ${mb(heap.afterTraining)} |`
  })
  return [
    '| backend | cold start to first list, ms | recommend p50 / p95, ms (page) | recommend p50 / p95, ms (worker latencyMs), 1-item session | same, 10-item session | fine-tuning step, ms (low–high) | long tasks while training | neighbour recall | worker memory, MB: JS heap + array buffers + WASM memory, steady / after fine-tuning |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |',
    ...rows,
  ].join('\n')
}

export function sizeTable(
  bundles: Awaited<ReturnType<typeof measureBundles>>,
  download: Record<string, number>,
  downloadGzip: Record<string, number>,
): string {
  const shopBytes = (d: Record<string, number>) =>
    (d.catalogue! + d.pools! + d.rules!).toLocaleString('en')
  return [
    '| file | bytes | gzip |',
    '| --- | ---: | ---: |',
    `| loader dist/pocketrec.js | ${kb(bundles.loader.bytes)} | ${kb(bundles.loader.gzipBytes)} |`,
    `| widgets dist/pocketrec-widgets.js (once a widget has items) | ${kb(bundles.widgets.bytes)} | ${kb(bundles.widgets.gzipBytes)} |`,
    `| worker entry (pocketrec-worker.js + static imports; what a first list waits for, no TF.js) | ${kb(bundles.worker.bytes)} | ${kb(bundles.worker.gzipBytes)} |`,
    `| worker: model part (imported after the first lists; tfjs-core, cpu backend, model, training) | ${kb(bundles.modelPart.bytes)} | ${kb(bundles.modelPart.gzipBytes)} |`,
    ...Object.entries(bundles.lazyBackends).map(
      ([name, b]) =>
        `| worker: ${name} backend (loaded on demand) | ${kb(b.bytes)} | ${kb(b.gzipBytes)} |`,
    ),
    ...Object.entries(bundles.wasm).map(
      ([name, b]) => `| ${name} | ${kb(b.bytes)} | ${kb(b.gzipBytes)} |`,
    ),
    `| model download (manifest model.bytes) | ${download.model!.toLocaleString('en')} B | ${downloadGzip.model!.toLocaleString('en')} B |`,
    `| catalogue + pools + rules download | ${shopBytes(download)} B | ${shopBytes(downloadGzip)} B |`,
  ].join('\n')
}

export function networkTable(n: NetworkVisitResult): string {
  const kinds = [...new Set([...Object.keys(n.first.bytes), ...Object.keys(n.repeat.bytes)])]
  const b = (v: number | undefined) => (v ?? 0).toLocaleString('en')
  const s = (ms: number) => (ms / 1000).toFixed(1)
  return [
    `Slow link, emulated by Chromium (DevTools Network.emulateNetworkConditions; the worker's fetches are slowed too): ${b(n.link.bytesPerSecond)} bytes/s downlink, ${n.link.rttMs} ms latency per request, uploads not slowed. Bytes: response bodies as sent (brotli or gzip where Chromium asks for it).`,
    '',
    '| | first visit (fresh profile) | repeat visit (reload) |',
    '| --- | ---: | ---: |',
    `| navigation → first for-you list, s (served from) | ${s(n.first.firstListMs)} (${n.first.firstListFrom}) | ${s(n.repeat.firstListMs)} (${n.repeat.firstListFrom}) |`,
    `| consent (in the page's head) → first for-you list, s | ${s(n.first.firstListMs - n.first.consentMs)} | ${s(n.repeat.firstListMs - n.repeat.consentMs)} |`,
    `| navigation → lists from the model, s | ${s(n.first.personalisedMs)} | ${s(n.repeat.personalisedMs)} |`,
    `| a viewed product's frequently-bought list, s | ${s(n.first.productListMs)} | ${s(n.repeat.productListMs)} |`,
    ...kinds.map((k) => `| ${k}, bytes | ${b(n.first.bytes[k])} | ${b(n.repeat.bytes[k])} |`),
    `| **total, bytes** | **${b(n.first.totalBytes)}** | **${b(n.repeat.totalBytes)}** |`,
  ].join('\n')
}

export function pagePoolsTable(p: PagePoolsResult): string {
  const longest = Math.max(0, ...p.longTasks.map(([, duration]) => duration))
  return [
    `No worker allowed (\`worker-src 'none'\`): the tag serves the pools on the page's thread, the whole catalogue decoded there in slices. The page's CPU slowed ${CPU_SLOWDOWN}× (DevTools Emulation.setCPUThrottlingRate); no network emulation.`,
    '',
    '| mode (status error) | consent → first list, ms | consent → similar list (catalogue in), ms | long tasks on the page | longest, ms |',
    '| --- | ---: | ---: | ---: | ---: |',
    `| ${p.mode} (${p.errorCode}) | ${p.firstListMs.toFixed(0)} | ${p.catalogueListMs.toFixed(0)} (${p.catalogueListItems} items) | ${p.longTasks.length} | ${longest.toFixed(0)} |`,
  ].join('\n')
}
