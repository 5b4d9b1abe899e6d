// The helper's system of record (PROTOCOL.md P29c), behind one interface with two
// implementations as the leader's store has: SQLite (embedded) and PostgreSQL (replicas). It holds
// the share bodies devices sent, waiting until the leader names them in a batch, and each batch's
// answer, so that a leader retrying a batch after a crash gets the same answer and no body ever
// enters two batches (two overlapping batches would give the leader one device's update).

export interface StoredShare {
  /** The body's idempotency key, hex (the leader names the update by it). */
  key: string
  /** The body as received; empty once a batch consumed it. */
  body: Uint8Array
  receivedAtMs: number
  /** The batch that consumed it, or null while it waits. */
  batch: string | null
}

export interface BatchRecord {
  /** The leader's name for the batch. */
  id: string
  /** SHA-256 (hex) of the request: a retry must be the same request. */
  requestSha256: string
  /** The answer as sent (share-sums.ts inside an aggregate answer); empty once pruned. */
  answer: Uint8Array
  createdAtMs: number
}

/** Answers kept, newest first: a leader retries only the batch it has not published yet. */
export const KEEP_BATCH_ANSWERS = 2

export interface HelperStore {
  readonly kind: 'sqlite' | 'postgres'
  /**
   * Stores a body under its key; `duplicate` (nothing stored) when the key is known, `full`
   * (nothing stored) when `maxWaiting` bodies wait already. Replicas that insert at the same
   * moment may overshoot the bound by as many as they are.
   */
  putShare(
    key: string,
    body: Uint8Array,
    receivedAtMs: number,
    maxWaiting: number,
  ): Promise<'accepted' | 'duplicate' | 'full'>
  /** The stored shares among `keys` (unknown keys are left out), in no particular order. */
  shares(keys: readonly string[]): Promise<StoredShare[]>
  batch(id: string): Promise<BatchRecord | null>
  /**
   * Atomically: the batch recorded and the `included` shares marked consumed by it (their bodies
   * dropped); answers of all but the newest KEEP_BATCH_ANSWERS batches dropped. `conflict`, with
   * nothing changed, when the batch id exists or an included share is consumed or unknown.
   */
  commitBatch(record: BatchRecord, included: readonly string[]): Promise<'committed' | 'conflict'>
  /** Drops waiting shares received before `beforeMs` (no leader named them); returns how many. */
  dropWaiting(beforeMs: number): Promise<number>
  counts(): Promise<{ waiting: number; consumed: number; batches: number }>
  close(): Promise<void>
}

/** Thrown inside a commit's transaction to roll it back; commitBatch answers `conflict`. */
export class BatchConflict extends Error {}

/** Where a helper store lives, as plain data (the aggregation thread opens its own). */
export type HelperStoreConfig =
  { kind: 'sqlite'; file: string } | { kind: 'postgres'; connectionString: string; schema?: string }
