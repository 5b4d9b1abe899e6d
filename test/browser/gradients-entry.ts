// Browser entry for gradients.browser.test.ts: runs the model's custom gradients and one
// training step on cpu, wasm, webgl and webgpu with fixed inputs and leaves every number in
// `window.__result`. With `?context=worker` the same checks run in a dedicated module worker
// (where the app trains) and the page only relays the result.
import '@tensorflow/tfjs-backend-cpu'
import '@tensorflow/tfjs-backend-webgl'
import '@tensorflow/tfjs-backend-webgpu'
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm'
import * as tf from '@tensorflow/tfjs-core'
import { registerTrainingGradients } from '../../model/gradients'
import { createGruModel } from '../../model/gru-model'
import { createPopularitySampler } from '../../model/negative-sampler'
import { gatherRows, matMul, normalizeRows, softmaxCrossEntropy } from '../../model/ops'
import { encodeSessionBatch } from '../../model/session-batch'
import { createTrainer, type LossKind } from '../../model/train-step'
import * as fx from './gradients-fixtures'
import {
  BACKENDS,
  type BackendName,
  type BackendRun,
  type GradientsResult,
} from './gradients-protocol'

/** The slice of WebGPU's API read here (TypeScript's DOM lib has no WebGPU types). */
interface GpuAdapterLike {
  info?: Record<string, unknown>
  isFallbackAdapter?: boolean
  features: Iterable<string>
}
interface GpuLike {
  requestAdapter(options?: { powerPreference?: string }): Promise<GpuAdapterLike | null>
}

const message = (error: unknown) =>
  error instanceof Error ? `${error.name}: ${error.message}` : String(error)

/** Never dataSync: on WebGPU's software adapter it returns zeros, then the GPU process crashes. */
async function read(t: tf.Tensor): Promise<number[]> {
  return Array.from(await t.data())
}

async function describeWebGpuAdapter(): Promise<Record<string, unknown> | null> {
  const gpu = (navigator as unknown as { gpu?: GpuLike }).gpu
  if (!gpu) return { available: false, reason: 'navigator.gpu is undefined' }
  try {
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' })
    if (!adapter) return { available: false, reason: 'requestAdapter() returned null' }
    const info: Record<string, unknown> = {}
    for (const key of ['vendor', 'architecture', 'device', 'description', 'isFallbackAdapter']) {
      if (adapter.info && key in adapter.info) info[key] = adapter.info[key]
    }
    if (info.isFallbackAdapter === undefined) info.isFallbackAdapter = adapter.isFallbackAdapter
    return { available: true, ...info, features: [...adapter.features].sort() }
  } catch (error) {
    return { available: false, reason: message(error) }
  }
}

function backendInfo(name: BackendName): Record<string, unknown> {
  const env = tf.env()
  const flag = (key: string) => {
    try {
      return env.get(key)
    } catch {
      return undefined
    }
  }
  // Adam's default epsilon comes from here (see train-step.ts: ADAM_EPSILON).
  const epsilon = tf.backend().epsilon()
  switch (name) {
    case 'webgl':
      return {
        epsilon,
        version: flag('WEBGL_VERSION'),
        renderFloat32: flag('WEBGL_RENDER_FLOAT32_ENABLED'),
        packed: flag('WEBGL_PACK'),
      }
    case 'webgpu': {
      const adapterInfo = (tf.backend() as unknown as { adapterInfo?: object }).adapterInfo
      return { epsilon, tfjsAdapterInfo: adapterInfo ? { ...adapterInfo } : null }
    }
    case 'wasm':
      return {
        epsilon,
        simd: flag('WASM_HAS_SIMD_SUPPORT'),
        threads: flag('WASM_HAS_MULTITHREAD_SUPPORT'),
      }
    default:
      return { epsilon }
  }
}

type Values = Record<string, number[]>

async function checkGather(out: Values) {
  const { rows, cols, table, ids, weights } = fx.gather
  const loss = (t: tf.Tensor) =>
    tf.sum(
      tf.mul(
        tf.square(gatherRows(t as tf.Tensor2D, tf.tensor1d(ids, 'int32'))),
        tf.tensor2d(weights, [ids.length, cols]),
      ),
    ) as tf.Scalar
  const { value, grad } = tf.tidy(() => tf.valueAndGrad(loss)(tf.tensor2d(table, [rows, cols])))
  out['gather/value'] = await read(value)
  out['gather/grad'] = await read(grad)
  tf.dispose([value, grad])
}

async function checkMatMul(out: Values) {
  const { m, k, n, a, b } = fx.matmul
  const loss = (mm: typeof matMul) => (x: tf.Tensor, y: tf.Tensor) =>
    tf.sum(tf.square(mm(x as tf.Tensor2D, y as tf.Tensor2D))) as tf.Scalar
  const results = tf.tidy(() => {
    const x = tf.tensor2d(a, [m, k])
    const y = tf.tensor2d(b, [k, n])
    const ours = tf.valueAndGrads(loss(matMul))([x, y])
    // The stock gradient (transposeA/B flags) on the same backend, as a second reference.
    const stock = tf.grads(loss((p, q) => tf.matMul(p, q)))([x, y])
    return [ours.value, ...ours.grads, ...stock]
  })
  const names = ['value', 'grad_a', 'grad_b', 'stock_grad_a', 'stock_grad_b']
  for (const [i, name] of names.entries()) out[`matmul/${name}`] = await read(results[i]!)
  tf.dispose(results)
}

async function checkSoftmax(out: Values) {
  const { rows, classes, logits, targets } = fx.softmax
  const loss = (z: tf.Tensor) =>
    softmaxCrossEntropy(z as tf.Tensor2D, tf.tensor1d(targets, 'int32'))
  const { value, grad } = tf.tidy(() => tf.valueAndGrad(loss)(tf.tensor2d(logits, [rows, classes])))
  out['softmax/value'] = await read(value)
  out['softmax/grad'] = await read(grad)
  tf.dispose([value, grad])
}

async function checkNormalize(out: Values) {
  const { rows, cols, x, coefficients } = fx.normalize
  const loss = (t: tf.Tensor) =>
    tf.sum(tf.mul(normalizeRows(t), tf.tensor2d(coefficients, [rows, cols]))) as tf.Scalar
  const { value, grad } = tf.tidy(() => tf.valueAndGrad(loss)(tf.tensor2d(x, [rows, cols])))
  out['normalize/value'] = await read(value)
  out['normalize/grad'] = await read(grad)
  tf.dispose([value, grad])
}

/** Gradients of the full-softmax loss with respect to every model weight (no optimiser). */
async function checkModelGradients(out: Values) {
  registerTrainingGradients()
  const model = createGruModel(fx.modelConfig, fx.modelSeed)
  try {
    const batch = encodeSessionBatch(fx.sessions, fx.modelConfig.maxLen)
    const variables = [...model.variables.values()]
    const { value, grads } = tf.tidy(() =>
      tf.variableGrads(
        () =>
          softmaxCrossEntropy(
            model.logits(model.encode(batch, { training: true }), model.itemVectors()),
            tf.tensor1d(fx.targets, 'int32'),
          ),
        variables,
      ),
    )
    out['model/loss'] = await read(value)
    for (const [name, variable] of model.variables) {
      out[`model/init/${name}`] = await read(variable)
      out[`model/grad/${name}`] = await read(grads[variable.name]!)
    }
    tf.dispose([value, ...Object.values(grads)])
  } finally {
    model.dispose()
  }
}

/** One Adam step through createTrainer; every weight afterwards. */
async function checkTrainStep(out: Values, loss: LossKind) {
  const model = createGruModel(fx.modelConfig, fx.modelSeed)
  const trainer = createTrainer(model, {
    learningRate: fx.learningRate,
    loss,
    sampler: createPopularitySampler(fx.itemCounts, { seed: fx.samplerSeed }),
    negatives: fx.negatives,
    seed: fx.trainerSeed,
  })
  try {
    const batch = encodeSessionBatch(fx.sessions, fx.modelConfig.maxLen)
    out[`step_${loss}/loss`] = [await trainer.step(batch, fx.targets)]
    for (const [name, variable] of model.variables) {
      out[`step_${loss}/${name}`] = await read(variable)
    }
  } finally {
    trainer.dispose()
    model.dispose()
  }
}

const CHECKS: Array<[string, (out: Values) => Promise<void>]> = [
  ['gather', checkGather],
  ['matmul', checkMatMul],
  ['softmax', checkSoftmax],
  ['normalize', checkNormalize],
  ['model-gradients', checkModelGradients],
  ['step-full', (out) => checkTrainStep(out, 'full')],
  ['step-sampled', (out) => checkTrainStep(out, 'sampled')],
]

async function runBackend(name: BackendName): Promise<BackendRun> {
  const run: BackendRun = {
    name,
    initialised: false,
    info: {},
    values: {},
    failures: {},
    tensorsBefore: 0,
    tensorsAfter: 0,
    ms: 0,
  }
  const start = performance.now()
  try {
    const ok = await tf.setBackend(name)
    await tf.ready()
    run.initialised = ok && tf.getBackend() === name
    if (!run.initialised) {
      run.error = `setBackend('${name}') resolved ${ok}; active backend is ${tf.getBackend()}`
      return run
    }
    run.info = backendInfo(name)
    run.tensorsBefore = tf.memory().numTensors
    for (const [check, body] of CHECKS) {
      try {
        await body(run.values)
      } catch (error) {
        run.failures[check] = message(error)
      }
    }
    run.tensorsAfter = tf.memory().numTensors
  } catch (error) {
    run.error = message(error)
  } finally {
    run.ms = Math.round(performance.now() - start)
  }
  return run
}

async function runAll(context: GradientsResult['context']): Promise<GradientsResult> {
  // Served next to this script; one thread, since shops' pages lack cross-origin isolation.
  setWasmPaths(new URL('./', location.href).href)
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false)
  registerTrainingGradients()
  const webgpuAdapter = await describeWebGpuAdapter()
  const backends: BackendRun[] = []
  for (const name of BACKENDS) backends.push(await runBackend(name))
  return { context, userAgent: navigator.userAgent, webgpuAdapter, backends }
}

if (typeof window === 'undefined') {
  // Dedicated worker: compute and post back.
  runAll('worker').then(
    (result) => self.postMessage({ result }),
    (error: unknown) => self.postMessage({ error: message(error) }),
  )
} else if (new URLSearchParams(location.search).get('context') === 'worker') {
  const worker = new Worker(new URL(import.meta.url), { type: 'module' })
  worker.onmessage = (event: MessageEvent<{ result?: GradientsResult; error?: string }>) => {
    if (event.data.result) window.__result = event.data.result
    else window.__error = event.data.error ?? 'worker sent nothing'
  }
  worker.onerror = (event) => {
    window.__error = `worker error: ${event.message}`
  }
} else {
  runAll('page').then(
    (result) => (window.__result = result),
    (error: unknown) => (window.__error = message(error)),
  )
}
