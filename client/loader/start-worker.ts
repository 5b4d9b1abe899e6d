// Starts the recommender off the main thread where the page allows it. Three ways, in order:
// a module worker from the page's own origin, a blob wrapper that imports a cross-origin worker
// script, and (when CSP forbids both) the same module imported on the page itself.
import type { WorkerStatus } from '../../shared/protocol'
import type { PocketrecWorkerApi, PocketrecWorkerModule, WorkerConfig } from '../worker/api'
import { WorkerStartError } from './errors'
import { messageOf } from './report'
import { connectRpc, type RpcEndpoint } from './worker-rpc'

export type WorkerMode = 'worker' | 'blob-worker' | 'main-thread'

export interface WorkerConnection {
  api: PocketrecWorkerApi
  mode: WorkerMode
  /** What `init` answered. */
  status: WorkerStatus
  /** Stops the worker; on the main thread, asks the module to stop all work instead. */
  terminate(): void
}

/** The part of `Worker` the loader uses. */
export interface WorkerLike {
  addEventListener(type: 'error', listener: (event: Event) => void): void
  removeEventListener(type: 'error', listener: (event: Event) => void): void
  terminate(): void
}

/** Platform access, injected so the strategy order is testable without a browser. */
export interface WorkerStartEnv {
  /** Absolute URL of the worker entry module. */
  workerUrl: string
  /** The page's `location.origin`. */
  pageOrigin: string
  /** May throw (SecurityError for a cross-origin URL, CSP); may also fail later, by an `error` event. */
  createWorker(url: string): WorkerLike
  connect(worker: WorkerLike): PocketrecWorkerApi
  createBlobUrl(source: string): string
  revokeBlobUrl(url: string): void
  importModule(url: string): Promise<PocketrecWorkerModule>
}

/** The script could not run there (blocked, missing, not CORS-enabled): try the next way. */
class LoadFailure extends Error {}

/** The real platform: module workers, comlink's protocol, blob URLs and dynamic `import()`. */
export function createBrowserWorkerEnv(workerUrl: string, pageOrigin: string): WorkerStartEnv {
  return {
    workerUrl,
    pageOrigin,
    createWorker: (url) => new Worker(url, { type: 'module' }),
    connect: (worker) => connectRpc(worker as unknown as RpcEndpoint),
    createBlobUrl: (source) => URL.createObjectURL(new Blob([source], { type: 'text/javascript' })),
    revokeBlobUrl: (url) => URL.revokeObjectURL(url),
    importModule: (url) => import(/* @vite-ignore */ url) as Promise<PocketrecWorkerModule>,
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
  const failures: string[] = []
  const attempt = async (
    mode: WorkerMode,
    connect: () => Promise<WorkerConnection>,
  ): Promise<WorkerConnection | null> => {
    try {
      return await connect()
    } catch (error) {
      // An `init` that answers with an error is the worker speaking: another way would say the same.
      if (!(error instanceof LoadFailure)) throw error
      failures.push(`${mode}: ${error.message}`)
      return null
    }
  }
  // A cross-origin URL always throws here, so only try it when the origins match.
  const direct =
    new URL(env.workerUrl).origin === env.pageOrigin
      ? await attempt('worker', () => connectWorker(config, env, () => env.workerUrl, 'worker'))
      : null
  if (direct) return direct
  let blobUrl: string | undefined
  // The blob worker has the page's origin, so its IndexedDB is the page's; the import needs CORS.
  const createBlobUrl = (): string =>
    (blobUrl = env.createBlobUrl(`import ${JSON.stringify(env.workerUrl)}`))
  const wrapped = await attempt('blob-worker', () =>
    connectWorker(config, env, createBlobUrl, 'blob-worker'),
  ).finally(() => blobUrl && env.revokeBlobUrl(blobUrl))
  if (wrapped) return wrapped
  const inline = await attempt('main-thread', async () => {
    const module = await env.importModule(env.workerUrl).catch((error: unknown) => {
      throw new LoadFailure(messageOf(error))
    })
    const api = module.createWorkerApi()
    const status = await api.init(config)
    return { api, mode: 'main-thread', status, terminate: () => void api.setConsent(false) }
  })
  if (inline) return inline
  throw new WorkerStartError(`could not start the pocketrec worker (${failures.join('; ')})`)
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
    throw new LoadFailure(messageOf(error))
  }
  let onError: (event: Event) => void = () => {}
  const failed = new Promise<never>((_, reject) => {
    onError = (event) =>
      reject(new LoadFailure((event as ErrorEvent).message || 'the script failed to load'))
  })
  worker.addEventListener('error', onError)
  try {
    const api = env.connect(worker)
    const status = await Promise.race([api.init(config), failed])
    return { api, mode, status, terminate: () => worker.terminate() }
  } catch (error) {
    worker.terminate()
    throw error
  } finally {
    worker.removeEventListener('error', onError)
  }
}
