// A worker thread that runs typed jobs one at a time, away from the thread that answers
// requests: the server's job thread (jobs.ts) and the helper's aggregation thread
// (server/helper/aggregator.ts) are both one. The entry is bundled with esbuild into .cache/
// (node-bundle.mjs says why), which works alike under `npm start` and under vitest. A
// thread that dies rejects the calls it held, and the next call starts a fresh one.
import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { bundleForNode } from './node-bundle.mjs'

/** Main thread → thread. */
export interface ThreadRequest<J> {
  id: number
  job: J
}

/** Thread → main thread: the job's result, or what it threw (an Error's own fields only). */
export type ThreadReply<R> =
  | { type: 'done'; id: number; result: R }
  | { type: 'failed'; id: number; error: { name: string; message: string; stack?: string } }

export interface ThreadCaller<J extends { type: string }> {
  /** Runs `job` in the thread; `transfer` moves buffers to it (detached here after). */
  call<R>(job: J, transfer?: ArrayBuffer[]): Promise<R>
  /** Ends the thread as a crash would: its calls are rejected, the next call starts another. */
  terminate(): Promise<void>
  /** Ends the thread for good; later calls are rejected. */
  close(): Promise<void>
}

export interface ThreadOptions {
  /** The entry, relative to the project root (e.g. `server/jobs/job-thread.ts`). */
  entry: string
  /** What the thread is called in errors (`the job thread stopped …`). */
  name: string
  /** The thread's `workerData`: plain data, cloned into it. */
  workerData: unknown
}

export function createThreadCaller<J extends { type: string }>(
  options: ThreadOptions,
): ThreadCaller<J> {
  let thread: Thread<J> | undefined
  let closed = false
  return {
    call<R>(job: J, transfer: ArrayBuffer[] = []): Promise<R> {
      if (closed)
        return Promise.reject(new Error(`the ${options.name} is closed: ${job.type} not run`))
      if (!thread) {
        const started: Thread<J> = startThread(options, () => {
          if (thread === started) thread = undefined
        })
        thread = started
      }
      return thread.call(job, transfer) as Promise<R>
    },
    terminate: async () => thread?.terminate(),
    close: async () => {
      closed = true
      await thread?.terminate()
    },
  }
}

interface Thread<J> {
  call(job: J, transfer: ArrayBuffer[]): Promise<unknown>
  terminate(): Promise<void>
}

interface Pending {
  type: string
  resolve: (result: unknown) => void
  reject: (error: Error) => void
}

/** One worker and the calls it holds; `onEnd` runs once it is gone, whatever ended it. */
function startThread<J extends { type: string }>(
  options: ThreadOptions,
  onEnd: () => void,
): Thread<J> {
  const pending = new Map<number, Pending>()
  let nextId = 0
  let ended: string | undefined
  let worker: Worker | undefined
  const stopped = (type: string, reason: string) =>
    new Error(`the ${options.name} stopped (${reason}) before ${type} finished`)
  const end = (reason: string) => {
    if (ended === undefined) onEnd()
    ended ??= reason
    for (const p of pending.values()) p.reject(stopped(p.type, reason))
    pending.clear()
  }
  const post = (w: Worker, job: J, transfer: ArrayBuffer[]) => {
    if (ended !== undefined) return Promise.reject(stopped(job.type, ended))
    return new Promise<unknown>((resolve, reject) => {
      const id = nextId++
      pending.set(id, { type: job.type, resolve, reject })
      if (pending.size === 1) w.ref()
      w.postMessage({ id, job } satisfies ThreadRequest<J>, transfer)
    })
  }
  const started = threadBundle(options.entry).then((file) => {
    const w = new Worker(file, { workerData: options.workerData, execArgv: [] })
    // Held only while a call waits: an idle thread keeps no process alive.
    w.unref()
    w.on('message', (reply: ThreadReply<unknown>) => {
      const p = pending.get(reply.id)
      if (!p) return
      pending.delete(reply.id)
      if (pending.size === 0) w.unref()
      if (reply.type === 'done') p.resolve(reply.result)
      else p.reject(Object.assign(new Error(reply.error.message), reply.error))
    })
    w.on('error', (error) => end(error.message))
    w.on('exit', (code) => end(`exited with code ${code}`))
    worker = w
    return w
  })
  started.catch((error: unknown) => end(`could not start: ${String(error)}`))
  return {
    // Posted at once when the worker runs: nothing comes between a call and its job.
    call: (job, transfer) =>
      worker ? post(worker, job, transfer) : started.then((w) => post(w, job, transfer)),
    // The 'exit' handler rejects the calls, as for any other death of the thread.
    terminate: async () => void (await (await started.catch(() => undefined))?.terminate()),
  }
}

/**
 * The thread side: answers each request with `run(job)`, one job at a time, in arrival order
 * (a second publish or aggregation would only race the first for the store).
 */
export function serveJobs<J>(
  port: import('node:worker_threads').MessagePort,
  run: (job: J) => Promise<unknown>,
): void {
  let queue = Promise.resolve()
  port.on('message', ({ id, job }: ThreadRequest<J>) => {
    queue = queue.then(async () => {
      let reply: ThreadReply<unknown>
      try {
        reply = { type: 'done', id, result: await run(job) }
      } catch (error) {
        const e = error instanceof Error ? error : new Error(String(error))
        reply = { type: 'failed', id, error: { name: e.name, message: e.message, stack: e.stack } }
      }
      port.postMessage(reply)
    })
  })
}

const bundled = new Map<string, Promise<string>>()

/** The thread's entry bundled into .cache/, once per process and entry. */
function threadBundle(entry: string): Promise<string> {
  let file = bundled.get(entry)
  if (!file) {
    file = (async () => {
      const root = projectRoot()
      const outfile = path.join(root, '.cache', `${path.basename(entry, '.ts')}.mjs`)
      await bundleForNode(path.join(root, entry), outfile)
      return outfile
    })()
    bundled.set(entry, file)
    // A failed build is tried again at the next start.
    file.catch(() => bundled.delete(entry))
  }
  return file
}

/** The folder of package.json: this module runs from its source (vitest) or from a bundle in .cache/. */
function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir)
    if (parent === dir) throw new Error(`expected package.json above ${import.meta.url}`)
    dir = parent
  }
  return dir
}
