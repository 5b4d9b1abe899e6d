// Picks the TensorFlow.js backend for this device by measurement, not by assumption: WebGPU on
// a software adapter is slower than WASM, and WebGL is unusable for training (BENCHMARKS.md, "In the browser"). Each
// candidate must pass a known-gradient self-test before its timing counts.
import * as tf from '@tensorflow/tfjs-core'
import type { BackendName, BackendProbe } from '../../shared/protocol'
import { registerTrainingGradients } from '../../model/gradients'
import { gatherRows, matMul } from '../../model/ops'
import { PocketrecError } from '../../shared/errors'
import type { BackendLoader } from './backend-names'

export interface ProbeOptions {
  /** Probe order; the first correct one is the fallback when timings tie. */
  candidates: BackendName[]
  loaders: Partial<Record<BackendName, BackendLoader>>
  /** Why a candidate is skipped before loading it (e.g. a fallback WebGPU adapter), or null. */
  precheck?: (name: BackendName) => Promise<string | null>
  /** The workload to time on each backend (e.g. one session scored against the catalogue). */
  benchmark: () => Promise<void>
  runs?: number
}

export interface ProbeResult {
  backend: BackendName
  reason: string
  probes: BackendProbe[]
}

/**
 * The gradient of f(T) = Σ (gatherRows(T, ids) · W)² is 2 · scatter(ids, (gW)·Wᵀ): computed
 * here in float64 and compared with what the backend's autodiff returns. Catches backends
 * whose gradients come back as zeros (reported on one WebGPU device) or garbage.
 */
export async function selfTestGradient(): Promise<string | null> {
  registerTrainingGradients()
  const table = [0.5, -1, 2, 0.25, 1.5, -0.75] // [3, 2]
  const ids = [2, 0, 2]
  const w = [1, -2, 0.5, 3] // [2, 2]
  const expected = new Float64Array(6)
  for (const row of ids) {
    const x = [table[row * 2]!, table[row * 2 + 1]!]
    const y = [x[0]! * w[0]! + x[1]! * w[2]!, x[0]! * w[1]! + x[1]! * w[3]!]
    expected[row * 2]! += 2 * (y[0]! * w[0]! + y[1]! * w[1]!)
    expected[row * 2 + 1]! += 2 * (y[0]! * w[2]! + y[1]! * w[3]!)
  }
  const grad = tf.tidy(() => {
    const idsTensor = tf.tensor1d(ids, 'int32')
    const weights = tf.tensor2d(w, [2, 2])
    const f = (t: tf.Tensor) =>
      tf.sum(tf.square(matMul(gatherRows(t as tf.Tensor2D, idsTensor), weights))) as tf.Scalar
    return tf.grad(f)(tf.tensor2d(table, [3, 2]))
  })
  const actual = await grad.data()
  grad.dispose()
  for (let i = 0; i < expected.length; i++) {
    if (!(Math.abs(actual[i]! - expected[i]!) <= 1e-3 * (1 + Math.abs(expected[i]!)))) {
      return `gradient self-test failed: expected ${expected[i]!.toFixed(4)} at ${i}, got ${actual[i]}`
    }
  }
  return null
}

function median(values: number[]): number {
  const sorted = values.slice().sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

/** Tries every candidate, then leaves the fastest correct backend active. */
export async function probeBackends(options: ProbeOptions): Promise<ProbeResult> {
  const runs = options.runs ?? 5
  const probes: BackendProbe[] = []
  for (const name of options.candidates) {
    const skip = await options.precheck?.(name)
    if (skip) {
      probes.push({ backend: name, ok: false, reason: skip })
      continue
    }
    const load = options.loaders[name]
    if (!load) {
      probes.push({ backend: name, ok: false, reason: 'not bundled' })
      continue
    }
    try {
      await load()
      if (!(await tf.setBackend(name)) || tf.getBackend() !== name) {
        probes.push({ backend: name, ok: false, reason: 'failed to initialise' })
        continue
      }
      await tf.ready()
      const failure = await selfTestGradient()
      if (failure) {
        probes.push({ backend: name, ok: false, reason: failure })
        continue
      }
      await options.benchmark() // warm-up: shader compilation, first allocations
      const times: number[] = []
      for (let i = 0; i < runs; i++) {
        const start = performance.now()
        await options.benchmark()
        times.push(performance.now() - start)
      }
      probes.push({ backend: name, ok: true, medianMs: median(times) })
    } catch (error) {
      probes.push({
        backend: name,
        ok: false,
        reason: error instanceof Error ? error.message : String(error),
      })
    }
  }
  const usable = probes.filter((p) => p.ok).sort((a, b) => a.medianMs! - b.medianMs!)
  const best = usable[0]
  if (!best) {
    const reasons = probes.map((p) => `${p.backend}: ${p.reason}`).join('; ')
    throw new PocketrecError(
      'ModelUnavailableError',
      'E_NO_BACKEND',
      `no usable backend: ${reasons}`,
    )
  }
  await tf.setBackend(best.backend)
  const others = usable.slice(1).map((p) => `${p.backend} ${p.medianMs!.toFixed(1)} ms`)
  const reason =
    `fastest correct backend: ${best.backend} ${best.medianMs!.toFixed(1)} ms` +
    (others.length > 0 ? ` (vs ${others.join(', ')})` : '')
  return { backend: best.backend, reason, probes }
}
