// The routes' handle on the aggregation thread (aggregator-thread.ts).
import { createThreadCaller } from '../jobs/thread'
import type { AggregateResult, AggregateSettings } from './aggregate'
import type { HelperStoreConfig } from './helper-store'

export interface AggregatorConfig {
  store: HelperStoreConfig
  settings: AggregateSettings
}

/** The request body as it came, unparsed; it is parsed and checked in the thread. */
export type AggregatorJob = { type: 'aggregate' | 'aggregate-outcomes'; body: ArrayBuffer }

export interface Aggregator {
  /** Transfers `body` to the thread (detached here after). */
  aggregate(body: ArrayBuffer): Promise<AggregateResult>
  /** The same for a batch of outcome reports (P30c). */
  aggregateOutcomes(body: ArrayBuffer): Promise<AggregateResult>
  /** Ends the thread as a crash would: its calls are rejected, the next call starts another. */
  terminate(): Promise<void>
  close(): Promise<void>
}

export function createAggregator(config: AggregatorConfig): Aggregator {
  if (config.store.kind === 'sqlite' && ['', ':memory:'].includes(config.store.file))
    throw new Error('expected an SQLite file: the aggregation thread opens its own connection')
  const thread = createThreadCaller<AggregatorJob>({
    entry: 'server/helper/aggregator-thread.ts',
    name: 'aggregation thread',
    workerData: config,
  })
  return {
    aggregate: (body) => thread.call<AggregateResult>({ type: 'aggregate', body }, [body]),
    aggregateOutcomes: (body) =>
      thread.call<AggregateResult>({ type: 'aggregate-outcomes', body }, [body]),
    terminate: () => thread.terminate(),
    close: () => thread.close(),
  }
}
