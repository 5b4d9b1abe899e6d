import * as tf from '@tensorflow/tfjs-core'
import { afterAll, describe, expect, it } from 'vitest'
import { setNodeBackend } from '../../model/node-backend'
import { findWasmRefusal } from './backend-names'
import { probeBackends, selfTestGradient } from './backend-probe'

// Node has cpu and wasm; the browser backends are exercised in test/browser.
describe('probeBackends', () => {
  afterAll(async () => {
    await setNodeBackend('cpu')
  })

  it('passes the gradient self-test on cpu and wasm', async () => {
    for (const name of ['cpu', 'wasm'] as const) {
      await setNodeBackend(name)
      expect(await selfTestGradient()).toBeNull()
    }
  })

  it('picks the faster correct backend and reports every candidate', async () => {
    await setNodeBackend('wasm')
    const delays: Record<string, number> = { cpu: 8, wasm: 1 }
    const result = await probeBackends({
      candidates: ['webgpu', 'wasm', 'cpu'],
      loaders: { wasm: async () => {}, cpu: async () => {} },
      precheck: async (name) => (name === 'webgpu' ? 'fallback adapter: no real GPU' : null),
      benchmark: () => new Promise((resolve) => setTimeout(resolve, delays[tf.getBackend()])),
      runs: 3,
    })
    expect(result.backend).toBe('wasm')
    expect(tf.getBackend()).toBe('wasm')
    expect(result.probes.map((p) => [p.backend, p.ok])).toEqual([
      ['webgpu', false],
      ['wasm', true],
      ['cpu', true],
    ])
    expect(result.probes[0]!.reason).toBe('fallback adapter: no real GPU')
    expect(result.reason).toMatch(/^fastest correct backend: wasm .* \(vs cpu /)
  })

  it('rejects a backend whose benchmark throws and says why', async () => {
    const result = await probeBackends({
      candidates: ['cpu', 'wasm'],
      loaders: { wasm: async () => {}, cpu: async () => {} },
      benchmark: async () => {
        if (tf.getBackend() === 'cpu') throw new Error('device lost')
      },
      runs: 1,
    })
    expect(result.backend).toBe('wasm')
    expect(result.probes[0]).toEqual({ backend: 'cpu', ok: false, reason: 'device lost' })
  })

  it('fails with ModelUnavailableError when nothing works', async () => {
    await expect(
      probeBackends({ candidates: ['webgl'], loaders: {}, benchmark: async () => {} }),
    ).rejects.toMatchObject({
      name: 'ModelUnavailableError',
      code: 'E_NO_BACKEND',
      message: 'no usable backend: webgl: not bundled',
    })
  })
})

describe('findWasmRefusal', () => {
  it('finds nothing where WebAssembly compiles (Node)', () => {
    expect(findWasmRefusal()).toBeNull()
  })

  it("says why, and what to add, where a CSP without 'wasm-unsafe-eval' refuses to compile", () => {
    const refusing = {
      Module: class {
        constructor() {
          throw new WebAssembly.CompileError('Refused to compile or instantiate WebAssembly module')
        }
      },
    } as unknown as typeof WebAssembly
    expect(findWasmRefusal(refusing)).toBe(
      'WebAssembly refused (Refused to compile or instantiate WebAssembly module): the worker ' +
        "runs on cpu; the wasm backend needs 'wasm-unsafe-eval' in script-src",
    )
  })

  it('says so where the browser has no WebAssembly at all', () => {
    expect(findWasmRefusal(null)).toBe('no WebAssembly in this browser')
  })
})
