// npm run export:artifacts -- --data <folder> --model <model.prw> [--out public/artifacts]
// [--version v1] [--dtype shipped|float16|int8|float32] [--local-lr 0.003]: the static files devices
// start from; `shipped` (the default) is shared/shipped-model.ts, the others are for comparisons.
// The manifest's on-device fine-tuning rate is the one `train --tune` chose for this shop (the
// model's report.json beside it, train/local-rate.ts); --local-lr overrides it, and without
// either the worker keeps its default.
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { decodeWeights, type WeightDType } from '../../shared/weights-codec'
import { exportArtifacts } from '../artifacts/export-artifacts'
import { SHIPPED_MODEL_ENCODING } from '../../shared/shipped-model'
import { loadDataset } from '../data/load-dataset'

const DTYPES: readonly string[] = ['shipped', 'float16', 'int8', 'float32']

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      data: { type: 'string' },
      model: { type: 'string' },
      out: { type: 'string' },
      version: { type: 'string' },
      dtype: { type: 'string' },
      'local-lr': { type: 'string' },
    },
    strict: true,
  })
  if (!values.data || !values.model) {
    throw new Error(
      'expected --data <folder> --model <model.prw> [--out <dir>] [--version v1] [--dtype shipped]',
    )
  }
  const dtype = values.dtype ?? 'shipped'
  if (!DTYPES.includes(dtype)) {
    throw new Error(`--dtype: expected ${DTYPES.join(', ')}, got ${JSON.stringify(values.dtype)}`)
  }
  const localLearningRate =
    values['local-lr'] === undefined
      ? await tunedLocalRate(values.model)
      : Number(values['local-lr'])
  if (localLearningRate !== undefined && !(localLearningRate > 0 && localLearningRate <= 0.1)) {
    throw new Error(`--local-lr: expected a number in (0, 0.1], got ${values['local-lr']}`)
  }
  const started = performance.now()
  const dataset = await loadDataset(values.data)
  const model = decodeWeights(await readFile(values.model))
  const loadMs = Math.round(performance.now() - started)
  const result = await exportArtifacts({
    dataset,
    model,
    outDir: values.out ?? path.join('public', 'artifacts'),
    version: values.version ?? 'v1',
    encoding: dtype === 'shipped' ? SHIPPED_MODEL_ENCODING : { dtype: dtype as WeightDType },
    localLearningRate,
  })

  const shards = result.artifacts.filter((a) => a.kind === 'covisit')
  const rows = result.artifacts
    .filter((a) => a.kind !== 'covisit')
    .map((a) => [
      a.kind,
      a.ref.url,
      formatBytes(a.ref.bytes),
      formatBytes(a.gzipBytes),
      formatBytes(a.brotliBytes),
    ])
  // Fetched one at a time when first needed: their sum is the most a device can download.
  rows.push([
    'covisit',
    `${shards.length} shards`,
    ...[
      shards.reduce((sum, a) => sum + a.ref.bytes, 0),
      shards.reduce((sum, a) => sum + a.gzipBytes, 0),
      shards.reduce((sum, a) => sum + a.brotliBytes, 0),
    ].map(formatBytes),
  ])
  const total = result.artifacts.reduce(
    (sum, a) => [sum[0]! + a.ref.bytes, sum[1]! + a.gzipBytes, sum[2]! + a.brotliBytes],
    [0, 0, 0],
  )
  rows.push(['total', '', ...total.map(formatBytes)])
  console.log(formatTable(['artifact', 'file', 'bytes', 'gzip', 'brotli'], rows))
  const t = result.timingsMs
  console.log(
    `${dataset.name}: ${dataset.nItems} items, ${dataset.train.length} training sessions; ` +
      `model ${dtype}; co-visitation top ${result.coVisitationTopK} per item`,
  )
  console.log(
    `load ${loadMs} ms · catalogue ${t.catalogue} ms · pools ${t.pools} ms · encode ${t.encode} ms · write ${t.write} ms`,
  )
  console.log(
    `on-device fine-tuning rate: ${localLearningRate ?? 'the worker default'}` +
      (values['local-lr'] === undefined && localLearningRate !== undefined
        ? ' (chosen by train --tune)'
        : ''),
  )
  console.log(`written ${result.manifestFile} (version ${result.manifest.version})`)
}

/** The rate `train --tune` chose, from the report beside the model, if it has one. */
async function tunedLocalRate(modelFile: string): Promise<number | undefined> {
  const reportFile = path.join(path.dirname(modelFile), 'report.json')
  if (!existsSync(reportFile)) return undefined
  const report = JSON.parse(await readFile(reportFile, 'utf8')) as { localTraining?: { chosen?: unknown } } // prettier-ignore
  const chosen = report.localTraining?.chosen
  if (chosen === undefined) return undefined
  if (!(typeof chosen === 'number' && chosen > 0 && chosen <= 0.1))
    throw new Error(`${reportFile}: localTraining.chosen must be a number in (0, 0.1], got ${JSON.stringify(chosen)}`) // prettier-ignore
  return chosen
}

function formatBytes(n: number): string {
  return n.toLocaleString('en-US')
}

function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)))
  const line = (cells: string[]) =>
    cells
      .map((cell, c) => (c >= 2 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
      .join('  ')
  return [line(header), ...rows.map(line)].join('\n')
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? `${error.name}: ${error.message}` : error)
  process.exit(1)
})
