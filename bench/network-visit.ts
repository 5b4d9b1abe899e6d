// A shopper's first and repeat visit on a slow link, for `npm run bench:browser`: the built shop
// page served by the real app behind a link the bench's server emulates (every response body
// shares one downlink of `bytesPerSecond`, and each response waits one round trip first), so
// the worker's own fetches are slowed too. It counts the bytes of every response body by kind
// (what travels: brotli or gzip when the browser accepts it), and times consent → first list,
// the first list for a viewed product (its co-visitation shard included), and the same on a
// reload with the same profile.
import { serve } from '@hono/node-server'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { createApp } from '../server/app'
import { openProfile, waitForTag } from '../test/browser/tag-page'

export interface LinkSettings {
  /** Downlink shared by all responses (1.6 Mbps ≈ 200,000 bytes/s). */
  bytesPerSecond: number
  /** Waited once per response before its first byte. */
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

/** The app over `distDir` behind the emulated link; `counts` holds body bytes by kind. */
async function serveSlow(distDir: string, link: LinkSettings) {
  const app = createApp({ distDir: path.relative(process.cwd(), distDir) })
  let counts: ByteCounts = {}
  let nextFree = 0
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
  const server = serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch: async (request) => {
      const response = await app.fetch(request)
      await sleep(link.rttMs)
      if (!response.body) return response
      const kind = kindOf(new URL(request.url).pathname)
      const reader = response.body.getReader()
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          const { done, value } = await reader.read()
          if (done) return controller.close()
          for (let at = 0; at < value.byteLength; at += 16_384) {
            const chunk = value.subarray(at, at + 16_384)
            // One shared downlink: each chunk leaves when the link is free again.
            const start = Math.max(performance.now(), nextFree)
            nextFree = start + (chunk.byteLength / link.bytesPerSecond) * 1000
            await sleep(nextFree - performance.now())
            counts[kind] = (counts[kind] ?? 0) + chunk.byteLength
            controller.enqueue(chunk)
          }
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

/** Consent at once, then the cold for-you list, then a viewed product's frequently-bought list. */
export const VISIT_HEAD = `<script>
window.pocketrec = window.pocketrec || []
window.pocketrec.push(['consent', true])
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
  const server = await serveSlow(distDir, link)
  const profile = await openProfile()
  try {
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
    await profile.page.reload({ timeout: 300_000 })
    const repeat = await visit()
    return { link, first, repeat }
  } finally {
    await profile.close()
    server.close()
  }
}
