// The tag on a page whose policy allows no worker (`worker-src 'none'`), for `npm run
// bench:browser`: it serves lists from the pools on the page's own thread (PROTOCOL.md P2c,
// client/worker/pools-only.ts) and must run no long task there, the whole catalogue's decoding
// included. The page's CPU is slowed 4× (DevTools Emulation.setCPUThrottlingRate, Lighthouse's
// mobile setting): a piece of work that takes 15 ms here is a long task on a slow phone. Times
// consent → the first list (pools and their first-list items) and → a viewed product's similar
// list (which waits for the catalogue), and lists every long task the page saw.
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { openProfile, waitForTag } from '../test/browser/tag-page'
import { RECORD_LONG_TASKS } from './network-visit'

const PAGE = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">
<meta http-equiv="Content-Security-Policy" content="worker-src 'none'">
<title>pools on the page</title>
<script>
${RECORD_LONG_TASKS}
window.pocketrec = window.pocketrec || []
window.pocketrec.push(['consent', true])
window.__consentMs = performance.now()
</script>
<script async src="/pocketrec.js" data-site="test-shop" data-endpoint="/"></script>
`

export interface PagePoolsResult {
  /** What the tag says it runs: `pools-only`, and why (its status error's code). */
  mode: string | null
  errorCode: string | null
  /** Consent → the first trending list (from the pools' first-list items). */
  firstListMs: number
  /** Consent → a viewed product's similar list (the catalogue decoded on the page). */
  catalogueListMs: number
  catalogueListItems: number
  /** Every long task on the page's thread from its first script to the end. */
  longTasks: Array<[number, number]>
}

/** The page's CPU slowdown: Lighthouse's mobile setting. */
export const CPU_SLOWDOWN = 4

export async function measurePagePoolsOnly(
  distDir: string,
  origin: string,
  productId: string,
): Promise<PagePoolsResult> {
  await writeFile(path.join(distDir, 'pools-on-page.html'), PAGE)
  const profile = await openProfile()
  try {
    const cdp = await profile.context.newCDPSession(profile.page)
    await cdp.send('Emulation.setCPUThrottlingRate', { rate: CPU_SLOWDOWN })
    await profile.page.goto(`${origin}/pools-on-page.html`)
    await waitForTag(profile.page)
    return await profile.page.evaluate(async (productId) => {
      type Command = (name: string, ...rest: unknown[]) => Promise<unknown>
      const w = window as unknown as {
        pocketrec: Command
        __consentMs: number
        __longTasks: Array<[number, number]>
      }
      // Out of DevTools' evaluating task: Chromium reports no long task inside it.
      await new Promise((resolve) => setTimeout(resolve, 0))
      await w.pocketrec('recommend', { scenario: 'trending', limit: 10 })
      const firstMs = performance.now()
      const similar = (await w.pocketrec('recommend', {
        scenario: 'similar',
        productId,
        limit: 10,
      })) as { items: unknown[] }
      const catalogueMs = performance.now()
      const status = (await w.pocketrec('status')) as {
        mode: string | null
        error: { code: string } | null
      }
      // Let the observer deliver any entry still queued.
      await new Promise((resolve) => setTimeout(resolve, 200))
      return {
        mode: status.mode,
        errorCode: status.error && status.error.code,
        firstListMs: firstMs - w.__consentMs,
        catalogueListMs: catalogueMs - w.__consentMs,
        catalogueListItems: similar.items.length,
        longTasks: w.__longTasks,
      }
    }, productId)
  } finally {
    await profile.close()
  }
}
