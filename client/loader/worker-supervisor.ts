// Keeps the loader's one worker: starts it when the page is idle, runs every call on it, replaces
// one that stops answering, and reports what keeps it from its best (status().error and the
// `pocketrec:error` event, once per distinct failure). Consent decides when it runs.
import type { StatusError, WorkerStatus } from '../../shared/protocol'
import type { PocketrecWorkerApi, WorkerConfig } from '../worker/api'
import { ConsentRequiredError, WorkerStartError } from './errors'
import { messageOf, warn } from './report'
import type { WorkerConnection, WorkerMode } from './start-worker'

/** Every database the worker creates starts with this (see `forget` in client/worker/api.ts). */
const DATABASE_PREFIX = 'pocketrec'
/** requestIdleCallback's deadline: a busy page still gets recommendations within seconds. */
const IDLE_TIMEOUT_MS = 2000
/**
 * A call unanswered after PING_MS gets a `status` ping; a worker that answers neither within
 * another PING_MS has died (crashed, killed for memory) and is replaced, at most MAX_RESTARTS
 * times a page. Its data is in IndexedDB, so the fresh one carries on; the call is retried once.
 * A live worker answers a ping within milliseconds: it yields between training slices and
 * downloads asynchronously.
 */
const PING_MS = 5000
const MAX_RESTARTS = 3

/** The part of `window` the supervisor touches. */
export interface SupervisorWindow {
  /** Only `databases()` is used, to find data an earlier visit left behind. */
  indexedDB?: { databases?: () => Promise<Array<{ name?: string }>> }
  setTimeout(handler: () => void, timeoutMs: number): number
  clearTimeout(id: number): void
  requestIdleCallback?(callback: () => void, options?: { timeout: number }): number
  cancelIdleCallback?(id: number): void
  /** Receives `pocketrec:error` (a CustomEvent whose detail is a StatusError). */
  dispatchEvent(event: Event): boolean
}

/** The worker's part of the loader's `status()`. */
export interface SupervisorStatus {
  mode: WorkerMode | null
  worker: WorkerStatus | null
  /**
   * Why the tag runs with less than it could: no worker at all (E_WORKER_START), else what the
   * worker (or the pools-only module) reports: E_WORKER_BLOCKED, E_WASM_BLOCKED, E_CSP_CONNECT…
   */
  error: StatusError | null
}

export interface WorkerSupervisor {
  /** Starts the worker when the page is idle, unless one runs or is starting. */
  start(): void
  /** Runs `use` on the worker; if the worker died meanwhile, once more on a fresh one. */
  call<T>(use: (api: PocketrecWorkerApi) => Promise<T>): Promise<T>
  /** Deletes everything stored, through the worker if one runs (it keeps running). */
  forget(): Promise<void>
  /**
   * Consent was withdrawn, or cannot be given (Do Not Track): the worker deletes its data and
   * stops. With none running, or one that stopped answering (it is stopped first), what is
   * stored is deleted through a worker started for that alone; where the browser cannot list
   * databases and none ran, only if the withdrawal is `explicit`.
   */
  withdraw(explicit: boolean): Promise<void>
  status(): Promise<SupervisorStatus>
  /** Stops the worker, keeping stored data. */
  destroy(): void
}

/** Creates the supervisor; it starts nothing until `start` or a `call`. */
export function createWorkerSupervisor(
  win: SupervisorWindow,
  config: WorkerConfig,
  startWorker: (config: WorkerConfig) => Promise<WorkerConnection>,
): WorkerSupervisor {
  let worker: Promise<WorkerConnection> | null = null
  let connection: WorkerConnection | null = null
  let cancelStart: (() => void) | null = null
  let startError: StatusError | null = null
  /** The last failure dispatched as `pocketrec:error`: the same one is not dispatched twice. */
  let reported = ''
  let restarts = 0

  /** Each failure has its own message (they name what failed): the message tells them apart. */
  function report(error: StatusError | null): void {
    if (!error || error.message === reported) return
    reported = error.message
    win.dispatchEvent(new CustomEvent('pocketrec:error', { detail: error }))
  }

  function getWorker(): Promise<WorkerConnection> {
    if (worker) return worker
    const started = new Promise<WorkerConnection>((resolve, reject) => {
      const cancelIdle = whenIdle(win, () => {
        cancelStart = null
        startWorker(config)
          .then(async (c) => {
            await c.api.setConsent(true)
            return c
          })
          .then(resolve, reject)
      })
      cancelStart = () => {
        cancelIdle()
        reject(new ConsentRequiredError('consent withdrawn before the worker started'))
      }
    })
    worker = started
    started.then(
      (c) => {
        if (worker !== started) return
        connection = c
        report(c.status.error)
        watch(c, c.status.error)
      },
      (error: unknown) => {
        if (worker !== started) return
        fail((error as WorkerStartError).code, messageOf(error))
        warn(error)
      },
    )
    return started
  }

  /**
   * Reports each failure `c` finds after its start, as it finds it: the release's download (once
   * it is in or has failed: E_CSP_CONNECT…), later an upload the page's CSP refused.
   */
  function watch(c: WorkerConnection, seen: StatusError | null): void {
    c.api.nextError(seen && seen.message).then((error) => {
      if (connection !== c) return
      report(error)
      watch(c, error)
    }, warn)
  }

  function call<T>(use: (api: PocketrecWorkerApi) => Promise<T>): Promise<T> {
    const attempt = (c: WorkerConnection) => supervise(win, c, use(c.api), () => replace(c))
    return getWorker().then((c) =>
      attempt(c).catch((error: unknown) => {
        if (error !== LOST) throw error
        return getWorker().then(attempt)
      }),
    )
  }

  /** `c` died: the next call starts a fresh worker, unless too many died already. */
  function replace(c: WorkerConnection): void {
    if (connection !== c) return
    c.terminate()
    worker = connection = null
    if (++restarts > MAX_RESTARTS) {
      worker = Promise.reject(
        new WorkerStartError(
          fail('E_WORKER_START', `the worker stopped answering ${restarts} times`),
        ),
      )
      worker.catch(() => {})
    }
  }

  /** Records and reports why no worker runs; answers the message. */
  function fail(code: StatusError['code'] | undefined, message: string): string {
    report((startError = { code: code || 'E_WORKER_START', message }))
    return message
  }

  /** Forgets the worker, running or starting, and hands back what it was. */
  function stop(): Promise<WorkerConnection> | null {
    const running = worker
    cancelStart?.()
    worker = connection = cancelStart = null
    return running
  }

  /**
   * Deletes what an earlier visit stored, without keeping a worker. Without `databases()` (Firefox
   * before 126) we cannot tell whether anything is there: only `evenIfUnknown` starts one.
   */
  async function forgetStoredData(evenIfUnknown: boolean): Promise<void> {
    const idb = win.indexedDB
    if (!idb) return
    if (idb.databases) {
      const dbs = await idb.databases()
      if (!dbs.some((db) => (db.name || '').startsWith(DATABASE_PREFIX))) return
    } else if (!evenIfUnknown) {
      return
    }
    await forgetThenStop(win, await startWorker(config))
  }

  return {
    start: () => {
      startError = null
      void getWorker().catch(() => {})
    },
    call,
    forget: () => (worker ? call((api) => api.forget()) : forgetStoredData(true)),
    withdraw: async (explicit) => {
      const running = stop()
      const c = running && (await running.catch(() => null))
      if (!c) return forgetStoredData(explicit)
      // A worker that answers neither `forget` nor a ping deletes nothing: once stopped it lets
      // go of its databases, and a worker started for that alone deletes them.
      await forgetThenStop(win, c).catch((error: unknown) => {
        if (error !== LOST) throw error
        return forgetStoredData(true)
      })
    },
    status: async () => {
      const c = connection
      const status = c && (await call((api) => api.status()))
      return {
        // Not `c?.mode ?? null`: lowered to ES2019, `?.` and `??` cost the tag bytes.
        mode: (c && c.mode) || null,
        worker: status,
        error: startError || (status && status.error) || null,
      }
    },
    destroy: () => {
      const running = stop()
      if (running) {
        running.then(
          (c) => c.terminate(),
          () => {},
        )
      }
    },
  }
}

/**
 * Deletes the shopper's data through `c`, then stops it; rejects with LOST when `c` answers
 * neither the call nor a ping (supervise).
 */
async function forgetThenStop(win: SupervisorWindow, c: WorkerConnection): Promise<void> {
  try {
    await supervise(win, c, c.api.forget(), () => {})
  } finally {
    c.terminate()
  }
}

/** A supervised call's worker died; `call` retries on a fresh one. */
const LOST = new Error('the worker stopped answering')

/**
 * Settles as `pending` does, or rejects with LOST and calls `onDead` when `c` answers neither it
 * nor a `status` ping, PING_MS each.
 */
function supervise<T>(
  win: SupervisorWindow,
  c: WorkerConnection,
  pending: Promise<T>,
  onDead: () => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false
    let answered = false
    const timer = win.setTimeout(() => {
      if (settled) return
      const answer = () => (answered = true)
      c.api.status().then(answer, answer)
      win.setTimeout(() => {
        if (settled || answered) return
        settled = true
        reject(LOST)
        onDead()
      }, PING_MS)
    }, PING_MS)
    const done =
      <V>(settle: (value: V) => void) =>
      (value: V) => {
        settled = true
        win.clearTimeout(timer)
        settle(value)
      }
    pending.then(done(resolve), done(reject))
  })
}

/** Runs `task` when the page is idle; returns a function that cancels it. */
function whenIdle(win: SupervisorWindow, task: () => void): () => void {
  // Every browser with requestIdleCallback has cancelIdleCallback.
  if (win.requestIdleCallback) {
    const id = win.requestIdleCallback(task, { timeout: IDLE_TIMEOUT_MS })
    return () => win.cancelIdleCallback!(id)
  }
  const id = win.setTimeout(task, 1)
  return () => win.clearTimeout(id)
}
