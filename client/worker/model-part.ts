// The worker's model part, loaded with import() once a first visit's first lists can be served
// without it (worker-runtime.ts): TF.js (core and the cpu backend; the others load on demand),
// the backend probe, the model and its recommender, local fine-tuning and the federated update
// with the experiments' outcome reports and exploration's fleet counts.
// The entry (worker.ts) serves the first lists from the pools and never waits for this file.
import '@tensorflow/tfjs-backend-cpu'
import * as tf from '@tensorflow/tfjs-core'
import type { BackendName } from '../../shared/protocol'
import { decodeWeights, encodeWeights, type WeightsFile } from '../../shared/weights-codec'
import type { GruModel } from '../../model/gru-model'
import { exportModelWeights, importModelWeights } from '../../model/model-weights'
import { probeBackends, type ProbeOptions, type ProbeResult } from './backend-probe'
import { DEFAULT_LOCAL_TRAINER_OPTIONS } from '../../model/train-local'
import { createRecommender, type Recommender } from './recommend/recommend'
import type { Release } from './storage'
import type { StoredLocalWeights } from './storage/schema'
import type { OutcomeState } from './experiment-outcomes'
import { buildReports, REPORT_CRYPTO } from './experiment-reports'

export { createLocalTrainer } from '../../model/train-local'
export { prepareUpload } from './federated/prepare-upload'
export { createExplorationTotals, fleetDraw } from './exploration-totals'

/** P30c: the ended days' counters made reports, with the worker's CSPRNG and AES. */
export const buildOutcomeReports = (state: OutcomeState) => buildReports(state, REPORT_CRYPTO)

/** The row count of a release's model, read from its bytes (WeightsFormatError on bad bytes). */
export function modelItems(modelBytes: Uint8Array): number {
  return Number(decodeWeights(modelBytes).meta.nItems)
}

/**
 * Probes the candidates on what the backend still runs: fine-tuning (recommend is plain JS over
 * the item table, item-table.ts). One sampled-softmax step's logits: a batch of session vectors
 * against its negatives. Sized by the trainer, not the catalogue, so the probe no longer grows the
 * WASM heap by a whole table (WASM memory never shrinks).
 */
async function probeOnTrainingCost(
  weights: WeightsFile,
  options: Omit<ProbeOptions, 'benchmark'>,
): Promise<ProbeResult> {
  const dim = Number(weights.meta.embedDim)
  const { batchSize, negatives } = DEFAULT_LOCAL_TRAINER_OPTIONS
  const rows = tf.randomNormal([dim, negatives + batchSize])
  const sessions = tf.randomNormal([batchSize, dim])
  try {
    return await probeBackends({
      ...options,
      benchmark: async () => {
        const logits = tf.tidy(() => tf.matMul(sessions, rows)) // [batch, negatives + batch]
        await logits.data()
        logits.dispose()
      },
    })
  } finally {
    rows.dispose()
    sessions.dispose()
  }
}

export interface LoadedModel {
  probe: ProbeResult
  model: GruModel
  recommender: Recommender
  /** Steps of the fine-tuned weights loaded instead of the release's, or null. */
  localSteps: number | null
}

/**
 * The backend chosen among `options.candidates` by measurement, then the release's model on it
 * (or the device's fine-tuned weights of this very release) and its recommender.
 */
export async function loadModel(
  release: Release,
  local: StoredLocalWeights | null | undefined,
  options: Omit<ProbeOptions, 'benchmark'>,
): Promise<LoadedModel> {
  const weights = decodeWeights(release.modelBytes)
  const probe = await probeOnTrainingCost(weights, options)
  // Fine-tuned weights are used only on top of the release they were derived from.
  const own = local && local.baseVersion === release.manifest.version
  const file = own ? decodeWeights(local.bytes) : weights
  const model = importModelWeights(file)
  const recommender = createRecommender({
    model,
    modelVersion: release.manifest.version + (own ? '+local' : ''),
    catalogue: release.catalogue,
    pools: release.pools,
    rules: release.rules,
  })
  return { probe, model, recommender, localSteps: own ? local.steps : null }
}

/** The fine-tuned weights as the device keeps them (float16). */
export async function localWeightsBytes(model: GruModel): Promise<Uint8Array> {
  return encodeWeights(await exportModelWeights(model), { dtype: 'float16' })
}

interface GpuLoss {
  reason: string
  message: string
}

/** Resolves with the reason if the webgpu backend's device is lost; null for other backends. */
export function gpuDeviceLost(name: BackendName): Promise<string> | null {
  if (name !== 'webgpu') return null
  const device = (tf.backend() as unknown as { device?: { lost: Promise<GpuLoss> } }).device
  return device ? device.lost.then((info) => `${info.reason}: ${info.message}`) : null
}
