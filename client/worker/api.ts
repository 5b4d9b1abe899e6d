// The comlink surface of the worker: what the loader and the demo may call. They import this file
// as a type only, so the page never bundles tfjs or idb (see client/loader/README.md).
import type {
  BackendName,
  RecommendRequest,
  RecommendResponse,
  StatusError,
  TrackResult,
  WorkerStatus,
} from '../../shared/protocol'

export interface WorkerConfig {
  /** The shop's site key, from the script tag's `data-site`. */
  site: string
  /** Base URL of the aggregation server (or of the trainer's static files). */
  endpoint: string
  /**
   * Forces one backend instead of probing (tests, the demo's backend switch): a BackendName.
   * `data-backend` arrives as written; `init` ignores anything else with a console warning.
   */
  backend?: BackendName | (string & {})
}

/**
 * Every method validates its arguments (they cross a boundary) and throws errors whose `name` is a
 * `WorkerErrorName`. Call order from the loader: `init`, then `setConsent(true)`; on withdrawal
 * `forget()` and the worker is terminated.
 */
export interface PocketrecWorkerApi {
  /** Records the configuration. Stores nothing and opens no database: consent may not exist yet. */
  init(config: WorkerConfig): Promise<WorkerStatus>
  /** Validates (shared/events.ts) and stores one event. */
  track(event: unknown): Promise<TrackResult>
  recommend(request: RecommendRequest): Promise<RecommendResponse>
  status(): Promise<WorkerStatus>
  /**
   * After `setConsent(true)`: waits until the release is synced and the backend chosen, then
   * answers `status()`. Never rejects for a failed start: `status().error` says why.
   */
  ready(): Promise<WorkerStatus>
  /**
   * Answers `status().error` once its message differs from `seen` (null: no error): how the
   * loader hears of a failure that comes after the start, such as an upload the page's CSP
   * refused. Checked again whenever the release settles or an upload is refused.
   */
  nextError(seen: string | null): Promise<StatusError>
  /** `true` opens storage and starts sync and training; `false` stops all work and timers. */
  setConsent(granted: boolean): Promise<void>
  /**
   * Deletes everything stored on this device (every IndexedDB database whose name starts with
   * `pocketrec`, and any cached artifacts). Must work right after `init`, without consent.
   */
  forget(): Promise<void>
}
