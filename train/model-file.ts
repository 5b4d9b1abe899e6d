// Trained models on disk: `<dir>/model.prw` (float32 weights, the codec in shared/) and
// `<dir>/report.json` (settings, per-epoch history, validation); beside them the model devices
// get, trained on in its shipped form: `<dir>/shipped.prw` (the shipped encoding) and
// `<dir>/shipped.json`. `models/` is git-ignored.
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { GruModel } from '../model/gru-model'
import { exportModelWeights, importModelWeights } from '../model/model-weights'
import { decodeWeights, encodeWeights } from '../shared/weights-codec'
import { SHIPPED_MODEL_ENCODING } from '../shared/shipped-model'

export const SHIPPED_MODEL_FILE = 'shipped.prw'
export const SHIPPED_REPORT_FILE = 'shipped.json'

export function defaultModelDir(datasetName: string): string {
  return path.resolve('models', datasetName)
}

/** Writes float32 weights plus float16 and int8 copies (the download forms), returns byte sizes. */
export async function saveModel(
  model: GruModel,
  dir: string,
  report: unknown,
): Promise<Record<'float32' | 'float16' | 'int8', number>> {
  await mkdir(dir, { recursive: true })
  const file = await exportModelWeights(model)
  const sizes = { float32: 0, float16: 0, int8: 0 }
  for (const dtype of ['float32', 'float16', 'int8'] as const) {
    const bytes = encodeWeights(file, { dtype })
    sizes[dtype] = bytes.byteLength
    const name = dtype === 'float32' ? 'model.prw' : `model.${dtype}.prw`
    await writeFile(path.join(dir, name), bytes)
  }
  await writeFile(
    path.join(dir, 'report.json'),
    JSON.stringify({ ...(report as object), bytes: sizes }, null, 2),
  )
  return sizes
}

/** Writes the shipped model in the shipped encoding and its report; returns its byte size. */
export async function saveShippedModel(
  model: GruModel,
  dir: string,
  report: unknown,
): Promise<number> {
  await mkdir(dir, { recursive: true })
  const bytes = encodeWeights(await exportModelWeights(model), SHIPPED_MODEL_ENCODING)
  await writeFile(path.join(dir, SHIPPED_MODEL_FILE), bytes)
  await writeFile(
    path.join(dir, SHIPPED_REPORT_FILE),
    JSON.stringify({ ...(report as object), bytes: bytes.byteLength }, null, 2),
  )
  return bytes.byteLength
}

export async function loadModel(file: string): Promise<GruModel> {
  return importModelWeights(decodeWeights(await readFile(file)))
}
