import * as tf from '@tensorflow/tfjs-core'
import {
  decodeCatalogue,
  decodeCoVisitationShard,
  decodePools,
} from '../../shared/compact-artifacts'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { gunzipSync, brotliDecompressSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createGruModel, DEFAULT_GRU_CONFIG, type GruModelConfig } from '../../model/gru-model'
import { exportModelWeights } from '../../model/model-weights'
import { validateModelManifest, validateRerankRules } from '../../shared/artifacts'
import type { ModelManifest } from '../../shared/protocol'
import { decodeWeights, encodeWeights, type WeightsFile } from '../../shared/weights-codec'
import { loadDataset } from '../data/load-dataset'
import { sharedDataDir } from '../data/paths'
import type { SessionDataset } from '../data/types'
import { setNodeBackend } from '../../model/node-backend'
import { exportArtifacts } from './export-artifacts'

const dataDir = path.join(sharedDataDir(), 'yoochoose-clicks-100k-sessionrec')
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pocketrec-export-'))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

let dataset: SessionDataset
let weights: WeightsFile
let config: GruModelConfig

beforeAll(async () => {
  await setNodeBackend('cpu')
  dataset = await loadDataset(dataDir)
  // Untrained is enough: the export only moves weights, it never runs the model.
  config = { ...DEFAULT_GRU_CONFIG, nItems: dataset.nItems, embedDim: 16, hiddenDim: 16 }
  const before = tf.memory().numTensors
  const model = createGruModel(config, 3)
  weights = await exportModelWeights(model)
  model.dispose()
  expect(tf.memory().numTensors).toBe(before)
})

function readJson(file: string): unknown {
  return JSON.parse(fs.readFileSync(file, 'utf8'))
}

describe('exportArtifacts', () => {
  it('writes content-addressed files whose sha256 and size the manifest states', async () => {
    const outDir = path.join(root, 'a')
    const result = await exportArtifacts({
      dataset,
      model: weights,
      outDir,
      version: 'v7',
      encoding: { dtype: 'float16' },
      createdAt: '2026-11-27T06:00:00.000Z',
    })
    const manifest = readJson(path.join(outDir, 'manifest.json'))
    expect(validateModelManifest(manifest)).toEqual({ ok: true, value: result.manifest })
    const { version, createdAt } = manifest as ModelManifest
    expect([version, createdAt]).toEqual(['v7', '2026-11-27T06:00:00.000Z'])
    const m = manifest as ModelManifest
    const refs = [
      ...(['model', 'catalogue', 'pools', 'rules'] as const).map(
        (kind) => [kind, m[kind]] as const,
      ),
      ...m.coVisitation!.shards.map((ref) => ['covisit', ref] as const),
    ]
    const EXT = { model: 'prw', catalogue: 'bin', pools: 'bin', rules: 'json', covisit: 'bin' }
    for (const [kind, ref] of refs) {
      expect(ref.url).toMatch(new RegExp(`^[0-9a-f]{16}\\.${kind}\\.${EXT[kind]}$`))
      const bytes = fs.readFileSync(path.join(outDir, ref.url))
      expect(bytes.byteLength).toBe(ref.bytes)
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(ref.sha256)
      expect(ref.sha256.startsWith(ref.url.slice(0, 16))).toBe(true)
    }
    expect(fs.readdirSync(outDir).filter((name) => name.endsWith('.tmp'))).toEqual([])
  })

  it('re-encodes the model in the chosen dtype, decoding to the same config and shapes', async () => {
    for (const dtype of ['float16', 'int8', 'float32'] as const) {
      const outDir = path.join(root, `dtype-${dtype}`)
      const { manifest } = await exportArtifacts({
        dataset,
        model: weights,
        outDir,
        encoding: { dtype },
      })
      const decoded = decodeWeights(fs.readFileSync(path.join(outDir, manifest.model.url)))
      expect(decoded.meta).toEqual(weights.meta)
      for (const [key, value] of Object.entries(config)) expect(decoded.meta[key]).toBe(value)
      expect(decoded.tensors.map((t) => [t.name, t.shape])).toEqual(
        weights.tensors.map((t) => [t.name, t.shape]),
      )
      const embedding = decoded.tensors[0]!.values
      const original = weights.tensors[0]!.values
      const tolerance = { float32: 0, float16: 1e-3, int8: 2e-2 }[dtype]
      let worst = 0
      for (let i = 0; i < original.length; i++) {
        worst = Math.max(worst, Math.abs(embedding[i]! - original[i]!))
      }
      expect(worst).toBeLessThanOrEqual(tolerance)
    }
  })

  it('ships the item table product-quantised and every other tensor int6 by default', async () => {
    const outDir = path.join(root, 'shipped')
    const { manifest } = await exportArtifacts({ dataset, model: weights, outDir })
    const bytes = fs.readFileSync(path.join(outDir, manifest.model.url))
    const headerLength = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true)
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + headerLength)))
    const dtypes = new Map(
      (header.tensors as { name: string; dtype: string }[]).map((t) => [t.name, t.dtype]),
    )
    expect(dtypes.get('item_embedding')).toBe('pq8')
    expect(
      new Set([...dtypes].filter(([name]) => name !== 'item_embedding').map(([, d]) => d)),
    ).toEqual(new Set(['int6']))
    // A byte per 4 values: a quarter of float32's table, an eighth of float16's.
    const table = weights.tensors.find((t) => t.name === 'item_embedding')!
    expect(manifest.model.bytes).toBeLessThan(
      encodeWeights(weights, { dtype: 'float16' }).length / 3,
    )
    const decoded = decodeWeights(bytes).tensors.find((t) => t.name === 'item_embedding')!
    expect(decoded.shape).toEqual(table.shape)
  })

  it('writes a catalogue, pools and rules that pass the device guards for this model', async () => {
    const outDir = path.join(root, 'guards')
    const { manifest } = await exportArtifacts({ dataset, model: weights, outDir })
    const bound = { nItems: dataset.nItems }
    const read = (url: string) => readJson(path.join(outDir, url))
    const bytes = (url: string) => new Uint8Array(fs.readFileSync(path.join(outDir, url)))
    expect(decodeCatalogue(bytes(manifest.catalogue.url), bound).ok).toBe(true)
    const pools = decodePools(bytes(manifest.pools.url), bound)
    // The catalogue's own entries of the items a first list shows (P2c), and no other.
    const catalogue = decodeCatalogue(bytes(manifest.catalogue.url), bound)
    if (!pools.ok || !pools.value.items || !catalogue.ok) throw new Error('expected both to decode')
    const { trending, popular, new: fresh } = pools.value.pools
    const listed = new Set([...trending, ...popular, ...fresh])
    expect(pools.value.items.items).toEqual(
      catalogue.value.items.filter((item) => listed.has(item.index)),
    )
    // Every item's co-visitation shard decodes, and the shards cover the item table.
    const shards = manifest.coVisitation!
    expect(shards.shards).toHaveLength(Math.ceil(dataset.nItems / shards.itemsPerShard))
    for (const ref of shards.shards) {
      expect(decodeCoVisitationShard(bytes(ref.url), bound).ok).toBe(true)
    }
    expect(read(manifest.rules.url)).toEqual({
      type: 'pocketrec-rules',
      excludePurchasedDays: 30,
      maxPerCategory: 4,
      maxPerBrand: 3,
      boosts: {},
      pins: {},
    })
    expect(validateRerankRules(read(manifest.rules.url)).ok).toBe(true)
  })

  it('gives the same file names on a second export: the artifacts are reproducible', async () => {
    const outDir = path.join(root, 'twice')
    const first = await exportArtifacts({
      dataset,
      model: weights,
      outDir,
      createdAt: '2026-01-01',
    })
    const second = await exportArtifacts({
      dataset,
      model: weights,
      outDir,
      createdAt: '2026-01-02',
    })
    expect(second.artifacts.map((a) => a.ref)).toEqual(first.artifacts.map((a) => a.ref))
    // Four artifacts and three co-visitation shards (2,933 items), each with its gzip and brotli
    // siblings, and the manifest.
    expect(second.manifest.coVisitation!.shards).toHaveLength(3)
    expect(fs.readdirSync(outDir).sort()).toHaveLength(7 * 3 + 1)
    for (const artifact of second.artifacts) {
      const gz = fs.readFileSync(`${artifact.file}.gz`)
      expect(gunzipSync(gz)).toEqual(fs.readFileSync(artifact.file))
      expect(gz.byteLength).toBe(artifact.gzipBytes)
      const br = fs.readFileSync(`${artifact.file}.br`)
      expect(brotliDecompressSync(br)).toEqual(fs.readFileSync(artifact.file))
      expect(br.byteLength).toBe(artifact.brotliBytes)
    }
    expect((readJson(second.manifestFile) as ModelManifest).createdAt).toBe('2026-01-02')
  })

  it('refuses a model over a different number of items', async () => {
    const other = { ...weights, meta: { ...weights.meta, nItems: 10 } }
    await expect(
      exportArtifacts({ dataset, model: other, outDir: path.join(root, 'bad') }),
    ).rejects.toThrow(
      /expected a model over 2933 items for yoochoose-clicks-100k-sessionrec, got meta.nItems 10/,
    )
    expect(fs.existsSync(path.join(root, 'bad'))).toBe(false)
  })
})

describe('npm run export:artifacts', () => {
  const run = promisify(execFile)
  const script = (args: string[]) =>
    run(process.execPath, ['scripts/run.mjs', 'train/cli/export-artifacts.ts', ...args], {
      timeout: 120_000,
    })

  it('prints raw, gzip and brotli sizes per artifact and writes the manifest', async () => {
    const modelFile = path.join(root, 'model.prw')
    fs.writeFileSync(modelFile, encodeWeights(weights))
    const outDir = path.join(root, 'cli')
    const { stdout } = await script([
      '--data',
      dataDir,
      '--model',
      modelFile,
      '--out',
      outDir,
      '--dtype',
      'int8',
      '--version',
      'v2',
    ])
    expect(stdout).toMatch(/^artifact\s+file\s+bytes\s+gzip\s+brotli$/m)
    for (const kind of ['model', 'catalogue', 'pools', 'rules']) {
      expect(stdout).toMatch(
        new RegExp(
          `^${kind}\\s+[0-9a-f]{16}\\.${kind}\\.\\w+\\s+[\\d,]+\\s+[\\d,]+\\s+[\\d,]+$`,
          'm',
        ),
      )
    }
    expect(stdout).toMatch(/co-visitation top 20 per item/)
    const manifest = readJson(path.join(outDir, 'manifest.json')) as ModelManifest
    expect(manifest.version).toBe('v2')
    const decoded = decodeWeights(fs.readFileSync(path.join(outDir, manifest.model.url)))
    expect(decoded.meta.nItems).toBe(dataset.nItems)
  })

  it('fails with one line naming a bad option', async () => {
    const failure = await script(['--data', dataDir, '--model', 'x.prw', '--dtype', 'bf16']).then(
      () => null,
      (error: { code: number; stderr: string }) => error,
    )
    expect(failure?.code).toBe(1)
    expect(failure?.stderr.trim()).toBe(
      'Error: --dtype: expected shipped, float16, int8, float32, got "bf16"',
    )
  })
})
