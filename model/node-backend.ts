// Backend set-up for Node: the pure-JS cpu backend, or single-threaded WASM (SIMD) with its
// .wasm files read from the npm package. Multithreaded WASM is off: browsers on shops' pages
// won't have the headers it needs, and Node's worker_threads refuse its blob workers.
import '@tensorflow/tfjs-backend-cpu'
import * as tf from '@tensorflow/tfjs-core'
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm'
import { createRequire } from 'node:module'
import path from 'node:path'

export type NodeBackend = 'cpu' | 'wasm'

export async function setNodeBackend(name: NodeBackend): Promise<void> {
  if (name === 'wasm') {
    const pkg = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json')
    setWasmPaths(path.join(path.dirname(pkg), 'dist') + path.sep)
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false)
  }
  const ok = await tf.setBackend(name)
  if (!ok || tf.getBackend() !== name) throw new Error(`backend ${name} failed to initialise`)
  await tf.ready()
}
