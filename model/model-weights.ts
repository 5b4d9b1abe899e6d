// GruModel ⇄ WeightsFile (the codec in shared/). Loading validates the whole file against the
// config it declares before any tensor is created, so a bad file never yields half a model.
import type { NamedTensor, WeightsFile } from '../shared/weights-codec'
import {
  createGruModelFromValues,
  describeWeights,
  type GruModel,
  type GruModelConfig,
} from './gru-model'
import { PocketrecError } from '../shared/errors'

export const GRU_WEIGHTS_FORMAT = 'pocketrec-gru/1'

/** Raised for a weights file that does not describe a loadable model; `code` is stable. */
export class ModelWeightsError extends PocketrecError<'E_MODEL_WEIGHTS'> {
  constructor(message: string) {
    super('ModelWeightsError', 'E_MODEL_WEIGHTS', message)
  }
}

/** Reads the model's weights back from the backend (async: never blocks a GPU backend). */
export async function exportModelWeights(
  model: GruModel,
  extraMeta: Record<string, string | number | boolean> = {},
): Promise<WeightsFile> {
  const tensors: NamedTensor[] = []
  for (const [name, variable] of model.variables) {
    tensors.push({
      name,
      shape: variable.shape.slice(),
      values: (await variable.data()) as Float32Array,
    })
  }
  return {
    format: GRU_WEIGHTS_FORMAT,
    meta: { ...extraMeta, ...configToMeta(model.config) },
    tensors,
  }
}

/** Builds a model from a decoded weights file, or throws ModelWeightsError naming the mismatch. */
export function importModelWeights(file: WeightsFile): GruModel {
  if (file.format !== GRU_WEIGHTS_FORMAT) {
    throw new ModelWeightsError(
      `expected format ${GRU_WEIGHTS_FORMAT}, got ${JSON.stringify(file.format)}`,
    )
  }
  const config = configFromMeta(file.meta)
  const expected = describeWeights(config)
  if (file.tensors.length !== expected.length) {
    throw new ModelWeightsError(
      `expected ${expected.length} weight tensors, got ${file.tensors.length}`,
    )
  }
  const byName = new Map(file.tensors.map((t) => [t.name, t]))
  const values = new Map<string, Float32Array>()
  for (const [name, shape] of expected) {
    const tensor = byName.get(name)
    if (!tensor) throw new ModelWeightsError(`expected a weight tensor named ${name}, none found`)
    if (tensor.shape.join(',') !== shape.join(',')) {
      throw new ModelWeightsError(`expected ${name} of shape [${shape}], got [${tensor.shape}]`)
    }
    values.set(name, tensor.values)
  }
  return createGruModelFromValues(config, values)
}

function configToMeta(config: GruModelConfig): Record<string, number | boolean> {
  return { ...config }
}

const INTEGER_FIELDS = ['nItems', 'embedDim', 'hiddenDim', 'maxLen'] as const

function configFromMeta(meta: WeightsFile['meta']): GruModelConfig {
  for (const field of INTEGER_FIELDS) {
    const value = meta[field]
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 50_000_000) {
      throw new ModelWeightsError(
        `expected meta.${field} to be a positive integer, got ${JSON.stringify(value)}`,
      )
    }
  }
  const { dropout, normalize, scale, repeatBonus, coVisitBonus } = meta
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) {
    throw new ModelWeightsError(`expected meta.dropout in [0, 1), got ${JSON.stringify(dropout)}`)
  }
  if (typeof normalize !== 'boolean') {
    throw new ModelWeightsError(
      `expected meta.normalize to be a boolean, got ${JSON.stringify(normalize)}`,
    )
  }
  if (typeof scale !== 'number' || !(scale > 0 && Number.isFinite(scale))) {
    throw new ModelWeightsError(
      `expected meta.scale to be a positive number, got ${JSON.stringify(scale)}`,
    )
  }
  for (const [name, bonus] of [
    ['repeatBonus', repeatBonus],
    ['coVisitBonus', coVisitBonus],
  ] as const) {
    if (bonus !== undefined && !(typeof bonus === 'number' && bonus >= 0 && bonus < 100)) {
      throw new ModelWeightsError(
        `expected meta.${name} in [0, 100) when given, got ${JSON.stringify(bonus)}`,
      )
    }
  }
  return {
    ...(repeatBonus === undefined ? {} : { repeatBonus: repeatBonus as number }),
    ...(coVisitBonus === undefined ? {} : { coVisitBonus: coVisitBonus as number }),
    nItems: meta.nItems as number,
    embedDim: meta.embedDim as number,
    hiddenDim: meta.hiddenDim as number,
    maxLen: meta.maxLen as number,
    dropout,
    normalize,
    scale,
  }
}
