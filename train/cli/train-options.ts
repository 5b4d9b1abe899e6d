// Command-line options shared by `train` and `bench:quality`, mapped onto TrainSettings, and the
// --backend that `eval` reads too.
import type { NodeBackend } from '../../model/node-backend'
import { DEFAULT_TRAIN_SETTINGS, type TrainSettings } from '../train-model'

export const TRAIN_OPTIONS = {
  data: { type: 'string' },
  out: { type: 'string' },
  backend: { type: 'string' },
  epochs: { type: 'string' },
  batch: { type: 'string' },
  lr: { type: 'string' },
  'lr-decay': { type: 'string' },
  'decay-from': { type: 'string' },
  loss: { type: 'string' },
  negatives: { type: 'string' },
  dim: { type: 'string' },
  'max-len': { type: 'string' },
  dropout: { type: 'string' },
  scale: { type: 'string' },
  'no-normalize': { type: 'boolean' },
  seed: { type: 'string' },
  patience: { type: 'string' },
  'val-fraction': { type: 'string' },
  'val-cases': { type: 'string' },
  'max-minutes': { type: 'string' },
  /** Minutes of settings search on the validation split before the final training (tune.ts). */
  tune: { type: 'string' },
  retrain: { type: 'boolean' },
  'skip-baselines': { type: 'string' },
  results: { type: 'string' },
} as const

type Values = {
  [K in keyof typeof TRAIN_OPTIONS]?: (typeof TRAIN_OPTIONS)[K]['type'] extends 'boolean'
    ? boolean
    : string
}

function numberArg(
  values: Values,
  name: keyof Values,
  fallback: number,
  check: (n: number) => boolean,
): number {
  const raw = values[name]
  if (raw === undefined) return fallback
  const n = Number(raw)
  if (typeof raw !== 'string' || !Number.isFinite(n) || !check(n)) {
    throw new Error(`--${name}: expected a valid number, got ${JSON.stringify(raw)}`)
  }
  return n
}

const positiveInt = (n: number) => Number.isInteger(n) && n > 0

export function settingsFromArgs(values: Values): TrainSettings {
  const base = DEFAULT_TRAIN_SETTINGS
  const loss = values.loss ?? base.fit.loss
  if (loss !== 'full' && loss !== 'sampled')
    throw new Error(`--loss: expected full or sampled, got ${loss}`)
  const dim = numberArg(values, 'dim', base.model.embedDim, positiveInt)
  const maxMinutes = numberArg(values, 'max-minutes', 0, (n) => n >= 0)
  return {
    model: {
      embedDim: dim,
      hiddenDim: dim,
      maxLen: numberArg(values, 'max-len', base.model.maxLen, positiveInt),
      dropout: numberArg(values, 'dropout', base.model.dropout, (n) => n >= 0 && n < 1),
      normalize: values['no-normalize'] ? false : base.model.normalize,
      scale: numberArg(values, 'scale', base.model.scale, (n) => n > 0),
    },
    fit: {
      epochs: numberArg(values, 'epochs', base.fit.epochs, positiveInt),
      batchSize: numberArg(values, 'batch', base.fit.batchSize, positiveInt),
      learningRate: numberArg(values, 'lr', base.fit.learningRate, (n) => n > 0),
      lrDecay: numberArg(values, 'lr-decay', base.fit.lrDecay, (n) => n > 0 && n <= 1),
      decayFrom: numberArg(
        values,
        'decay-from',
        base.fit.decayFrom,
        (n) => Number.isInteger(n) && n >= 0,
      ),
      loss,
      negatives: numberArg(values, 'negatives', base.fit.negatives, positiveInt),
      seed: numberArg(values, 'seed', base.fit.seed, Number.isInteger),
      patience: numberArg(values, 'patience', base.fit.patience, positiveInt),
      ...(maxMinutes > 0 ? { maxSeconds: maxMinutes * 60 } : {}),
    },
    validationFraction: numberArg(
      values,
      'val-fraction',
      base.validationFraction,
      (n) => n >= 0 && n < 1,
    ),
    validationCases: numberArg(values, 'val-cases', base.validationCases, positiveInt),
  }
}

/** --tune <minutes>: the search's budget, or undefined without it. */
export function tuneMinutesFromArgs(values: { tune?: string }): number | undefined {
  if (values.tune === undefined) return undefined
  const minutes = Number(values.tune)
  if (!(Number.isFinite(minutes) && minutes > 0))
    throw new Error(`--tune: expected minutes > 0, got ${JSON.stringify(values.tune)}`)
  return minutes
}

/** --backend, for every command that runs the model in Node: wasm (the default) or cpu. */
export function backendFromArgs(raw: string | undefined): NodeBackend {
  const backend = raw ?? 'wasm'
  if (backend !== 'wasm' && backend !== 'cpu') {
    throw new Error(`--backend: expected wasm or cpu, got ${backend}`)
  }
  return backend
}
