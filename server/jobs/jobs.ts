// The main thread's handle on the job thread (job-thread.ts): one typed call per job, each a
// promise. The thread's entry is bundled with esbuild into .cache/ (scripts/node-bundle.mjs says
// why), which works alike under `npm start` and under vitest. A thread that dies rejects the
// calls it held, and the next call starts a fresh one.
import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { bundleForNode } from '../../scripts/node-bundle.mjs'
import type { CandidateDecision, PutValidationResult } from '../evaluation/evaluate-versions'
import type { PublishAttempt } from '../federated/publisher'
import type {
  EvaluateOutcome,
  Job,
  JobReply,
  JobRequest,
  JobResults,
  JobThreadConfig,
  JobType,
  ShopChangeOutcome,
} from './protocol'

export interface Jobs {
  /** The publisher's check (publishIfDue with pruning). */
  publish(): Promise<PublishAttempt>
  /** `evaluated` promotion: score the waiting candidates, promote or keep back (P26). */
  review(): Promise<CandidateDecision[]>
  evaluate(version: number): Promise<EvaluateOutcome>
  /** A request body as it came, unparsed; transferred to the thread (detached here after). */
  putValidation(body: ArrayBuffer): Promise<PutValidationResult>
  /** A request body as it came, unparsed; transferred to the thread (detached here after). */
  putShopChange(kind: 'catalogue' | 'rules', body: ArrayBuffer): Promise<ShopChangeOutcome>
  /** Ends the thread as a crash would: its calls are rejected, the next call starts another. */
  terminate(): Promise<void>
  /** Ends the thread for good; later calls are rejected. */
  close(): Promise<void>
}

export function createJobs(config: JobThreadConfig): Jobs {
  if (config.store.kind === 'sqlite' && ['', ':memory:'].includes(config.store.file)) {
    throw new Error(
      `expected an SQLite file, got ${JSON.stringify(config.store.file)}: the job thread ` +
        'opens its own connection, and an in-memory database is private to one',
    )
  }
  let thread: Thread | undefined
  let closed = false
  const call = <T extends JobType>(job: Job & { type: T }, transfer: ArrayBuffer[] = []) => {
    if (closed) return Promise.reject(new Error(`the job thread is closed: ${job.type} not run`))
    if (!thread) {
      const started: Thread = startThread(config, () => {
        if (thread === started) thread = undefined
      })
      thread = started
    }
    return thread.call(job, transfer) as Promise<JobResults[T]>
  }
  return {
    publish: () => call({ type: 'publish' }),
    review: () => call({ type: 'review' }),
    evaluate: (version) => call({ type: 'evaluate', version }),
    putValidation: (body) => call({ type: 'put-validation', body }, [body]),
    putShopChange: (kind, body) => call({ type: 'put-shop-change', kind, body }, [body]),
    terminate: async () => thread?.terminate(),
    close: async () => {
      closed = true
      await thread?.terminate()
    },
  }
}

interface Thread {
  call(job: Job, transfer: ArrayBuffer[]): Promise<JobResults[JobType]>
  terminate(): Promise<void>
}

interface Pending {
  type: JobType
  resolve: (result: JobResults[JobType]) => void
  reject: (error: Error) => void
}

/** One worker and the calls it holds; `onEnd` runs once it is gone, whatever ended it. */
function startThread(config: JobThreadConfig, onEnd: () => void): Thread {
  const pending = new Map<number, Pending>()
  let nextId = 0
  let ended: string | undefined
  let worker: Worker | undefined
  const end = (reason: string) => {
    if (ended === undefined) onEnd()
    ended ??= reason
    for (const p of pending.values()) p.reject(stoppedError(p.type, reason))
    pending.clear()
  }
  const post = (w: Worker, job: Job, transfer: ArrayBuffer[]) => {
    if (ended !== undefined) return Promise.reject(stoppedError(job.type, ended))
    return new Promise<JobResults[JobType]>((resolve, reject) => {
      const id = nextId++
      pending.set(id, { type: job.type, resolve, reject })
      if (pending.size === 1) w.ref()
      w.postMessage({ id, job } satisfies JobRequest, transfer)
    })
  }
  const started = threadBundle().then((file) => {
    const w = new Worker(file, { workerData: config, execArgv: [] })
    // Held only while a call waits: an idle thread keeps no process alive.
    w.unref()
    w.on('message', (reply: JobReply) => {
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

function stoppedError(type: JobType, reason: string): Error {
  return new Error(`the job thread stopped (${reason}) before ${type} finished`)
}

let bundled: Promise<string> | undefined

/** The thread's entry bundled into .cache/, once per process. */
function threadBundle(): Promise<string> {
  if (!bundled) {
    bundled = (async () => {
      const root = projectRoot()
      const outfile = path.join(root, '.cache', 'job-thread.mjs')
      await bundleForNode(path.join(root, 'server', 'jobs', 'job-thread.ts'), outfile)
      return outfile
    })()
    // A failed build is tried again at the next start.
    bundled.catch(() => (bundled = undefined))
  }
  return bundled
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
