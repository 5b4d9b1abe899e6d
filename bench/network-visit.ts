// A shopper's first and repeat visit on a slow link, for `npm run bench:browser`: the built shop
// page served by the real app, behind Chromium's own network emulation (DevTools
// Network.emulateNetworkConditions on the page: in this Chromium it slows the dedicated worker's
// fetches too, which the bench checks). It counts the bytes of every response body by kind (what
// travels: brotli or gzip when the browser accepts it), and times consent → first list, the
// first list for a viewed product (its co-visitation shard included), and the same on a reload
// with the same profile.
import { serve } from '@hono/node-server'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { createApp } from '../server/app'
import { openProfile, waitForTag } from '../test/browser/tag-page'

export interface LinkSettings {
  /** Downlink shared by all responses (1.6 Mbps ≈ 200,000 bytes/s): Chromium's downloadThroughput. */
  bytesPerSecond: number
  /** Before each response's headers: Chromium's emulated latency. */
  rttMs: number
}

export const SLOW_LINK: LinkSettings = { bytesPerSecond: 200_000, rttMs: 150 }

const KINDS = [
  ['model', /\.model\.\w+$/],
  ['catalogue', /\.catalogue\.\w+$/],
  ['pools', /\.pools\.\w+$/],
  ['rules', /\.rules\.\w+$/],
  ['co-visitation shards', /\.covisit\.\w+$/],
  ['manifest', /\/manifest\.json$/],
  ['wasm', /\.wasm$/],
  ['tag', /^\/pocketrec\.js$/],
  ['worker JS', /\.js$/],
] as const

export type ByteCounts = Record<string, number>

function kindOf(pathname: string): string {
  return KINDS.find(([, pattern]) => pattern.test(pathname))?.[0] ?? 'page and other'
}

/** The app over `distDir`; `counts` holds response body bytes by kind. */
async function serveCounting(distDir: string) {
  const app = createApp({ distDir: path.relative(process.cwd(), distDir) })
  let counts: ByteCounts = {}
  const server = serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch: async (request) => {
      const response = await app.fetch(request)
      if (!response.body) return response
      const kind = kindOf(new URL(request.url).pathname)
      const reader = response.body.getReader()
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          const { done, value } = await reader.read()
          if (done) return controller.close()
          counts[kind] = (counts[kind] ?? 0) + value.byteLength
          controller.enqueue(value)
        },
        cancel: (reason) => reader.cancel(reason),
      })
      return new Response(body, { status: response.status, headers: response.headers })
    },
  })
  await new Promise((resolve) => server.once('listening', resolve))
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    /** The counts so far, and a fresh count from now on. */
    take(): ByteCounts {
      const taken = counts
      counts = {}
      return taken
    },
    close: () => server.close(),
  }
}

/** Page script: every main-thread long task from here on, as [startTime, duration] in `__longTasks`. */
export const RECORD_LONG_TASKS = `window.__longTasks = []
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__longTasks.push([e.startTime, e.duration])
}).observe({ type: 'longtask', buffered: true })`

/**
 * Consent at once (its moment kept: the tag, still downloading, acts on it when it runs), then the
 * cold for-you list, then a viewed product's frequently-bought list.
 */
export const VISIT_HEAD = `<script>
window.pocketrec = window.pocketrec || []
window.pocketrec.push(['consent', true])
window.__consentMs = performance.now()
window.__visit = new Promise((resolve, reject) => {
  const poll = setInterval(() => {
    if (typeof window.pocketrec !== 'function') return
    clearInterval(poll)
    window.pocketrec('recommend', { scenario: 'for-you', limit: 20 }).then(
      (r) => resolve({ ms: performance.now(), modelVersion: r.modelVersion, items: r.items.length }),
      reject,
    )
  }, 2)
})
</script>`

export interface VisitTimes {
  /** From navigation start to the shopper's consent (given in the page's head). */
  consentMs: number
  /** From navigation start to the first for-you list (consent is given in the page's head). */
  firstListMs: number
  firstListItems: number
  /** What served the first list: `pools` (the model still loading) or `model`. */
  firstListFrom: string
  /** From navigation start until status() says lists come from the model. */
  personalisedMs: number
  /** After the first list: track a product view, then its frequently-bought-together list. */
  productListMs: number
  productListItems: number
  bytes: ByteCounts
  totalBytes: number
}

export interface NetworkVisitResult {
  link: LinkSettings
  first: VisitTimes
  repeat: VisitTimes
}

async function visitInPage(productId: string) {
  type Command = (name: string, ...rest: unknown[]) => Promise<unknown>
  const w = window as unknown as {
    pocketrec: Command
    __visit: Promise<{ ms: number; modelVersion: string; items: number }>
    __consentMs: number
  }
  const first = await w.__visit
  // Until the model is in, lists come from the pools (status().worker.lists).
  type Status = { worker: { lists: string | null } | null }
  const lists = async () => ((await w.pocketrec('status')) as Status).worker?.lists
  while ((await lists()) !== 'model') await new Promise((resolve) => setTimeout(resolve, 50))
  const modelMs = performance.now()
  await w.pocketrec('track', 'Product Viewed', { product_id: productId })
  const t0 = performance.now()
  const list = (await w.pocketrec('recommend', {
    scenario: 'frequently-bought-together',
    productId,
    limit: 10,
  })) as { items: unknown[] }
  return {
    consentMs: w.__consentMs,
    firstListMs: first.ms,
    firstListItems: first.items,
    firstListFrom: first.modelVersion.endsWith('+pools') ? 'pools' : 'model',
    personalisedMs: modelMs,
    productListMs: performance.now() - t0,
    productListItems: list.items.length,
  }
}

/** A first visit in a fresh profile, then a reload in the same profile, on the slow link. */
export async function measureNetworkVisit(
  distDir: string,
  pagePath: string,
  productId: string,
  link: LinkSettings = SLOW_LINK,
): Promise<NetworkVisitResult> {
  const server = await serveCounting(distDir)
  const profile = await openProfile()
  try {
    // Chromium's own emulation, for the page's target and what it starts (its worker's fetches
    // share the page's network); it holds across the reload. Uploads are not slowed.
    const cdp = await profile.context.newCDPSession(profile.page)
    await cdp.send('Network.enable')
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false,
      latency: link.rttMs,
      downloadThroughput: link.bytesPerSecond,
      uploadThroughput: -1,
    })
    const visit = async (): Promise<VisitTimes> => {
      await waitForTag(profile.page)
      const times = await profile.page.evaluate(visitInPage, productId)
      // Whatever the worker still fetches after the lists (nothing, today) is not waited for.
      const bytes = server.take()
      const totalBytes = Object.values(bytes).reduce((sum, n) => sum + n, 0)
      return { ...times, bytes, totalBytes }
    }
    await profile.page.goto(`${server.origin}${pagePath}`, { timeout: 300_000 })
    const first = await visit()
    // The model's bytes alone take this long on the link: lists from it any sooner would mean
    // the emulation missed the worker's fetches, and every time here would be wrong.
    const modelMs = ((first.bytes.model ?? 0) / link.bytesPerSecond) * 1000
    if (first.personalisedMs < modelMs) {
      throw new Error(
        `expected the worker's fetches slowed (the model alone takes ${modelMs.toFixed(0)} ms on the link), got lists from the model after ${first.personalisedMs.toFixed(0)} ms`,
      )
    }
    await profile.page.reload({ timeout: 300_000 })
    const repeat = await visit()
    return { link, first, repeat }
  } finally {
    await profile.close()
    server.close()
  }
}
