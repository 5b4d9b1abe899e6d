// Keeps the loader's one worker: starts it when the page is idle, runs every call on it, replaces
// one that stops answering, and records why it could not start. Consent decides when it runs.
import type { WorkerStatus } from '../../shared/protocol'
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
}

/** The worker's part of the loader's `status()`. */
export interface SupervisorStatus {
  mode: WorkerMode | null
  worker: WorkerStatus | null
  /** Why the worker could not start. */
  error: string | null
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
   * stops. With none running, what an earlier visit stored is deleted through a worker started for
   * that alone; where the browser cannot list databases, only if the withdrawal is `explicit`.
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
  let startError: string | null = null
  let restarts = 0

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
        reject(new ConsentRequiredError('consent was withdrawn before the worker started'))
      }
    })
    worker = started
    started.then(
      (c) => {
        if (worker === started) connection = c
      },
      (error: unknown) => {
        if (worker !== started) return
        startError = messageOf(error)
        warn(error)
      },
    )
    return started
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
      startError = `the worker stopped answering ${restarts} times`
      worker = Promise.reject(new WorkerStartError(startError))
      worker.catch(() => {})
    }
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
      const names = (await idb.databases()).map((db) => db.name || '')
      if (!names.some((name) => name.startsWith(DATABASE_PREFIX))) return
    } else if (!evenIfUnknown) {
      return
    }
    const c = await startWorker(config)
    try {
      await c.api.forget()
    } finally {
      c.terminate()
    }
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
      if (c) {
        try {
          await c.api.forget()
        } finally {
          c.terminate()
        }
        return
      }
      await forgetStoredData(explicit)
    },
    status: async () => {
      const c = connection
      return {
        // Not `c?.mode ?? null`: lowered to ES2019, `?.` and `??` cost the tag bytes.
        mode: (c && c.mode) || null,
        worker: c ? await call((api) => api.status()) : null,
        error: startError,
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
      c.api.status().then(
        () => (answered = true),
        () => (answered = true),
      )
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
  if (win.requestIdleCallback && win.cancelIdleCallback) {
    const id = win.requestIdleCallback(task, { timeout: IDLE_TIMEOUT_MS })
    return () => win.cancelIdleCallback!(id)
  }
  const id = win.setTimeout(task, 1)
  return () => win.clearTimeout(id)
}
