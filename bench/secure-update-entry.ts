// Browser entry for bench/dpf.ts: what splitting one sparse contribution into its two share
// bodies (shared/secure-update.ts: cuckoo placement, one DPF key pair per bucket with noble's
// AES, additive shares of the window and the negatives) costs a device, in a dedicated module
// worker of headless Chromium, at the real size given in the query. The page leaves the
// per-update times in `window.__result`.
import { createNobleCipher } from '../shared/noble-cipher'
import { createRandom } from '../shared/random'
import { placeRows } from '../shared/row-buckets'
import { secureParamsFor, splitContribution } from '../shared/secure-update'
import { randomFullContribution } from './full-update'

export interface SplitBrowserResult {
  userAgent: string
  /** ms per update, one entry per run. */
  ms: number[]
  bytes: [number, number]
}

interface SplitRequest {
  nItems: number
  embedDim: number
  denseSize: number
  maxRows: number
  denseCoordinates: number
  negativeRows: number
  runs: number
}

declare global {
  interface Window {
    __result?: unknown
    __error?: string
  }
}

function measure(r: SplitRequest): SplitBrowserResult {
  const params = secureParamsFor(
    {
      maxRows: r.maxRows,
      embedDim: r.embedDim,
      denseCoordinates: r.denseCoordinates,
      negativeRows: r.negativeRows,
    },
    { nItems: r.nItems, embedDim: r.embedDim, denseSize: r.denseSize },
  )
  const cipher = createNobleCipher()
  const random = createRandom(7)
  const randomBytes = (n: number) => crypto.getRandomValues(new Uint8Array(n))
  const ms: number[] = []
  let bytes: [number, number] = [0, 0]
  for (let run = 0; run < r.runs; run++) {
    const contribution = randomFullContribution(params, random)
    const started = performance.now()
    const placed = placeRows(contribution.rows, params.buckets.params, random)
    if (placed.dropped.length > 0) continue
    const bodies = splitContribution(
      contribution,
      placed.bucketRow,
      { baseVersion: 1, slice: run, idempotencyKey: randomBytes(16) },
      params,
      randomBytes,
      cipher,
    )
    ms.push(performance.now() - started)
    bytes = [bodies[0].length, bodies[1].length]
  }
  return { userAgent: navigator.userAgent, ms, bytes }
}

if (typeof window === 'undefined') {
  self.onmessage = (event: MessageEvent<SplitRequest>) => {
    try {
      self.postMessage({ result: measure(event.data) })
    } catch (error) {
      self.postMessage({ error: String(error) })
    }
  }
} else {
  const query = new URLSearchParams(location.search)
  const worker = new Worker(new URL(import.meta.url), { type: 'module' })
  worker.onmessage = (event: MessageEvent<{ result?: SplitBrowserResult; error?: string }>) => {
    if (event.data.result) window.__result = event.data.result
    else window.__error = event.data.error ?? 'the worker sent nothing'
  }
  worker.onerror = (event) => {
    window.__error = `worker error: ${event.message}`
  }
  const request = Object.fromEntries(
    ['nItems', 'embedDim', 'denseSize', 'maxRows', 'denseCoordinates', 'negativeRows', 'runs'].map(
      (name) => [name, Number(query.get(name))],
    ),
  ) as unknown as SplitRequest
  worker.postMessage(request)
}
