// The model's custom gradients and one training step, run inside real headless Chromium on the
// cpu, wasm, webgl and webgpu backends (WebGL and WebGPU through SwiftShader), in a dedicated
// module worker as the app trains. Every backend must agree with the browser's cpu backend, and
// the cpu backend's small results must agree with float64 references computed here.
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as fx from './gradients-fixtures'
import { BACKENDS, type BackendRun, type GradientsResult } from './gradients-protocol'
import { chromiumSkipReason, openBrowser, type BrowserRun } from './harness'

const ENTRY = fileURLToPath(new URL('./gradients-entry.ts', import.meta.url))
/** |actual − expected| ≤ ABSOLUTE + RELATIVE·|expected|, for every element. */
const ABSOLUTE = 1e-4
const RELATIVE = 1e-4

interface Comparison {
  name: string
  maxAbs: number
  worst: number
  actual: number
  expected: number
}

function compare(name: string, actual: ArrayLike<number>, expected: ArrayLike<number>) {
  const out: Comparison = { name, maxAbs: 0, worst: -1, actual: NaN, expected: NaN }
  let bad = actual.length !== expected.length
  for (let i = 0; i < Math.min(actual.length, expected.length); i++) {
    const diff = Math.abs(actual[i]! - expected[i]!)
    if (!Number.isFinite(actual[i]!) || !(diff <= ABSOLUTE + RELATIVE * Math.abs(expected[i]!))) {
      bad = true
    }
    if (!(diff <= out.maxAbs)) Object.assign(out, { maxAbs: diff, worst: i })
  }
  if (out.worst >= 0)
    Object.assign(out, { actual: actual[out.worst], expected: expected[out.worst] })
  return { ...out, bad, lengths: `${actual.length} vs ${expected.length}` }
}

// ---- float64 references for the small checks, from the same fixtures ----

function gatherReference() {
  const { cols, table, ids, weights } = fx.gather
  let value = 0
  const grad = new Float64Array(table.length)
  ids.forEach((row, k) => {
    for (let c = 0; c < cols; c++) {
      const t = table[row * cols + c]!
      value += weights[k * cols + c]! * t * t
      grad[row * cols + c]! += 2 * weights[k * cols + c]! * t
    }
  })
  return { value: [value], grad }
}

function matMulReference() {
  const { m, k, n, a, b } = fx.matmul
  const p = new Float64Array(m * n)
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      for (let q = 0; q < k; q++) p[i * n + j]! += a[i * k + q]! * b[q * n + j]!
    }
  }
  const gradA = new Float64Array(m * k)
  const gradB = new Float64Array(k * n)
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      for (let q = 0; q < k; q++) {
        gradA[i * k + q]! += 2 * p[i * n + j]! * b[q * n + j]!
        gradB[q * n + j]! += 2 * a[i * k + q]! * p[i * n + j]!
      }
    }
  }
  return { value: [p.reduce((s, x) => s + x * x, 0)], gradA, gradB }
}

function softmaxReference() {
  const { rows, classes, logits, targets } = fx.softmax
  let value = 0
  const grad = new Float64Array(rows * classes)
  for (let r = 0; r < rows; r++) {
    const row = Array.from(logits.subarray(r * classes, (r + 1) * classes))
    const max = Math.max(...row)
    const sum = row.reduce((acc, z) => acc + Math.exp(z - max), 0)
    value += (Math.log(sum) + max - row[targets[r]!]!) / rows
    row.forEach((z, c) => {
      grad[r * classes + c] = (Math.exp(z - max) / sum - (c === targets[r] ? 1 : 0)) / rows
    })
  }
  return { value: [value], grad }
}

function normalizeReference() {
  const { rows, cols, x, coefficients } = fx.normalize
  let value = 0
  const grad = new Float64Array(rows * cols)
  for (let r = 0; r < rows; r++) {
    const xs = Array.from(x.subarray(r * cols, (r + 1) * cols))
    const cs = Array.from(coefficients.subarray(r * cols, (r + 1) * cols))
    const norm = Math.sqrt(xs.reduce((s, v) => s + v * v, 0))
    const dot = xs.reduce((s, v, i) => s + (v / norm) * cs[i]!, 0)
    value += dot
    // d/dx of c·x/‖x‖ = (c − y (c·y)) / ‖x‖ with y = x/‖x‖.
    xs.forEach((v, i) => (grad[r * cols + i] = (cs[i]! - (v / norm) * dot) / norm))
  }
  return { value: [value], grad }
}

const skipReason = chromiumSkipReason()
if (skipReason) console.warn(`gradients.browser.test.ts skipped: ${skipReason}`)

describe.skipIf(skipReason !== undefined)(
  `model gradients and a training step in headless Chromium${skipReason ? ` (SKIPPED: ${skipReason})` : ''}`,
  () => {
    let browser: BrowserRun | undefined
    beforeAll(async () => {
      browser = await openBrowser(ENTRY)
    }, 30_000)
    afterAll(async () => {
      await browser?.close()
    })

    // A dedicated module worker is where the app trains; the page is checked too (WebGL there
    // draws on a DOM canvas instead of an OffscreenCanvas), though the tag never runs the model on
    // a page (without a worker it serves the pools only).
    for (const context of ['worker', 'page'] as const) {
      describe(`in a ${context === 'worker' ? 'dedicated worker' : 'page (no worker)'}`, () => {
        let result: GradientsResult
        const backend = (name: string): BackendRun => {
          const run = result.backends.find((b) => b.name === name)
          if (!run) throw new Error(`no result for backend ${name}`)
          return run
        }

        beforeAll(async () => {
          result = await browser!.result<GradientsResult>(`/?context=${context}`, 75_000)
          expect(result.context).toBe(context)
          const summary = result.backends.map((b) => ({
            backend: b.name,
            initialised: b.initialised,
            ms: b.ms,
            info: JSON.stringify(b.info),
          }))
          console.log(
            `${result.userAgent}\nWebGPU adapter: ${JSON.stringify(result.webgpuAdapter)}`,
          )
          console.table(summary)
        }, 90_000)

        it('initialises cpu, wasm, webgl and webgpu, and every check runs on each', () => {
          for (const name of BACKENDS) {
            const run = backend(name)
            // WebGPU needs --enable-unsafe-webgpu and SwiftShader's Vulkan (Debian's chromium ships
            // it); the adapter Chromium offered, or why none, is in the message.
            expect(
              { initialised: run.initialised, error: run.error, failures: run.failures },
              `${name} (WebGPU adapter: ${JSON.stringify(result.webgpuAdapter)})`,
            ).toEqual({ initialised: true, error: undefined, failures: {} })
          }
        })

        it('leaks no tensor on any backend', () => {
          for (const name of BACKENDS) {
            const { tensorsBefore, tensorsAfter } = backend(name)
            expect(tensorsAfter, `${name}: tensors before ${tensorsBefore}`).toBe(tensorsBefore)
          }
        })

        it('the browser cpu backend agrees with float64 references', () => {
          const cpu = backend('cpu').values
          const gather = gatherReference()
          const matmul = matMulReference()
          const softmax = softmaxReference()
          const normalize = normalizeReference()
          const checks = [
            compare('gather/value', cpu['gather/value']!, gather.value),
            compare('gather/grad', cpu['gather/grad']!, gather.grad),
            compare('matmul/value', cpu['matmul/value']!, matmul.value),
            compare('matmul/grad_a', cpu['matmul/grad_a']!, matmul.gradA),
            compare('matmul/grad_b', cpu['matmul/grad_b']!, matmul.gradB),
            compare('matmul/stock_grad_a', cpu['matmul/stock_grad_a']!, matmul.gradA),
            compare('matmul/stock_grad_b', cpu['matmul/stock_grad_b']!, matmul.gradB),
            compare('softmax/value', cpu['softmax/value']!, softmax.value),
            compare('softmax/grad', cpu['softmax/grad']!, softmax.grad),
            compare('normalize/value', cpu['normalize/value']!, normalize.value),
            compare('normalize/grad', cpu['normalize/grad']!, normalize.grad),
          ]
          expect(checks.filter((c) => c.bad)).toEqual([])
        })

        it('the training signal is real: gradients reach every weight', () => {
          const cpu = backend('cpu').values
          for (const name of ['item_embedding', 'gru/w_hidden', 'gru/w_input', 'readout/w']) {
            // An all-zero RNN gradient has been reported for tfjs on one WebGPU device: compare with cpu.
            const grad = cpu[`model/grad/${name}`]!
            expect(Math.max(...grad.map(Math.abs)), name).toBeGreaterThan(1e-5)
          }
          for (const loss of ['full', 'sampled']) {
            const [value] = cpu[`step_${loss}/loss`]!
            expect(Number.isFinite(value) && value! > 0, `${loss} loss ${value}`).toBe(true)
          }
        })

        it('one Adam step moves each weight by ≈ the learning rate against its own gradient', () => {
          // Adam's first step is lr·g/(|g| + ε): with ε = 1e-7 every weight whose gradient is
          // over 1e-5 moves by 0.99–1.00 lr. A backend-chosen ε (1e-4 on WebGL) breaks this.
          const wrong: string[] = []
          for (const name of BACKENDS) {
            const values = backend(name).values
            for (const weight of Object.keys(values).filter((k) => k.startsWith('model/grad/'))) {
              const variable = weight.slice('model/grad/'.length)
              const grad = values[weight]!
              const before = values[`model/init/${variable}`]!
              const after = values[`step_full/${variable}`]!
              grad.forEach((g, i) => {
                const moved = (after[i]! - before[i]!) / -fx.learningRate
                if (
                  Math.abs(g) > 1e-5 &&
                  !(moved * Math.sign(g) > 0.99 && moved * Math.sign(g) < 1.001)
                ) {
                  wrong.push(`${name} ${variable}[${i}]: gradient ${g}, moved ${moved} lr`)
                }
              })
            }
          }
          expect(wrong.slice(0, 10), `${wrong.length} weights`).toEqual([])
        })

        for (const name of BACKENDS.filter((b) => b !== 'cpu')) {
          it(`${name} agrees with cpu: op gradients, model gradients, weights after one step`, () => {
            const reference = backend('cpu').values
            const values = backend(name).values
            const checks = Object.keys(reference).map((key) =>
              compare(key, values[key] ?? [], reference[key]!),
            )
            console.log(
              `${context}: ${name} vs cpu, max |difference|: ` +
                checks.map((c) => `${c.name} ${c.maxAbs.toExponential(1)}`).join(', '),
            )
            expect(checks.length).toBeGreaterThan(30)
            expect(checks.filter((c) => c.bad)).toEqual([])
          })
        }
      })
    }
  },
)
