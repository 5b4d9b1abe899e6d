// What the worker's entry knows of backends without TF.js (model-part.ts loads it): their names,
// whether WebAssembly may run here, and how a backend is loaded. The probe is backend-probe.ts.
import type { BackendName } from '../../shared/protocol'

/** Every backend the worker knows, in probe order. */
export const BACKEND_NAMES: readonly BackendName[] = ['webgpu', 'webgl', 'wasm', 'cpu']

export function isBackendName(raw: unknown): raw is BackendName {
  return BACKEND_NAMES.includes(raw as BackendName)
}

/** The smallest valid module: magic and version. */
const EMPTY_WASM_MODULE = [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]

/**
 * Why WebAssembly cannot run here, or null. A CSP without 'wasm-unsafe-eval' (or 'unsafe-eval')
 * refuses to compile even the empty module, so this answers before the wasm backend downloads.
 */
export function findWasmRefusal(
  wasm: typeof WebAssembly | null = globalThis.WebAssembly ?? null,
): string | null {
  try {
    if (!wasm) return 'no WebAssembly in this browser'
    new wasm.Module(new Uint8Array(EMPTY_WASM_MODULE))
    return null
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error)
    return `WebAssembly refused (${why}): the worker runs on cpu; the wasm backend needs 'wasm-unsafe-eval' in script-src`
  }
}

/** Registers one backend with tfjs (a dynamic import, so unused backends are never fetched). */
export type BackendLoader = () => Promise<unknown>
