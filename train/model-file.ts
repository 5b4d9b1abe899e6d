// Trained models on disk: `<dir>/model.prw` (float32 weights, the codec in shared/) and
// `<dir>/report.json` (settings, per-epoch history, validation). `models/` is git-ignored.
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { GruModel } from '../model/gru-model'
import { exportModelWeights, importModelWeights } from '../model/model-weights'
import { decodeWeights, encodeWeights } from '../shared/weights-codec'

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

export async function loadModel(file: string): Promise<GruModel> {
  return importModelWeights(decodeWeights(await readFile(file)))
}
