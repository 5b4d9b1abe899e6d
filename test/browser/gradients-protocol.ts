// What gradients-entry.ts leaves in `window.__result` (plain JSON: numbers and arrays only).

export const BACKENDS = ['cpu', 'wasm', 'webgl', 'webgpu'] as const
export type BackendName = (typeof BACKENDS)[number]

export interface BackendRun {
  name: BackendName
  /** `tf.setBackend(name)` resolved true and `tf.getBackend()` reports it. */
  initialised: boolean
  /** Why it did not initialise, or the first error that stopped the run. */
  error?: string
  /** Backend facts worth a look when a number is off (WebGL version, adapter, SIMD…). */
  info: Record<string, unknown>
  /** Named results, every one flattened to a plain array. */
  values: Record<string, number[]>
  /** Checks that threw, by name: the others still ran. */
  failures: Record<string, string>
  tensorsBefore: number
  tensorsAfter: number
  ms: number
}

export interface GradientsResult {
  /** Where the checks ran: the main thread or a dedicated module worker (as the app trains). */
  context: 'page' | 'worker'
  userAgent: string
  /** What `navigator.gpu.requestAdapter()` returned before tfjs touched WebGPU. */
  webgpuAdapter: Record<string, unknown> | null
  backends: BackendRun[]
}

/** Result names that hold the trained weights of one step, by loss. */
export const STEP_WEIGHTS = ['item_embedding', 'gru/w_hidden'] as const

declare global {
  interface Window {
    /** Set by a browser entry when it is done; read by harness.ts. */
    __result?: unknown
    /** Set instead of `__result` when the entry failed as a whole. */
    __error?: string
  }
}
