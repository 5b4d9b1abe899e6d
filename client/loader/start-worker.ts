// Starts the recommender off the main thread where the page allows it: a module worker from the
// page's own origin, else a blob wrapper that imports a cross-origin worker script. Where neither
// may start (CSP worker-src), the page imports the pools-only module (pocketrec-pools.js beside
// the worker): lists from the pools, no model, so no long task on the page's thread.
import type { WorkerStatus } from '../../shared/protocol'
import type { PocketrecWorkerApi, WorkerConfig } from '../worker/api'
import type { PoolsOnlyModule } from '../worker/pools-only'
import { WorkerStartError } from './errors'
import { messageOf } from './report'
import { connectRpc, type RpcEndpoint } from './worker-rpc'

export type WorkerMode = 'worker' | 'blob-worker' | 'pools-only'

export interface WorkerConnection {
  api: PocketrecWorkerApi
  mode: WorkerMode
  /** What `init` answered; in pools-only mode its `error` says why no worker runs. */
  status: WorkerStatus
  /** Stops the worker; pools-only, asks the module to drop what it loaded instead. */
  terminate(): void
}

/** The part of `Worker` the loader uses. */
export interface WorkerLike {
  addEventListener(type: 'error', listener: (event: Event) => void): void
  terminate(): void
}

/** Platform access, injected so the strategy order is testable without a browser. */
export interface WorkerStartEnv {
  /** Absolute URL of the worker entry module; the pools-only module sits beside it. */
  workerUrl: string
  /** The page's `location.origin`. */
  pageOrigin: string
  /** May throw (SecurityError for a cross-origin URL, CSP); may also fail later, by an `error` event. */
  createWorker(url: string): WorkerLike
  connect(worker: WorkerLike): PocketrecWorkerApi
  createBlobUrl(source: string): string
  revokeBlobUrl(url: string): void
  importModule(url: string): Promise<PoolsOnlyModule>
  /** The directives of every `securitypolicyviolation` reported on the page so far. */
  refused: string[]
}

/** The script could not run there (blocked, missing, not CORS-enabled): try the next way. */
class LoadFailure extends Error {}

/** The real platform: module workers, comlink's protocol, blob URLs and dynamic `import()`. */
export function createBrowserWorkerEnv(workerUrl: string, pageOrigin: string): WorkerStartEnv {
  // From the tag's first moment: the report of a refused worker comes once, as it is refused.
  const refused: string[] = []
  addEventListener('securitypolicyviolation', (event) =>
    refused.push((event as SecurityPolicyViolationEvent).effectiveDirective),
  )
  return {
    workerUrl,
    pageOrigin,
    createWorker: (url) => new Worker(url, { type: 'module' }),
    connect: (worker) => connectRpc(worker as unknown as RpcEndpoint),
    createBlobUrl: (source) => URL.createObjectURL(new Blob([source], { type: 'text/javascript' })),
    revokeBlobUrl: (url) => URL.revokeObjectURL(url),
    importModule: (url) => import(/* @vite-ignore */ url) as Promise<PoolsOnlyModule>,
    refused,
  }
}

/**
 * Starts and initialises the worker the first way that works; a worker counts as started once
 * `init` answers, because a blocked or missing script only shows up as a later `error` event.
 */
export async function startWorker(
  config: WorkerConfig,
  env: WorkerStartEnv,
): Promise<WorkerConnection> {
  const { workerUrl } = env
  const failures: string[] = []
  // A cross-origin URL always throws here, so a plain worker is tried only when the origins match.
  const modes: WorkerMode[] = ['blob-worker', 'pools-only']
  if (new URL(workerUrl).origin === env.pageOrigin) modes.unshift('worker')
  for (const mode of modes) {
    let blobUrl = ''
    try {
      if (mode === 'pools-only') {
        const url = new URL('pocketrec-pools.js', workerUrl).href
        // Imported first: the refusal's report is queued behind the worker's error event.
        const pools = await env.importModule(url).catch(loadFailure)
        return await pools.startPoolsOnly(config, failures, env.refused)
      }
      // The blob worker has the page's origin, so its IndexedDB is the page's; the import needs CORS.
      const url = () =>
        mode === 'worker'
          ? workerUrl
          : (blobUrl = env.createBlobUrl(`import ${JSON.stringify(workerUrl)}`))
      return await connectWorker(config, env, url, mode)
    } catch (error) {
      // An `init` that answers with an error is the worker speaking: another way would say the same.
      if (!(error instanceof LoadFailure)) throw error
      failures.push(`${mode}: ${error.message}`)
    } finally {
      if (blobUrl) env.revokeBlobUrl(blobUrl)
    }
  }
  throw new WorkerStartError(`no worker could start (${failures.join('; ')})`)
}

function loadFailure(error: unknown): never {
  throw new LoadFailure(messageOf(error))
}

async function connectWorker(
  config: WorkerConfig,
  env: WorkerStartEnv,
  url: () => string,
  mode: WorkerMode,
): Promise<WorkerConnection> {
  let worker: WorkerLike
  try {
    worker = env.createWorker(url())
  } catch (error) {
    loadFailure(error)
  }
  // Kept after the start: a later error event settles nothing, as the race is over.
  const failed = new Promise<never>((_, reject) =>
    worker.addEventListener('error', (event) =>
      reject(new LoadFailure((event as ErrorEvent).message || 'the script failed to load')),
    ),
  )
  try {
    const api = env.connect(worker)
    const status = await Promise.race([api.init(config), failed])
    return { api, mode, status, terminate: () => worker.terminate() }
  } catch (error) {
    worker.terminate()
    throw error
  }
}
