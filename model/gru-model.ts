// The session encoder: item embedding → GRU → NARM-style attention readout → projection, scored
// against the same (tied) item embedding table. With `normalize`, item and session vectors are
// unit length and logits are scaled cosines (NISER), which keeps popular items from dominating.
// The attention knows each step's distance from the session's end (a learnt vector per distance,
// as GCE-GNN's reverse position embedding): on DIGINETICA's validation split, both scoring
// bonuses on, it took Recall@20 / MRR@20 from 54.31 / 19.10 to 54.39 / 19.28 (BENCHMARKS.md).
import * as tf from '@tensorflow/tfjs-core'
import { createRandom, fillUniform } from '../shared/random'
import { gatherRows, matMul, normalizeRows } from './ops'

export interface GruModelConfig {
  nItems: number
  embedDim: number
  hiddenDim: number
  /** Only the last `maxLen` items of a session are read. */
  maxLen: number
  /** Dropout rate on the item embeddings and on the readout, training only. */
  dropout: number
  normalize: boolean
  /** Logit scale (inverse temperature) when `normalize` is on. */
  scale: number
  /**
   * Added to the logit of each item the session already holds: a shopper comes back to what they
   * viewed (RepeatNet's repeat path, reduced to one number). Chosen on the validation split after
   * training (train/train-model.ts); absent: none.
   */
  repeatBonus?: number
  /**
   * Added to the logit of the items most often viewed next to the session's last item, in
   * proportion to their place in its co-visitation list (`coVisitShare`, co-visit-bonus.ts): the item-to-item
   * signal S-KNN and Item-KNN rank by, which the GRU alone under-uses. The lists are the ones
   * every device downloads with the pools. Chosen on the validation split after training, like
   * the repeat bonus; absent: none.
   */
  coVisitBonus?: number
}

export const DEFAULT_GRU_CONFIG: Omit<GruModelConfig, 'nItems'> = {
  embedDim: 100,
  hiddenDim: 100,
  maxLen: 19,
  dropout: 0.1,
  normalize: true,
  scale: 12,
}

/** One padded batch of sessions: ids left-padded with 0 and masked, [batch, time]. */
export interface SessionBatch {
  batch: number
  time: number
  ids: Int32Array // [batch * time]
  mask: Float32Array // [batch * time], 1 where a real item sits
}

export interface EncodeOptions {
  training?: boolean
  /** Dropout seed. */
  seed?: number
  /**
   * Rows to look `batch.ids` up in instead of the item embedding: a sparse trainer passes just
   * the rows a step touches, with the ids remapped to positions in it.
   */
  itemRows?: tf.Tensor2D
}

export interface GruModel {
  readonly config: GruModelConfig
  /** Trainable variables by stable name; the weight codec uses the same names. */
  readonly variables: ReadonlyMap<string, tf.Variable>
  /** Session representations [batch, embedDim]; `training` turns dropout on. */
  encode(batch: SessionBatch, options?: EncodeOptions): tf.Tensor2D
  /** The scoring side of the item table [nItems, embedDim] (normalised when configured). */
  itemVectors(): tf.Tensor2D
  /** Logits for given session vectors against item vectors: [batch, items]. */
  logits(sessions: tf.Tensor2D, items: tf.Tensor2D): tf.Tensor2D
  parameterCount(): number
  dispose(): void
}

/** Names and shapes of every weight, in a fixed order. */
export function describeWeights(config: GruModelConfig): Array<[string, number[]]> {
  const { nItems, embedDim: d, hiddenDim: h } = config
  return [
    ['item_embedding', [nItems, d]],
    ['gru/w_input', [d, 3 * h]],
    ['gru/w_hidden', [h, 3 * h]],
    ['gru/b_input', [3 * h]],
    ['gru/b_hidden', [3 * h]],
    ['attention/w_query', [h, h]],
    ['attention/w_key', [h, h]],
    ['attention/v', [h, 1]],
    ['attention/position', [config.maxLen, h]],
    ['readout/w', [2 * h, d]],
  ]
}

/** Builds a model with seeded uniform(±1/√hidden) initialisation, as NARM and SR-GNN do. */
export function createGruModel(config: GruModelConfig, seed = 1): GruModel {
  const random = createRandom(seed)
  const limit = 1 / Math.sqrt(config.hiddenDim)
  const values = new Map<string, Float32Array>()
  for (const [name, shape] of describeWeights(config)) {
    const size = shape.reduce((a, b) => a * b, 1)
    values.set(
      name,
      name.startsWith('gru/b_') ? new Float32Array(size) : fillUniform(size, limit, random),
    )
  }
  return createGruModelFromValues(config, values)
}

/** Builds a model from already validated values, one per `describeWeights(config)` entry. */
export function createGruModelFromValues(
  config: GruModelConfig,
  values: ReadonlyMap<string, Float32Array>,
): GruModel {
  const variables = new Map<string, tf.Variable>()
  for (const [name, shape] of describeWeights(config)) {
    // Variable names are global to the engine; the counter lets several models coexist.
    // tidy releases the initial tensor; the variable keeps its own reference to the data.
    const variable = tf.tidy(() =>
      tf.variable(tf.tensor(values.get(name)!, shape), true, `${name}#${counter++}`),
    )
    variables.set(name, variable)
  }
  return createModelFromVariables(config, variables)
}

let counter = 0

/**
 * `tf.unstack` along time. With a single step the engine hands Unpack's gradient a lone tensor
 * instead of a list and its `stack` throws (tfjs 4.22), so one step is a plain reshape.
 */
function unstackTime(x: tf.Tensor3D): tf.Tensor2D[] {
  const [b, t, width] = x.shape
  return t === 1 ? [tf.reshape(x, [b, width])] : (tf.unstack(x, 1) as tf.Tensor2D[])
}

/** The same model (its variables shared, not copied) with other scoring bonuses. */
export function withBonuses(
  model: GruModel,
  bonuses: Partial<Pick<GruModelConfig, 'repeatBonus' | 'coVisitBonus'>>,
): GruModel {
  return createModelFromVariables({ ...model.config, ...bonuses }, new Map(model.variables))
}

function createModelFromVariables(
  config: GruModelConfig,
  variables: Map<string, tf.Variable>,
): GruModel {
  const v = (name: string) => variables.get(name)! as tf.Variable
  const { hiddenDim: h, embedDim: d } = config

  function itemVectors(): tf.Tensor2D {
    const table = v('item_embedding') as tf.Tensor2D
    return config.normalize ? normalizeRows(table) : table
  }

  function encode(batch: SessionBatch, options: EncodeOptions = {}) {
    const { batch: b, time: t } = batch
    const training = options.training === true && config.dropout > 0
    const seed = options.seed ?? 0
    const ids = tf.tensor1d(batch.ids, 'int32')
    const mask = tf.tensor2d(batch.mask, [b, t])
    const rows = options.itemRows ?? (v('item_embedding') as tf.Tensor2D)
    let x: tf.Tensor2D = gatherRows(rows, ids) // [b*t, d]
    if (config.normalize) x = normalizeRows(x)
    if (training) x = tf.dropout(x, config.dropout, undefined, seed) as tf.Tensor2D

    // Input projections for every step at once; the recurrence then only multiplies by w_hidden.
    const gx = tf.add(matMul(x, v('gru/w_input') as tf.Tensor2D), v('gru/b_input')) // [b*t, 3h]
    const gxSteps = unstackTime(tf.reshape(gx, [b, t, 3 * h])) // t × [b, 3h]
    const maskSteps = tf.unstack(tf.expandDims(mask, 2), 1) // t × [b, 1]
    let state = tf.zeros([b, h]) as tf.Tensor2D
    const states: tf.Tensor2D[] = []
    for (let step = 0; step < t; step++) {
      const gh = tf.add(matMul(state, v('gru/w_hidden') as tf.Tensor2D), v('gru/b_hidden'))
      const [xr, xz, xn] = tf.split(gxSteps[step]!, 3, 1)
      const [hr, hz, hn] = tf.split(gh, 3, 1)
      const reset = tf.sigmoid(tf.add(xr!, hr!))
      const update = tf.sigmoid(tf.add(xz!, hz!))
      const candidate = tf.tanh(tf.add(xn!, tf.mul(reset, hn!)))
      const next = tf.add(candidate, tf.mul(update, tf.sub(state, candidate)))
      // Padding steps (left of the session) keep the zero state.
      state = tf.add(state, tf.mul(maskSteps[step]!, tf.sub(next, state))) as tf.Tensor2D
      states.push(state)
    }
    const last = state // [b, h]
    const all = tf.stack(states, 1) // [b, t, h]

    // NARM's local encoder: additive attention of the last state over every state.
    const query = matMul(last, v('attention/w_query') as tf.Tensor2D) // [b, h]
    const keys = matMul(tf.reshape(all, [b * t, h]), v('attention/w_key') as tf.Tensor2D)
    // Positions counted from the end: row maxLen-1 is the last item, so the last t rows line up
    // with the t steps (left padding keeps the last item at the last step).
    const positions = tf.slice(v('attention/position'), [config.maxLen - t, 0], [t, h]) // [t, h]
    const energy = tf.sigmoid(
      tf.add(
        tf.add(tf.reshape(keys, [b, t, h]), tf.expandDims(query, 1)),
        tf.expandDims(positions, 0),
      ),
    )
    const weight = tf.mul(
      tf.reshape(matMul(tf.reshape(energy, [b * t, h]), v('attention/v') as tf.Tensor2D), [b, t]),
      mask,
    ) // [b, t]
    const local = tf.sum(tf.mul(all, tf.expandDims(weight, 2)), 1) // [b, h]

    let readout = tf.concat([last, local], 1) as tf.Tensor2D // [b, 2h]
    if (training) readout = tf.dropout(readout, config.dropout, undefined, seed + 1) as tf.Tensor2D
    const session = matMul(readout, v('readout/w') as tf.Tensor2D) // [b, d]
    void d
    return config.normalize ? normalizeRows(session) : session
  }

  function logits(sessions: tf.Tensor2D, items: tf.Tensor2D): tf.Tensor2D {
    // Explicit transpose keeps WASM's matMul on its fast path (see ops.matMul).
    // The scale goes on the small side: [batch, d], not [batch, items].
    const scaled = config.normalize ? tf.mul(sessions, config.scale) : sessions
    return matMul(scaled as tf.Tensor2D, tf.transpose(items))
  }

  return {
    config,
    variables,
    encode,
    itemVectors,
    logits,
    parameterCount: () => [...variables.values()].reduce((n, w) => n + w.size, 0),
    dispose: () => {
      for (const w of variables.values()) w.dispose()
    },
  }
}
