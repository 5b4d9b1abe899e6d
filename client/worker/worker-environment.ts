// What the worker's behaviour is given from outside (worker.ts in a browser, the tests in Node):
// the backends it may load, how it fetches, its clock, its cross-tab lock and a device-loss watch.
// The runtime, the training schedule and the federated round each read the part they need.
import type { BackendName } from '../../shared/protocol'
import type { BackendLoader } from './backend-names'
import type { ViolationScope } from './fetch-failure'
import type { TrainingLocks } from './federated/training-lock'

export interface WorkerEnvironment {
  /** Registers each backend on demand; the wasm loader also points tfjs at its .wasm files. */
  loaders: Partial<Record<BackendName, BackendLoader>>
  /** Why a backend is ruled out before loading it (software GPU adapters), or null. */
  precheck?: (name: BackendName) => Promise<string | null>
  fetch?: typeof fetch
  /** Where CSP violations are reported (`self`): tells a refused fetch from a lost one. */
  policyEvents?: ViolationScope
  /** Why WebAssembly cannot compile here (a CSP without 'wasm-unsafe-eval'), or null. */
  wasmRefused?: () => string | null
  now?: () => number
  /** Web Locks for one trainer across tabs; defaults to `navigator.locks`, null for none. */
  locks?: TrainingLocks | null
  /**
   * Resolves with a reason if the active backend's device is lost (a WebGPU device can vanish
   * with a driver reset); the worker then drops that backend and reloads the weights elsewhere.
   */
  watchDeviceLoss?: (backend: BackendName) => Promise<string> | null
}
