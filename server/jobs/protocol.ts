// What the main thread and the job thread (job-thread.ts) say to each other. Jobs are a union
// discriminated by `type`; an upload's body travels as a transferred ArrayBuffer and is parsed in
// the thread. Types only: the main thread's bundle must not pull in what the thread runs (tfjs).
import type { ArtifactRef, ManifestExperiment } from '../../shared/protocol'
import type { CandidateDecision, PutValidationResult } from '../evaluation/evaluate-versions'
import type { ShopChangeKind, ShopChangeResult } from '../federated/catalogue-release'
import type { EvaluationSettings } from '../federated/defaults'
import type { FedBuffSettings } from '../federated/fedbuff'
import type { OutcomeBatchResult } from '../federated/outcome-release'
import type { Promotion, PublishAttempt } from '../federated/publisher'
import type { StoreConfig } from '../storage/store'

/**
 * Everything the thread starts from (its `workerData`): plain data, cloned into it; a slice of
 * the resolved config (server/config.ts) with the store's connection.
 */
export interface JobThreadConfig {
  store: StoreConfig
  settings: FedBuffSettings
  promotion: Promotion
  evaluation: EvaluationSettings
}

export type Job =
  /** The publisher's check: publishIfDue, pruning included (P16–P19). */
  | { type: 'publish' }
  /** P30c: outcome batches (releaseOutcomes). */
  | { type: 'outcomes' }
  /** `evaluated` promotion's review of the waiting candidates (P26). */
  | { type: 'review' }
  /** POST /v1/admin/evaluate (P26). */
  | { type: 'evaluate'; version: number }
  /** PUT /v1/admin/validation: the request body, unparsed (P26). */
  | { type: 'put-validation'; body: ArrayBuffer }
  /** PUT /v1/admin/catalogue or /rules: the request body, unparsed (P25). */
  | { type: 'put-shop-change'; kind: ShopChangeKind; body: ArrayBuffer }

export type JobType = Job['type']

export type EvaluateOutcome =
  | { status: 'evaluated'; version: number; metrics: Record<string, number> }
  | { status: 'unknown-version' }
  | { status: 'no-validation' }

/** A shop change's outcome, the published version summarised as the route answers it. */
export type ShopChangeOutcome =
  | {
      status: 'published'
      version: number
      catalogue: ArtifactRef
      pools: ArtifactRef
      rules: ArtifactRef
      /** The experiments devices now apply (P30); none: absent. */
      experiments?: ManifestExperiment[]
    }
  | Exclude<ShopChangeResult, { status: 'published' }>

export interface JobResults {
  publish: PublishAttempt
  outcomes: OutcomeBatchResult[]
  review: CandidateDecision[]
  evaluate: EvaluateOutcome
  'put-validation': PutValidationResult
  'put-shop-change': ShopChangeOutcome
}
