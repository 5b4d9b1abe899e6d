// The tag on a shop page of another origin, loaded from a "CDN" (the real server on another
// port), under each Content-Security-Policy a shop may send (client/loader/README.md,
// "Content-Security-Policy"): each one either recommends or reports its stable code in
// status().error and a `pocketrec:error` event, and in every case the page's own thread runs no
// long task (PerformanceObserver 'longtask', from the page's first script to the case's end).
// One case's server is a federated leader whose helper is on another origin (uploads refused).
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Rollup } from 'vite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { setNodeBackend } from '../../model/node-backend'
import type { StatusError } from '../../shared/protocol'
import type { MountedPair } from '../fixtures/listen'
import { chromiumSkipReason } from './harness'
import { openProfile, serveDist, startFederatedShop, waitForTag } from './tag-page'

const skip = chromiumSkipReason()
const NONCE = 'pocketrec-test'

let work: string
let chunks: Rollup.OutputChunk[]
let cdn: { origin: string; close(): void }
/** A leader whose helper (mounted on it) devices are told is at `localhost`: another origin. */
let leader: MountedPair
/** In-stock products of the release, for a shopper to view: the session the worker trains on. */
let viewed: string[]
let shop: { server: Server; origin: string }

/** The policies, by page path; the CDN's origin fills `CDN`. No entry: no CSP header at all. */
const POLICIES: Record<string, string> = {
  // The blob worker is refused; a cross-origin URL can never be a worker: no worker at all.
  'worker-src-without-blob': `script-src 'nonce-${NONCE}' CDN 'wasm-unsafe-eval'; worker-src CDN; connect-src CDN`,
  // Everything the tag needs except WebAssembly.
  'strict-without-wasm': `script-src 'nonce-${NONCE}' CDN; worker-src blob: CDN; connect-src CDN; object-src 'none'; base-uri 'none'`,
  // The worker starts; its downloads from the server are refused.
  'connect-src-without-server': `script-src 'nonce-${NONCE}' CDN 'wasm-unsafe-eval'; worker-src blob: CDN; connect-src 'self'`,
  // Everything the tag needs from the server, which is a federated leader here; its helper of
  // the two-server channel is on another origin, refused: lists work, uploads do not.
  'connect-src-without-helper': `script-src 'nonce-${NONCE}' CDN 'wasm-unsafe-eval'; worker-src blob: CDN; connect-src CDN`,
}

/** Pages whose tag comes from the federated leader instead of the plain CDN. */
const FROM_LEADER = new Set(['connect-src-without-helper'])

interface Outcome {
  mode: string | null
  items: number
  rejected: { name: string; message: string } | null
  backend: string | null
  error: StatusError | null
  events: StatusError[]
  longTasks: Array<{ startTime: number; duration: number }>
}

/**
 * Opens the shop page at `name`, gives consent, asks for a list, and waits for `events` reports.
 * `busyMs`: a task of the page's own that long first (the check that long tasks are seen at all).
 */
/**
 * runCase, once more when a long task was seen: on a loaded 2-core machine (CI runs test files
 * side by side) a 20 ms piece of the page's work can stretch past 50 ms once. A long task the
 * tag really runs is there both times, and the first run's tasks are kept in the log.
 */
async function runSteadyCase(
  name: string,
  events: number,
  track: string[] = [],
): Promise<{ outcome: Outcome; log: string }> {
  const first = await runCase(name, events, 0, track)
  if (first.outcome.longTasks.length === 0) return first
  const again = await runCase(name, events, 0, track)
  const seen = JSON.stringify(first.outcome.longTasks)
  return { ...again, log: `first run's long tasks: ${seen}\n${again.log}` }
}

async function runCase(
  name: string,
  events: number,
  busyMs = 0,
  track: string[] = [],
): Promise<{ outcome: Outcome; log: string }> {
  const log: string[] = []
  const profile = await openProfile(log)
  try {
    await profile.page.addInitScript(() => {
      const seen = window as unknown as {
        longTasks: Array<{ startTime: number; duration: number }>
        reports: StatusError[]
      }
      seen.longTasks = []
      seen.reports = []
      new PerformanceObserver((list) => {
        for (const { startTime, duration } of list.getEntries()) {
          seen.longTasks.push({ startTime, duration })
        }
      }).observe({ type: 'longtask', buffered: true })
      addEventListener('pocketrec:error', (event) =>
        seen.reports.push((event as CustomEvent<StatusError>).detail),
      )
    })
    await profile.page.goto(`${shop.origin}/${name}`)
    await waitForTag(profile.page)
    const outcome = await profile.page.evaluate(
      async ([events, busyMs, track]) => {
        type Command = (name: string, ...args: unknown[]) => Promise<unknown>
        const seen = window as unknown as {
          pocketrec: Command
          longTasks: Outcome['longTasks']
          reports: StatusError[]
        }
        // Out of the evaluating task first: Chromium reports no long task for DevTools' own tasks,
        // and with everything resolved, the tag's work would run inside it.
        await new Promise((resolve) =>
          setTimeout(() => {
            for (const start = performance.now(); performance.now() - start < busyMs;);
            resolve(null)
          }),
        )
        await seen.pocketrec('consent', true)
        let items = 0
        let rejected: Outcome['rejected'] = null
        try {
          const list = (await seen.pocketrec('recommend', { scenario: 'trending', limit: 5 })) as {
            items: unknown[]
          }
          items = list.items.length
        } catch (error) {
          rejected = { name: (error as Error).name, message: (error as Error).message }
        }
        // Views to train on: after a pause the worker fine-tunes, then uploads its update.
        for (const id of track) await seen.pocketrec('track', 'Product Viewed', { product_id: id })
        // The reports come as the worker finds them: the release's once it is in (after
        // recommend answered from the pools), an upload's after training.
        for (let waited = 0; seen.reports.length < events && waited < 60_000; waited += 50) {
          await new Promise((resolve) => setTimeout(resolve, 50))
        }
        // A first visit answers from the pools until the model is in; its backend is chosen then.
        for (let waited = 0; waited < 30_000; waited += 50) {
          const now = (await seen.pocketrec('status')) as {
            mode: string | null
            worker: { lists: string | null } | null
          }
          if (now.mode === 'pools-only' || now.worker?.lists !== 'pools') break
          await new Promise((resolve) => setTimeout(resolve, 50))
        }
        const status = (await seen.pocketrec('status')) as {
          mode: string | null
          error: StatusError | null
          worker: { backend: string | null } | null
        }
        // Let the observer deliver any entry still queued.
        await new Promise((resolve) => setTimeout(resolve, 200))
        return {
          mode: status.mode,
          items,
          rejected,
          backend: status.worker && status.worker.backend,
          error: status.error,
          events: seen.reports,
          longTasks: seen.longTasks,
        }
      },
      [events, busyMs, track] as const,
    )
    return { outcome, log: log.join('\n') }
  } finally {
    await profile.close()
  }
}

describe.skipIf(skip)('the tag under page policies, in headless Chromium', () => {
  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'pocketrec-csp-'))
    await setNodeBackend('cpu')
    const federated = await startFederatedShop(work, {
      helperUrl: (origin) => `${origin.replace('127.0.0.1', 'localhost')}/helper`,
    })
    leader = federated.pair
    viewed = federated.viewed.map((item) => item.id)
    chunks = federated.chunks
    cdn = await serveDist(federated.distDir)
    const http = createServer((req, res) => {
      const name = (req.url ?? '/').slice(1)
      const policy = Object.hasOwn(POLICIES, name) ? POLICIES[name]! : null
      const origin = FROM_LEADER.has(name) ? leader.origin : cdn.origin
      const headers: Record<string, string> = { 'content-type': 'text/html; charset=utf-8' }
      if (policy) headers['content-security-policy'] = policy.replaceAll('CDN', origin)
      res
        .writeHead(200, headers)
        .end(
          '<!doctype html><meta charset="utf-8"><title>shop</title>' +
            `<script nonce="${NONCE}">window.pocketrec = window.pocketrec || []</script>` +
            `<script async src="${origin}/pocketrec.js" data-site="test-shop" ` +
            `data-endpoint="${origin}/" data-backend="wasm"></script>\n`,
        )
    })
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
    shop = { server: http, origin: `http://127.0.0.1:${(http.address() as AddressInfo).port}` }
  }, 180_000)

  afterAll(async () => {
    cdn?.close()
    await leader?.close()
    shop?.server.close()
    if (work) await rm(work, { recursive: true, force: true })
  })

  it('sees a long task the page runs: the measurement every case relies on works', async () => {
    const { outcome, log } = await runCase('no-csp', 0, 120)
    expect(outcome.longTasks, log).toHaveLength(1)
    expect(outcome.longTasks[0]!.duration).toBeGreaterThanOrEqual(120)
  }, 90_000)

  it('recommends from a blob worker with wasm under no CSP, reporting nothing', async () => {
    const { outcome, log } = await runSteadyCase('no-csp', 0)
    expect(outcome, log).toMatchObject({
      mode: 'blob-worker',
      items: 5,
      backend: 'wasm',
      error: null,
      events: [],
      longTasks: [],
    })
  }, 90_000)

  it('serves pool lists on the page, with E_WORKER_BLOCKED, when worker-src lacks blob:', async () => {
    const { outcome, log } = await runSteadyCase('worker-src-without-blob', 1)
    expect(outcome, log).toMatchObject({
      mode: 'pools-only',
      backend: null,
      error: { code: 'E_WORKER_BLOCKED' },
      events: [{ code: 'E_WORKER_BLOCKED' }],
      longTasks: [],
    })
    expect(outcome.items, log).toBeGreaterThan(0)
    expect(outcome.error!.message).toContain("worker-src allows neither the worker's URL nor blob:")
  }, 90_000)

  it('loads no tfjs on the page for that: the pools module bundles none', () => {
    const byName = new Map(chunks.map((chunk) => [chunk.fileName, chunk]))
    const pools = chunks.find((chunk) => chunk.fileName === 'pocketrec-pools.js')!
    const graph = [pools, ...pools.imports.map((name) => byName.get(name)!)]
    const modules = graph.flatMap((chunk) => chunk.moduleIds)
    expect(modules.some((id) => id.includes('client/worker/pools-only.ts'))).toBe(true)
    expect(modules.filter((id) => /tensorflow|tfjs|\.wasm/.test(id))).toEqual([])
  })

  it("recommends on cpu in the worker, with E_WASM_BLOCKED, without 'wasm-unsafe-eval'", async () => {
    const { outcome, log } = await runSteadyCase('strict-without-wasm', 1)
    expect(outcome, log).toMatchObject({
      mode: 'blob-worker',
      items: 5,
      backend: 'cpu',
      error: { code: 'E_WASM_BLOCKED' },
      events: [{ code: 'E_WASM_BLOCKED' }],
      longTasks: [],
    })
  }, 90_000)

  it('reports E_CSP_CONNECT, in status and as an event, when connect-src lacks the server', async () => {
    const { outcome, log } = await runSteadyCase('connect-src-without-server', 1)
    expect(outcome, log).toMatchObject({
      mode: 'blob-worker',
      items: 0,
      rejected: { name: 'ModelUnavailableError' },
      error: { code: 'E_CSP_CONNECT' },
      events: [{ code: 'E_CSP_CONNECT' }],
      longTasks: [],
    })
    expect(outcome.error!.message).toContain(`add ${cdn.origin} to connect-src`)
  }, 90_000)

  it("recommends, and reports E_CSP_CONNECT for its uploads, when connect-src lacks the helper's origin", async () => {
    const { outcome, log } = await runSteadyCase('connect-src-without-helper', 1, viewed)
    const helper = leader.origin.replace('127.0.0.1', 'localhost')
    expect(outcome, log).toMatchObject({
      mode: 'blob-worker',
      items: 5,
      backend: 'wasm',
      error: { code: 'E_CSP_CONNECT' },
      events: [{ code: 'E_CSP_CONNECT' }],
      longTasks: [],
    })
    expect(outcome.error!.message).toContain(
      `uploads to the federation helper (${helper}) are blocked; recommendations still work`,
    )
    expect(outcome.error!.message).toContain(`add ${helper} to connect-src`)
  }, 180_000)
})
