// The worker entry: wiring only. Backends are imported on demand so the bundle a shopper
// downloads holds tfjs-core and the backends this device actually probes.
import '@tensorflow/tfjs-backend-cpu'
import * as tf from '@tensorflow/tfjs-core'
import { expose } from 'comlink'
import type { BackendName } from '../../shared/protocol'
import type { PocketrecWorkerApi } from './api'
import { findWasmRefusal } from './backend-probe'
import { createWorkerApiWith } from './create-worker-api'

interface GpuLoss {
  reason: string
  message: string
}

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

export function createWorkerApi(): PocketrecWorkerApi {
  return createWorkerApiWith({
    loaders: {
      webgpu: () => import('@tensorflow/tfjs-backend-webgpu'),
      webgl: () => import('@tensorflow/tfjs-backend-webgl'),
      wasm: loadWasm,
      cpu: async () => {},
    },
    precheck,
    policyEvents: self,
    wasmRefused: () => findWasmRefusal(),
    watchDeviceLoss: (name) => {
      if (name !== 'webgpu') return null
      const device = (tf.backend() as unknown as { device?: { lost: Promise<GpuLoss> } }).device
      return device ? device.lost.then((info) => `${info.reason}: ${info.message}`) : null
    },
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
