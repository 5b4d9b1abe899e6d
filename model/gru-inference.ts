// The session encoder's forward pass for one session, in plain JS over read-back weights. The
// same arithmetic as GruModel.encode without dropout; a recommendation needs one [d] vector, and
// TF.js spends ~15 kernel dispatches a GRU step (≈ 1.3 ms for ten steps on WASM) where these
// loops take a fraction of that. Training keeps using GruModel.encode, which is differentiable.
import type { GruModel, GruModelConfig } from './gru-model'

export interface SessionEncoder {
  /** The session's vector [embedDim], as `model.encode` gives it for a batch of one. */
  encode(session: Int32Array): Float32Array
}

const WEIGHTS = [
  'gru/w_input',
  'gru/w_hidden',
  'gru/b_input',
  'gru/b_hidden',
  'attention/w_query',
  'attention/w_key',
  'attention/v',
  'attention/position',
  'readout/w',
] as const

/**
 * Reads the model's recurrent weights once. Item inputs come from `items`: the model normalises
 * its embedding rows exactly as its scoring side does (tied embeddings), so they are the same
 * numbers. The encoder is a snapshot: build a new one when the weights change.
 */
export async function createSessionEncoder(
  model: GruModel,
  /** Item vectors on the scoring side, row-major [nItems, embedDim] (GruModel.itemVectors). */
  items: Float32Array,
): Promise<SessionEncoder> {
  const w: Record<string, Float32Array> = {}
  for (const name of WEIGHTS) {
    const variable = model.variables.get(name)!
    const values = (await variable.data()) as Float32Array
    // Matrices are kept transposed ([out, in]): each output is then one contiguous dot product
    // summed in a register, about twice as fast in V8 as accumulating rows into the output.
    // The position table is read by rows, not multiplied: it stays as it is.
    w[name] =
      variable.rank === 2 && name !== 'attention/position'
        ? transpose(values, variable.shape[0]!, variable.shape[1]!)
        : values
  }
  return encoderFromWeights(model.config, w, items)
}

function encoderFromWeights(
  config: GruModelConfig,
  w: Record<string, Float32Array>,
  items: Float32Array,
): SessionEncoder {
  const { embedDim: d, hiddenDim: h, maxLen } = config
  const wInput = w['gru/w_input']!
  const wHidden = w['gru/w_hidden']!
  const bInput = w['gru/b_input']!
  const bHidden = w['gru/b_hidden']!
  const gx = new Float32Array(3 * h)
  const gh = new Float32Array(3 * h)

  return {
    encode(session) {
      const kept = session.subarray(Math.max(0, session.length - maxLen))
      const states: Float32Array[] = []
      let state = new Float32Array(h)
      for (const item of kept) {
        affine(items.subarray(item * d, item * d + d), wInput, bInput, gx)
        affine(state, wHidden, bHidden, gh)
        const next = new Float32Array(h)
        for (let j = 0; j < h; j++) {
          const reset = sigmoid(gx[j]! + gh[j]!)
          const update = sigmoid(gx[h + j]! + gh[h + j]!)
          const candidate = Math.tanh(gx[2 * h + j]! + reset * gh[2 * h + j]!)
          next[j] = candidate + update * (state[j]! - candidate)
        }
        states.push((state = next))
      }
      // NARM's local encoder: additive attention of the last state over every state, each step
      // told how far from the end it is (the position table's last row is the last item).
      const query = affine(state, w['attention/w_query']!, null, new Float32Array(h))
      const v = w['attention/v']!
      const position = w['attention/position']!
      const local = new Float32Array(h)
      const key = new Float32Array(h)
      for (const [step, s] of states.entries()) {
        affine(s, w['attention/w_key']!, null, key)
        const row = (maxLen - states.length + step) * h
        let weight = 0
        for (let j = 0; j < h; j++)
          weight += sigmoid(key[j]! + query[j]! + position[row + j]!) * v[j]!
        for (let j = 0; j < h; j++) local[j] = local[j]! + weight * s[j]!
      }
      const readout = new Float32Array(2 * h)
      readout.set(state)
      readout.set(local, h)
      const out = affine(readout, w['readout/w']!, null, new Float32Array(d))
      if (!config.normalize) return out
      let norm = 0
      for (const value of out) norm += value * value
      const inverse = 1 / Math.sqrt(norm + 1e-12)
      for (let k = 0; k < d; k++) out[k] = out[k]! * inverse
      return out
    },
  }
}

/** out = input · matrix (+ bias), with `matrix` given transposed: [out.length, input.length]. */
function affine(
  input: Float32Array,
  matrixT: Float32Array,
  bias: Float32Array | null,
  out: Float32Array,
): Float32Array {
  const width = input.length
  for (let j = 0; j < out.length; j++) {
    const row = j * width
    let sum = bias ? bias[j]! : 0
    for (let k = 0; k < width; k++) sum += input[k]! * matrixT[row + k]!
    out[j] = sum
  }
  return out
}

function transpose(values: Float32Array, rows: number, columns: number): Float32Array {
  const out = new Float32Array(values.length)
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < columns; c++) out[c * rows + r] = values[r * columns + c]!
  }
  return out
}

function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z))
}
