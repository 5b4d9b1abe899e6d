// Everything a device downloads, written as static files behind a manifest: the same format the
// aggregation server will serve, so the browser side can be built (and tested) before it exists.
// Artifacts are content-addressed (`<sha256 prefix>.<kind>.<ext>`) and immutable; manifest.json
// is the one mutable file and is written last, so a reader never sees it name a missing file.
import { createHash } from 'node:crypto'
import { mkdir, rename, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { brotliCompressSync, constants, gzipSync } from 'node:zlib'
import {
  artifactName,
  validateCandidatePools,
  validateCatalogue,
  validateModelManifest,
  validateRerankRules,
  type Validation,
} from '../../shared/artifacts'
import {
  encodeCatalogue,
  encodeCoVisitationShard,
  encodePools,
} from '../../shared/compact-artifacts'
import type { ArtifactRef, ModelManifest } from '../../shared/protocol'
import { SHIPPED_MODEL_ENCODING } from '../../shared/shipped-model'
import {
  encodeWeights,
  type EncodeWeightsOptions,
  type WeightsFile,
} from '../../shared/weights-codec'
import type { SessionDataset } from '../data/types'
import { buildCandidatePools, type PoolOptions } from './build-pools'
import { buildCoVisitation } from './co-visitation'
import { createDefaultRules } from './default-rules'
import { generateCatalogue, type CatalogueOptions } from './generate-catalogue'

export type ArtifactKind = 'model' | 'catalogue' | 'pools' | 'rules' | 'covisit'

/** Consecutive items per co-visitation shard: about 30 KB brotli at 20 neighbours each. */
export const CO_VISITATION_SHARD_ITEMS = 1024

export interface ExportOptions {
  dataset: SessionDataset
  /** Decoded weights (any dtype); re-encoded for download (default: the shipped encoding). */
  model: WeightsFile
  outDir: string
  version?: string
  encoding?: EncodeWeightsOptions
  /** Defaults to now; tests pass a fixed date. */
  createdAt?: string
  catalogue?: Omit<CatalogueOptions, 'graph'>
  pools?: Omit<PoolOptions, 'graph'>
  /** Learning rate for on-device fine-tuning, shipped in the manifest; absent: worker default. */
  localLearningRate?: number
}

export interface ExportedArtifact {
  kind: ArtifactKind
  /** Absolute path of the written file. */
  file: string
  ref: ArtifactRef
  gzipBytes: number
  brotliBytes: number
}

export interface ExportResult {
  manifest: ModelManifest
  manifestFile: string
  artifacts: ExportedArtifact[]
  coVisitationTopK: number
  timingsMs: { catalogue: number; pools: number; encode: number; write: number }
}

export async function exportArtifacts(options: ExportOptions): Promise<ExportResult> {
  const { dataset, model, outDir, version = 'v1', encoding = SHIPPED_MODEL_ENCODING } = options
  if (model.meta.nItems !== dataset.nItems) {
    throw new Error(
      `expected a model over ${dataset.nItems} items for ${dataset.name}, got meta.nItems ${JSON.stringify(model.meta.nItems)}`,
    )
  }
  let clock = performance.now()
  const lap = () => {
    const now = performance.now()
    const ms = now - clock
    clock = now
    return Math.round(ms)
  }
  const graph = buildCoVisitation(dataset.train, dataset.nItems)
  const catalogue = generateCatalogue(dataset, { ...options.catalogue, graph })
  const catalogueMs = lap()
  const built = buildCandidatePools(dataset, catalogue, { ...options.pools, graph })
  const rules = createDefaultRules()
  const poolsMs = lap()

  // Our own output goes through the guards devices use: a generator bug fails here, not there.
  const bound = { nItems: dataset.nItems }
  assertValid(validateCatalogue(catalogue, bound))
  assertValid(validateCandidatePools(built.pools, bound))
  assertValid(validateRerankRules(rules))
  const { coVisitation, ...ranked } = built.pools
  const contents: Array<[ArtifactKind, string, Uint8Array]> = [
    ['model', 'prw', encodeWeights(model, encoding)],
    // Columns, not objects per item: what travels is a fraction of the JSON (P2b).
    ['catalogue', 'bin', encodeCatalogue(catalogue)],
    ['pools', 'bin', encodePools({ ...ranked, coVisitation: {} }, catalogue)],
    ['rules', 'json', encodeJson(rules)],
    ...coVisitationShards(coVisitation, dataset.nItems).map(
      (bytes) => ['covisit', 'bin', bytes] as [ArtifactKind, string, Uint8Array],
    ),
  ]
  const encodeMs = lap()

  await mkdir(outDir, { recursive: true })
  const artifacts: ExportedArtifact[] = []
  for (const [kind, ext, bytes] of contents) {
    artifacts.push(await writeArtifact(outDir, kind, ext, bytes))
  }
  const refOf = (kind: ArtifactKind) => artifacts.find((a) => a.kind === kind)!.ref
  const manifest: ModelManifest = {
    type: 'pocketrec-manifest',
    version,
    createdAt: options.createdAt ?? new Date().toISOString(),
    model: refOf('model'),
    catalogue: refOf('catalogue'),
    pools: refOf('pools'),
    rules: refOf('rules'),
    coVisitation: {
      itemsPerShard: CO_VISITATION_SHARD_ITEMS,
      shards: artifacts.filter((a) => a.kind === 'covisit').map((a) => a.ref),
    },
    ...(options.localLearningRate === undefined
      ? {}
      : { localTraining: { learningRate: options.localLearningRate } }),
  }
  assertValid(validateModelManifest(manifest))
  const manifestFile = path.resolve(outDir, 'manifest.json')
  await writeAtomically(manifestFile, encodeJson(manifest, 2))
  return {
    manifest,
    manifestFile,
    artifacts,
    coVisitationTopK: built.coVisitationTopK,
    timingsMs: { catalogue: catalogueMs, pools: poolsMs, encode: encodeMs, write: lap() },
  }
}

/** Writes the artifact and its .gz and .br siblings, unless the same bytes are already there. */
async function writeArtifact(
  outDir: string,
  kind: ArtifactKind,
  ext: string,
  bytes: Uint8Array,
): Promise<ExportedArtifact> {
  const sha256 = createHash('sha256').update(bytes).digest('hex')
  const name = artifactName(sha256, kind, ext)
  const file = path.resolve(outDir, name)
  // Same name, same bytes: an artifact from an earlier export is already in place.
  const existing = await stat(file).catch(() => undefined)
  if (existing?.size !== bytes.byteLength) await writeAtomically(file, bytes)
  // Served instead of the file to clients that accept them (server/app.ts), and by any CDN
  // that honours precompressed siblings: brotli where the browser takes it, else gzip.
  const gzip = gzipSync(bytes, { level: 9 })
  const br = brotli(bytes)
  for (const [sibling, body] of [
    [`${file}.gz`, gzip],
    [`${file}.br`, br],
  ] as const) {
    if ((await stat(sibling).catch(() => undefined))?.size !== body.byteLength) {
      await writeAtomically(sibling, body)
    }
  }
  return {
    kind,
    file,
    ref: { url: name, sha256, bytes: bytes.byteLength },
    gzipBytes: gzip.byteLength,
    brotliBytes: br.byteLength,
  }
}

/** Co-visitation lists in shards of CO_VISITATION_SHARD_ITEMS consecutive items. */
function coVisitationShards(lists: Record<string, number[]>, nItems: number): Uint8Array[] {
  const shards: Uint8Array[] = []
  for (let first = 0; first < nItems; first += CO_VISITATION_SHARD_ITEMS) {
    const count = Math.min(CO_VISITATION_SHARD_ITEMS, nItems - first)
    const shard = Array.from({ length: count }, (_, i) => lists[first + i] ?? [])
    shards.push(encodeCoVisitationShard({ first, lists: shard }))
  }
  return shards
}

/** Best compression (the exporter runs once, devices download many times); large files at 9. */
function brotli(bytes: Uint8Array): Uint8Array {
  return brotliCompressSync(bytes, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: bytes.byteLength > 4_000_000 ? 9 : 11,
      [constants.BROTLI_PARAM_LGWIN]: 24,
      [constants.BROTLI_PARAM_SIZE_HINT]: bytes.byteLength,
    },
  })
}

function encodeJson(value: unknown, indent?: number): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value, null, indent))
}

/** Write beside the target, then rename: readers see the old file or the new one, never half. */
async function writeAtomically(file: string, bytes: Uint8Array): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`
  await writeFile(temporary, bytes)
  await rename(temporary, file)
}

function assertValid(result: Validation<unknown>): void {
  if (!result.ok) throw new Error(`refusing to export an invalid artifact: ${result.error}`)
}
