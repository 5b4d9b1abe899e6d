// The aggregation server's system of record, behind one interface with two implementations:
// SQLite (the embedded default, one process) and PostgreSQL (several replicas sharing one
// database). Both pass the same contract suite (store.contract.ts). Everything a replica needs to
// carry on after a crash is here: versions, the current pointer, artifacts, the accepted updates
// not yet published (the buffer), idempotency keys and the privacy ledger.
import type { ModelManifest } from '../../shared/protocol'
import type { DeviceScore } from '../../shared/leader-upload'

export interface VersionRecord {
  version: number
  parent: number | null
  createdAt: string
  manifest: ModelManifest
  /** Evaluation results by name (validation Recall@20, device-reported metrics…). */
  metrics: Record<string, number>
}

export interface StoredUpdate {
  /** The update's idempotency key, scoped to its client (`<client id>:<key hex>`, P12). */
  key: string
  clientId: string
  baseVersion: number
  /** The current version when the update was accepted. */
  acceptedAtVersion: number
  slice: number
  /** The leader's share body, as received (shared/secure-update.ts). */
  body: Uint8Array
  receivedAtMs: number
  /** The header's score of the base version on the device's own cases (P27). */
  score: DeviceScore
}

/** Device scores of one version, summed over every update trained from it (P27). */
export interface VersionScore {
  version: number
  /** Updates whose base was this version, scored or not. */
  updates: number
  cases: number
  hits20: number
  reciprocalRank20: number
}

/** A noised release, for the accountant (PROTOCOL.md P20). */
export interface LedgerEntry {
  version: number
  noiseMultiplier: number
  clipNorm: number
  updates: number
}

export type AcceptOutcome =
  /** Stored now. */
  | 'accepted'
  /** The same idempotency key was accepted before: nothing stored, answer as then (P12). */
  | 'duplicate'
  /** This client already has an update in the buffer, not yet published (P15): nothing stored. */
  | 'client-limit'

export interface PublishRequest {
  record: VersionRecord
  /** Keys of the buffered updates this version consumed. */
  consumed: string[]
  ledger: LedgerEntry | null
  /** False publishes a candidate: recorded, buffer consumed, "current" unchanged (P24). */
  makeCurrent?: boolean
}

export type PublishOutcome =
  | 'published'
  /** Another replica published first, or holds the publisher lock: nothing changed. */
  | 'conflict'

/**
 * The leader's share of one device's outcome report (PROTOCOL.md P30c), waiting for a batch. A
 * consumed report keeps its key, client, experiment and period (P12, one report per client,
 * experiment and period), not its body.
 */
export interface StoredOutcomeReport {
  /** `<client id>:<key hex>`, as an update's (P12). */
  key: string
  clientId: string
  /** The experiment's digest (hex, shared/outcome-transport.ts): reports of one digest add up. */
  experiment: string
  /** The reporting period the device named (a UTC day number). */
  period: number
  /** The leader's share body, as received. */
  body: Uint8Array
  receivedAtMs: number
}

export type OutcomeAcceptOutcome =
  /** Stored now. */
  | 'accepted'
  /** The same key was accepted before: nothing stored. */
  | 'duplicate'
  /** This client has a report for this experiment and period already: nothing stored. */
  | 'client-limit'

/** One batch of outcome reports, summed by both servers and noised: one look at an experiment. */
export interface OutcomeBatchRecord {
  /** The batch's name, as the helper knows it. */
  id: string
  experiment: string
  createdAtMs: number
  /** Reports in the sum. */
  reports: number
  /** The noise multiplier of the totals (both servers' halves together). */
  sigma: number
  /** The batch's totals: one int32 per report cell, little-endian. */
  totals: Uint8Array
}

/**
 * Where a store lives, as plain data: another thread (server/jobs/) opens its own connection to
 * the same store from it, since a connection cannot cross threads.
 */
export type StoreConfig =
  { kind: 'sqlite'; file: string } | { kind: 'postgres'; connectionString: string; schema?: string }

export interface FederationStore {
  readonly kind: 'sqlite' | 'postgres'
  readonly config: StoreConfig
  /** The current version, or null before the first one. */
  current(): Promise<VersionRecord | null>
  version(version: number): Promise<VersionRecord | null>
  versions(): Promise<VersionRecord[]>
  /** Records a version without making it current (the first one, or a candidate). */
  addVersion(record: VersionRecord): Promise<void>
  /** Merges evaluation results into a version's metrics (P24); false if the version is unknown. */
  recordMetrics(version: number, metrics: Record<string, number>): Promise<boolean>
  /** Points "current" at an existing version (promotion and rollback, P23); false if unknown. */
  setCurrent(version: number): Promise<boolean>
  putArtifact(sha256: string, bytes: Uint8Array): Promise<void>
  artifact(sha256: string): Promise<Uint8Array | null>
  /** Drops artifacts (the server's own state of old versions, P18); unknown hashes are ignored. */
  deleteArtifacts(sha256s: readonly string[]): Promise<void>
  /** Stores an update atomically with its idempotency and per-client checks. */
  accept(update: StoredUpdate): Promise<AcceptOutcome>
  /** Whether an update with this (client-scoped) key was ever accepted (P12), consumed or not. */
  hasUpdate(key: string): Promise<boolean>
  /**
   * Accepted updates no version has consumed yet, oldest first. A consumed update keeps its key,
   * client, versions and score, not its body (publish drops it).
   */
  buffered(): Promise<StoredUpdate[]>
  /** How many updates are buffered and when the oldest arrived, without reading their bodies. */
  bufferStats(): Promise<{ updates: number; firstAtMs: number | null }>
  /** How many updates were ever accepted (for metrics and tests). */
  acceptedCount(): Promise<number>
  /**
   * Atomically: the version recorded, its updates marked consumed, "current" moved, the ledger
   * appended. A conflict (a consumed update, an existing version number, the publisher lock
   * held elsewhere) changes nothing.
   */
  publish(request: PublishRequest): Promise<PublishOutcome>
  ledger(): Promise<LedgerEntry[]>
  /** Accepted updates' scores summed by base version, ascending (P27). */
  deviceScores(): Promise<VersionScore[]>
  /** A small named value every replica sees (the operator's validation set's hash, P26). */
  setting(name: string): Promise<string | null>
  putSetting(name: string, value: string): Promise<void>
  /**
   * The setting's value; when it has none, `value` is stored first. Atomic across replicas: all
   * of them get the value the first one stored (the server's secrets, created on first start).
   */
  settingOrInit(name: string, value: string): Promise<string>
  /**
   * Compare and set, atomic across replicas: stores `value` only if the setting is `expected`
   * now (null: absent); false, changing nothing, otherwise. The two-server channel's batch under
   * way is claimed this way, so that two replicas never record different batches (P29c).
   */
  replaceSetting(name: string, expected: string | null, value: string): Promise<boolean>
  /** Stores an outcome report with its idempotency and one-per-client-and-period checks (P30c). */
  acceptOutcome(report: StoredOutcomeReport): Promise<OutcomeAcceptOutcome>
  /** Reports of `experiment` no batch has consumed or discarded, oldest first, at most `limit`. */
  waitingOutcomes(experiment: string, limit: number): Promise<StoredOutcomeReport[]>
  /** How many reports wait, per experiment digest (experiments with none left out). */
  outcomeWaiting(): Promise<Map<string, number>>
  /**
   * Atomically: the batch recorded, its `summed` reports and the `discarded` ones (left out by
   * the helper: they can never be summed) marked consumed and their bodies dropped. A conflict
   * (the batch id exists, a report is unknown or consumed) changes nothing.
   */
  commitOutcomeBatch(
    record: OutcomeBatchRecord,
    summed: readonly string[],
    discarded: readonly string[],
  ): Promise<'committed' | 'conflict'>
  /** Marks waiting reports consumed unsummed (bodies dropped); unknown or consumed keys are ignored. */
  discardOutcomes(keys: readonly string[]): Promise<void>
  /** Every batch of `experiment`, oldest first (every experiment's when omitted). */
  outcomeBatches(experiment?: string): Promise<OutcomeBatchRecord[]>
  close(): Promise<void>
}

/** The outcome-report part of a store (P30c): sqlite-outcomes.ts, postgres-outcomes.ts. */
export type OutcomeMethods = Pick<
  FederationStore,
  | 'acceptOutcome'
  | 'waitingOutcomes'
  | 'outcomeWaiting'
  | 'commitOutcomeBatch'
  | 'discardOutcomes'
  | 'outcomeBatches'
>

/** Thrown inside a publish's or an outcome batch's transaction to roll it back: `conflict`. */
export class Conflict extends Error {}
