// The worker entry: wiring only. No TF.js here: a first visit's first list is served from the
// pools while TF.js, the model and training (model-part.ts, with the cpu backend) load behind it;
// the other backends are imported on demand, only those this device actually probes.
import { expose } from 'comlink'
import type { BackendName } from '../../shared/protocol'
import type { PocketrecWorkerApi } from './api'
import { findWasmRefusal } from './backend-names'
import { createWorkerApiWith } from './create-worker-api'

const SOFTWARE_RENDERERS = /swiftshader|llvmpipe|software|basic render/i

/** Rules out GPUs that are CPUs in disguise: software adapters train slower than WASM here
 * (BENCHMARKS.md, "In the browser"). */
async function precheck(name: BackendName): Promise<string | null> {
  if (name === 'webgpu') {
    const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }).gpu
    if (!gpu) return 'WebGPU not available'
    const adapter = (await gpu.requestAdapter()) as {
      isFallbackAdapter?: boolean
      info?: { isFallbackAdapter?: boolean; architecture?: string }
    } | null
    if (!adapter) return 'no WebGPU adapter'
    if (adapter.isFallbackAdapter || adapter.info?.isFallbackAdapter) {
      return `fallback (software) adapter${adapter.info?.architecture ? ` ${adapter.info.architecture}` : ''}: treated as no GPU`
    }
    return null
  }
  if (name === 'webgl') {
    if (typeof OffscreenCanvas === 'undefined') return 'no OffscreenCanvas in this context'
    const gl = new OffscreenCanvas(1, 1).getContext('webgl2')
    if (!gl) return 'WebGL 2 not available'
    const info = gl.getExtension('WEBGL_debug_renderer_info')
    const renderer = info ? String(gl.getParameter(info.UNMASKED_RENDERER_WEBGL)) : ''
    return SOFTWARE_RENDERERS.test(renderer)
      ? `software renderer (${renderer}): treated as no GPU`
      : null
  }
  return null
}

async function loadWasm(): Promise<void> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm')
  // The .wasm files sit next to the worker script; one thread (shops won't send COOP/COEP).
  wasm.setWasmPaths(new URL(/* @vite-ignore */ './', import.meta.url).href)
}

function createWorkerApi(): PocketrecWorkerApi {
  return createWorkerApiWith({
    loaders: {
      webgpu: () => import('@tensorflow/tfjs-backend-webgpu'),
      webgl: () => import('@tensorflow/tfjs-backend-webgl'),
      wasm: loadWasm,
      // Registered by the model part, which the probe runs in.
      cpu: async () => {},
    },
    precheck,
    policyEvents: self,
    wasmRefused: () => findWasmRefusal(),
    // Asked once the model runs on `name`: the model part is in by then.
    watchDeviceLoss: (name) =>
      name === 'webgpu'
        ? import('./model-part').then((part) => part.gpuDeviceLost(name) ?? new Promise(() => {}))
        : null,
  })
}

// Exposed only inside a worker: imported on a page by mistake, any frame could post it commands.
const isWorkerScope =
  typeof self !== 'undefined' &&
  typeof (self as { importScripts?: unknown }).importScripts === 'function'
if (
  isWorkerScope ||
  (typeof WorkerGlobalScope !== 'undefined' && self instanceof WorkerGlobalScope)
) {
  expose(createWorkerApi())
}
