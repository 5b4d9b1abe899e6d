import { describe, expect, it } from 'vitest'
import type { PocketrecWorkerApi, WorkerConfig } from '../worker/api'
import { connectPoolsOnly } from '../worker/pools-only'
import { startWorker, type WorkerLike, type WorkerStartEnv } from './start-worker'
import { createFakeWorker, WORKER_STATUS } from './test-fakes'

const CONFIG: WorkerConfig = { site: 'shop-1', endpoint: 'https://api.example' }
const CDN_WORKER = 'https://cdn.example/v1/pocketrec-worker.js'
const SHOP = 'https://shop.example'

type Outcome = 'ok' | 'throws' | 'error-event'

class FakeWorker implements WorkerLike {
  terminated = false
  private onError: ((event: Event) => void) | null = null
  constructor(
    readonly url: string,
    private readonly outcome: Outcome,
  ) {}
  addEventListener(_type: 'error', listener: (event: Event) => void): void {
    this.onError = listener
  }
  removeEventListener(): void {
    this.onError = null
  }
  terminate(): void {
    this.terminated = true
  }
  /** What `init` does through this worker: answer, or fail to load (as CSP or a 404 does). */
  init(): Promise<typeof WORKER_STATUS> {
    if (this.outcome === 'ok') return Promise.resolve(WORKER_STATUS)
    queueMicrotask(() => this.onError?.(new Event('error')))
    return new Promise(() => {})
  }
}

function fakeEnv(options: {
  workerUrl?: string
  direct?: Outcome
  blob?: Outcome
  module?: 'ok' | 'missing'
  initError?: Error
  /** What the page's CSP refused (`securitypolicyviolation` directives). */
  refused?: string[]
}) {
  const imported: string[] = []
  const reasons: Array<[string[], string[]]> = []
  const workers: FakeWorker[] = []
  const blobs: string[] = []
  const revoked: string[] = []
  const inline = createFakeWorker()
  const env: WorkerStartEnv = {
    workerUrl: options.workerUrl ?? CDN_WORKER,
    pageOrigin: SHOP,
    createWorker: (url) => {
      const outcome = url.startsWith('blob:') ? options.blob : options.direct
      if (outcome === 'throws') throw new DOMException('blocked by CSP', 'SecurityError')
      const worker = new FakeWorker(url, outcome ?? 'ok')
      workers.push(worker)
      return worker
    },
    connect: (worker) =>
      ({
        init: () =>
          options.initError ? Promise.reject(options.initError) : (worker as FakeWorker).init(),
      }) as unknown as PocketrecWorkerApi,
    createBlobUrl: (source) => {
      blobs.push(source)
      return `blob:${SHOP}/${blobs.length}`
    },
    revokeBlobUrl: (url) => void revoked.push(url),
    importModule: async (url) => {
      imported.push(url)
      if (options.module === 'missing') throw new TypeError('Failed to fetch module')
      return {
        startPoolsOnly: (config, failures, refused) => {
          reasons.push([failures, refused])
          return connectPoolsOnly(inline.api, config)
        },
      }
    },
    refused: options.refused ?? [],
  }
  return { env, workers, blobs, revoked, inline, imported, reasons }
}

describe('startWorker', () => {
  it("starts a module worker directly from the shop's own origin", async () => {
    const { env, workers, blobs } = fakeEnv({ workerUrl: `${SHOP}/assets/pocketrec-worker.js` })
    const connection = await startWorker(CONFIG, env)
    expect(connection.mode).toBe('worker')
    expect(connection.status).toBe(WORKER_STATUS)
    expect(workers.map((w) => w.url)).toEqual([`${SHOP}/assets/pocketrec-worker.js`])
    expect(blobs).toEqual([])
    connection.terminate()
    expect(workers[0]!.terminated).toBe(true)
  })

  it('wraps a cross-origin worker in a blob that imports it, and revokes the blob URL', async () => {
    const { env, workers, blobs, revoked } = fakeEnv({})
    const connection = await startWorker(CONFIG, env)
    expect(connection.mode).toBe('blob-worker')
    expect(blobs).toEqual([`import "${CDN_WORKER}"`])
    expect(workers.map((w) => w.url)).toEqual([`blob:${SHOP}/1`])
    expect(revoked).toEqual([`blob:${SHOP}/1`])
  })

  it('quotes the URL in the blob so it cannot break out of the import', async () => {
    const { env, blobs } = fakeEnv({ workerUrl: 'https://cdn.example/a"b\\c.js' })
    await startWorker(CONFIG, env)
    expect(blobs).toEqual(['import "https://cdn.example/a\\"b\\\\c.js"'])
  })

  it('falls back to the blob when the same-origin worker fails to load', async () => {
    const { env, workers } = fakeEnv({
      workerUrl: `${SHOP}/pocketrec-worker.js`,
      direct: 'error-event',
    })
    const connection = await startWorker(CONFIG, env)
    expect(connection.mode).toBe('blob-worker')
    expect(workers[0]!.terminated).toBe(true)
  })

  it('serves the pools on the page, not the model, when CSP forbids both workers', async () => {
    const { env, inline, imported, reasons } = fakeEnv({
      blob: 'error-event',
      direct: 'throws',
      workerUrl: `${SHOP}/w.js`,
      refused: ['worker-src', 'worker-src'],
    })
    const connection = await startWorker(CONFIG, env)
    expect(connection.mode).toBe('pools-only')
    // The pools module beside the worker, never the worker's own module (tfjs, WebAssembly).
    expect(imported).toEqual([`${SHOP}/pocketrec-pools.js`])
    // It is told how each way failed and what the CSP refused, to say why (pools-only.test.ts).
    expect(reasons).toEqual([
      [
        ['worker: SecurityError: blocked by CSP', 'blob-worker: the script failed to load'],
        ['worker-src', 'worker-src'],
      ],
    ])
    expect(inline.calls).toEqual([['init', CONFIG]])
    connection.terminate()
    await Promise.resolve()
    // No worker to kill: the module is told to stop all work instead.
    expect(inline.calls.at(-1)).toEqual(['setConsent', false])
  })

  it('names every way it tried when none works', async () => {
    const { env } = fakeEnv({ blob: 'throws', module: 'missing' })
    await expect(startWorker(CONFIG, env)).rejects.toMatchObject({
      name: 'WorkerStartError',
      code: 'E_WORKER_START',
      message:
        'no worker could start (blob-worker: SecurityError: blocked by CSP; ' +
        'pools-only: TypeError: Failed to fetch module)',
    })
  })

  it('passes on an error from init instead of trying the next way', async () => {
    const initError = Object.assign(new Error('expected site to be a non-empty string'), {
      name: 'InvalidRequestError',
    })
    const { env, workers, inline } = fakeEnv({ initError })
    await expect(startWorker(CONFIG, env)).rejects.toBe(initError)
    expect(workers).toHaveLength(1)
    expect(workers[0]!.terminated).toBe(true)
    expect(inline.calls).toEqual([])
  })
})
