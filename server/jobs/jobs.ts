// The main thread's handle on the job thread (job-thread.ts): one typed call per job, each a
// promise, over the generic thread of thread.ts.
import type { CandidateDecision, PutValidationResult } from '../evaluation/evaluate-versions'
import type { OutcomeBatchResult } from '../federated/outcome-release'
import type { PublishAttempt } from '../federated/publisher'
import type { ShopChangeKind } from '../federated/catalogue-release'
import type {
  EvaluateOutcome,
  Job,
  JobResults,
  JobThreadConfig,
  ShopChangeOutcome,
} from './protocol'
import { createThreadCaller } from './thread'

export interface Jobs {
  /** The publisher's check (publishIfDue with pruning). */
  publish(): Promise<PublishAttempt>
  /** P30c: a batch of outcome reports for each experiment with enough waiting. */
  outcomes(): Promise<OutcomeBatchResult[]>
  /** `evaluated` promotion: score the waiting candidates, promote or keep back (P26). */
  review(): Promise<CandidateDecision[]>
  evaluate(version: number): Promise<EvaluateOutcome>
  /** A request body as it came, unparsed; transferred to the thread (detached here after). */
  putValidation(body: ArrayBuffer): Promise<PutValidationResult>
  /** A request body as it came, unparsed; transferred to the thread (detached here after). */
  putShopChange(kind: ShopChangeKind, body: ArrayBuffer): Promise<ShopChangeOutcome>
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
  const thread = createThreadCaller<Job>({
    entry: 'server/jobs/job-thread.ts',
    name: 'job thread',
    workerData: config,
  })
  const call = <T extends Job['type']>(job: Job & { type: T }, transfer: ArrayBuffer[] = []) =>
    thread.call<JobResults[T]>(job, transfer)
  return {
    publish: () => call({ type: 'publish' }),
    outcomes: () => call({ type: 'outcomes' }),
    review: () => call({ type: 'review' }),
    evaluate: (version) => call({ type: 'evaluate', version }),
    putValidation: (body) => call({ type: 'put-validation', body }, [body]),
    putShopChange: (kind, body) => call({ type: 'put-shop-change', kind, body }, [body]),
    terminate: () => thread.terminate(),
    close: () => thread.close(),
  }
}
