// Dataset → trained GRU, the path shared by `npm run train` and `npm run bench:quality`:
// carve a validation split from the end of training, fit with per-epoch validation, and
// return the best-validated model with a JSON-ready report.
import * as tf from '@tensorflow/tfjs-core'
import {
  createGruModel,
  DEFAULT_GRU_CONFIG,
  type GruModel,
  type GruModelConfig,
} from '../model/gru-model'
import { countItems, splitValidation } from './data/examples'
import type { SessionDataset } from './data/types'
import { evaluateScorer } from '../model/eval/evaluate'
import {
  DEFAULT_FIT_OPTIONS,
  fitGruModel,
  type FitOptions,
  type FitProgress,
  type FitReport,
} from './fit'
import { createGruScorer } from '../model/eval/gru-scorer'
import { createProgressLine, formatDuration } from './progress'
import { exportModelWeights, importModelWeights } from '../model/model-weights'
import { decodeWeights, encodeWeights, PQ_DEFAULT_SLICE } from '../shared/weights-codec'
import { SHIPPED_MODEL_ENCODING } from '../shared/shipped-model'
import { TABLE_NAME } from '../shared/federation-layout'
import { quantiseRows } from '../shared/product-quantiser'
import { createQuantisedTrainer } from './quantised-trainer'

export interface TrainSettings {
  model: Omit<GruModelConfig, 'nItems'>
  fit: Omit<FitOptions, 'validate' | 'onProgress'>
  /** Share of training sessions (the most recent) held out for model selection. */
  validationFraction: number
  /** Cases of the validation split scored after each epoch (the first N, deterministic). */
  validationCases: number
  /** Training continued in the shipped form (pq8 item table), after the float32 fit. */
  shipped: ShippedFitSettings
}

export interface ShippedFitSettings {
  /** Epochs in the shipped form; 0 ships the k-means quantisation of the float32 table as is. */
  epochs: number
  learningRate: number
}

export const DEFAULT_TRAIN_SETTINGS: TrainSettings = {
  model: DEFAULT_GRU_CONFIG,
  fit: DEFAULT_FIT_OPTIONS,
  validationFraction: 0.05,
  validationCases: 15_000,
  shipped: { epochs: 2, learningRate: 0.0003 },
}

export interface TrainReport {
  dataset: string
  backend: string
  settings: TrainSettings
  fitSessions: number
  validationSessions: number
  parameters: number
  fit: FitReport
  validationRecall20ByEpoch: Array<number | undefined>
}

/**
 * Scores `model` on the first `validationCases` of `validation` after an epoch, on the progress
 * line; `last` holds the latest score and training progress for the line's next updates.
 */
function epochValidator(
  model: GruModel,
  validation: Int32Array[],
  trainCounts: Int32Array,
  settings: TrainSettings,
  progress: ReturnType<typeof createProgressLine>,
  last: { recall?: number; progress?: FitProgress },
): ((epoch: number) => Promise<number>) | undefined {
  if (validation.length === 0) return undefined
  return async (epoch) => {
    const scorer = createGruScorer(model)
    try {
      const result = await evaluateScorer(scorer, validation, {
        nItems: model.config.nItems,
        trainCounts,
        maxCases: settings.validationCases,
        maxPrefixLen: model.config.maxLen,
      })
      last.recall = result.metrics['recall@20']!
      const p = last.progress
      progress.done(
        `epoch ${epoch}: ${p ? `loss ${p.loss.toFixed(4)}, ${Math.round(p.examplesPerSec)} ex/s, ` : ''}` +
          `validation Recall@20 ${(last.recall * 100).toFixed(2)} ` +
          `MRR@20 ${(result.metrics['mrr@20']! * 100).toFixed(2)} on ${result.cases} cases`,
      )
      return last.recall
    } finally {
      scorer.dispose?.()
    }
  }
}

function showProgress(
  progress: ReturnType<typeof createProgressLine>,
  last: { recall?: number; progress?: FitProgress },
) {
  return (p: FitProgress) => {
    last.progress = p
    progress.update(
      `epoch ${p.epoch}/${p.epochs} step ${p.step}/${p.steps} · ${Math.round(p.examplesPerSec)} ex/s · ` +
        `loss ${p.loss.toFixed(4)} · val R@20 ${last.recall === undefined ? '–' : (last.recall * 100).toFixed(2)} · ` +
        `epoch ETA ${formatDuration(p.etaSec)}`,
    )
  }
}

export async function trainOnDataset(
  dataset: SessionDataset,
  settings: TrainSettings,
  log: (line: string) => void = (line) => console.error(line),
): Promise<{ model: GruModel; report: TrainReport }> {
  const config: GruModelConfig = { ...settings.model, nItems: dataset.nItems }
  const { fit, validation } = splitValidation(dataset.train, settings.validationFraction)
  const trainCounts = countItems(fit, dataset.nItems)
  const model = createGruModel(config, settings.fit.seed)
  const progress = createProgressLine()
  log(
    `training on ${fit.length} sessions (${validation.length} held out for validation), ` +
      `${dataset.nItems} items, ${model.parameterCount()} parameters, backend ${tf.getBackend()}`,
  )
  const last = {}
  const fitReport = await fitGruModel(model, fit, {
    ...settings.fit,
    validate: epochValidator(model, validation, trainCounts, settings, progress, last),
    onProgress: showProgress(progress, last),
  })
  log(`best epoch ${fitReport.bestEpoch} after ${formatDuration(fitReport.trainSeconds)}`)
  return {
    model,
    report: {
      dataset: dataset.name,
      backend: tf.getBackend(),
      settings,
      fitSessions: fit.length,
      validationSessions: validation.length,
      parameters: model.parameterCount(),
      fit: fitReport,
      validationRecall20ByEpoch: fitReport.epochs.map((e) => e.validation),
    },
  }
}

export interface ShippedFitReport {
  settings: ShippedFitSettings
  /** Validation Recall@20 of the k-means quantisation before any epoch in the shipped form. */
  validationBefore?: number
  fit?: FitReport
  /** 0: no epoch beat the k-means quantisation, which ships as is. */
  bestEpoch: number
}

/**
 * The model a device gets: `trained` (float32) in the shipped encoding, then trained on in that
 * form (train/quantised-trainer.ts), every epoch validated, the k-means start included; the best
 * is kept. `trained` is left as it was; the result's item table is exactly its pq8 form.
 */
export async function fitShippedForm(
  trained: GruModel,
  dataset: SessionDataset,
  settings: TrainSettings,
  log: (line: string) => void = (line) => console.error(line),
): Promise<{ model: GruModel; report: ShippedFitReport }> {
  const shipped = decodeWeights(
    encodeWeights(await exportModelWeights(trained), SHIPPED_MODEL_ENCODING),
  )
  const model = importModelWeights(shipped)
  const { fit, validation } = splitValidation(dataset.train, settings.validationFraction)
  const trainCounts = countItems(fit, dataset.nItems)
  const progress = createProgressLine()
  const last = {}
  const validate = epochValidator(model, validation, trainCounts, settings, progress, last)
  const report: ShippedFitReport = { settings: settings.shipped, bestEpoch: 0 }
  if (settings.shipped.epochs === 0) return { model, report }
  log(`training on in the shipped form (pq8 item table) for ${settings.shipped.epochs} epochs`)
  report.validationBefore = await validate?.(0)
  const start = [...model.variables.values()].map((v) => tf.clone(v))
  try {
    const table = shipped.tensors.find((t) => t.name === TABLE_NAME)!
    const [rows, dim] = table.shape as [number, number]
    const quantised = quantiseRows(table.values, rows, dim, { subspaces: dim / PQ_DEFAULT_SLICE })
    report.fit = await fitGruModel(model, fit, {
      ...settings.fit,
      epochs: settings.shipped.epochs,
      learningRate: settings.shipped.learningRate,
      decayFrom: 1,
      loss: 'sampled',
      validate,
      onProgress: showProgress(progress, last),
      trainer: (m, options) => createQuantisedTrainer(m, quantised, options),
    })
    const best = Math.max(...report.fit.epochs.map((e) => e.validation ?? -Infinity))
    if (report.validationBefore !== undefined && !(best > report.validationBefore)) {
      ;[...model.variables.values()].forEach((v, i) => v.assign(start[i]!))
    } else {
      report.bestEpoch = report.fit.bestEpoch
    }
  } finally {
    start.forEach((t) => t.dispose())
  }
  log(`shipped form: epoch ${report.bestEpoch} kept`)
  return { model, report }
}
