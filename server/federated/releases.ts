// Releases served from the store (PROTOCOL.md P1–P2) once the server aggregates: every replica
// serves the same bytes, whichever published them. The store is seeded once from the trainer's
// static export (public/artifacts: manifest.json and its content-addressed files).
import { createHash } from 'node:crypto'
import { brotliCompressSync, brotliDecompress, constants, gunzip, gzipSync } from 'node:zlib'
import { promisify } from 'node:util'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { Hono } from 'hono'
import { answerRange, contentRange } from '../byte-range'
import { artifactName, validateModelManifest } from '../../shared/artifacts'
import {
  decodeCatalogue,
  decodePools,
  encodeCatalogue,
  encodePools,
} from '../../shared/compact-artifacts'
import type {
  ArtifactRef,
  CandidatePools,
  DeviceCatalogue,
  FederationManifest,
  ModelManifest,
  RerankRules,
} from '../../shared/protocol'
import type { FederationStore } from '../storage/store'
import type { UpdateTraining } from './defaults'
import type { FedBuffSettings } from './fedbuff'
import { negativesFor } from './secure-channel'
import { answerError, refuse } from '../http-errors'

/** Every artifact a device may download for this manifest: the four, then the shards (P2b). */
export function deviceArtifacts(manifest: ModelManifest): ArtifactRef[] {
  const { model, catalogue, pools, rules, coVisitation } = manifest
  return [model, catalogue, pools, rules, ...(coVisitation?.shards ?? [])]
}

/** Version number of a manifest's `v<n>` label. */
export function versionNumber(label: string): number {
  const match = /^v([1-9][0-9]{0,8})$/.exec(label)
  if (!match) throw new Error(`expected a version label like v1, got ${JSON.stringify(label)}`)
  return Number(match[1])
}

/**
 * Makes the exported release the store's first version when the store has none; a store that
 * has versions is left alone (a restart, or another replica seeded it). Hashes are checked.
 */
export async function seedFromExport(
  store: FederationStore,
  artifactsDir: string,
): Promise<boolean> {
  if (await store.current()) return false
  const manifest = JSON.parse(
    await readFile(path.join(artifactsDir, 'manifest.json'), 'utf8'),
  ) as unknown
  const checked = validateModelManifest(manifest)
  if (!checked.ok) throw new Error(checked.error)
  const m = checked.value
  for (const ref of deviceArtifacts(m)) {
    const bytes = new Uint8Array(await readFile(path.join(artifactsDir, ref.url)))
    const sha256 = createHash('sha256').update(bytes).digest('hex')
    if (sha256 !== ref.sha256)
      throw new Error(`expected ${ref.url} to hash to ${ref.sha256}, got ${sha256}`)
    await storeArtifact(store, sha256, bytes)
  }
  const version = versionNumber(m.version)
  await store.addVersion({
    version,
    parent: null,
    createdAt: m.createdAt,
    manifest: m,
    metrics: {},
  })
  await store.setCurrent(version)
  return true
}

/**
 * What devices read: the current manifest with the federation block of these settings (P29c),
 * none when no helper is paired (the server then takes no updates).
 */
export function servedManifest(
  manifest: ModelManifest,
  settings: FedBuffSettings,
  training: UpdateTraining,
): ModelManifest {
  // The server's own float32 weights, FedAdam moments of old versions (P18) and popularity
  // totals (P28) stay on the server.
  const { master: _master, moments: _moments, popularity: _popularity, ...served } = manifest
  const secure = settings.secure
  if (!secure) return served
  const negatives = negativesFor(manifest.model.sha256, secure.shape, secure.layout.negativeRows)
  const federation: FederationManifest = {
    layout: secure.layout,
    clipNorm: secure.clipNorm,
    negatives: Array.from(negatives),
    helper: secure.helperUrl,
    learningRate: training.learningRate,
    ...(training.denseLearningRate !== undefined && {
      denseLearningRate: training.denseLearningRate,
    }),
    epochs: training.epochs,
  }
  return { ...served, federation }
}

/**
 * GET /artifacts/manifest.json and /artifacts/<name> from the store. Every artifact is checked
 * against its SHA-256 before it is served, hashing (and unzipping) on libuv's thread pool, not
 * the event loop: a copy damaged in the store is never served under its immutable name. The
 * brotli copy goes to clients that accept it, else the gzip one (P4); a damaged compressed copy
 * is logged and the plain one served; a damaged plain one is logged and refused (500
 * E_ARTIFACT_CORRUPT, not cached).
 */
export function releaseRoutes(deps: {
  store: FederationStore
  settings: FedBuffSettings
  training: UpdateTraining
  log: (line: string) => void
}): Hono {
  const { log } = deps
  const app = new Hono()
  // Refusals are answered here too, so that these routes answer alike mounted or on their own.
  app.onError(answerError)
  app.get('/manifest.json', async (c) => {
    const current = await deps.store.current()
    if (!current) refuse('E_NO_RELEASE', 'no version is published yet')
    c.header('Cache-Control', 'no-cache')
    return c.json(servedManifest(current.manifest, deps.settings, deps.training))
  })
  app.get('/:name', async (c) => {
    const name = c.req.param('name')
    // Any version's artifact stays available: a device may still be syncing an older release.
    // Almost every request is for the current one, so its manifest is looked at first and the
    // whole registry only for the rest.
    const current = await deps.store.current()
    const inCurrent = current && deviceArtifacts(current.manifest).some((r) => r.url === name)
    const candidates = inCurrent ? [current] : (await deps.store.versions()).reverse()
    for (const version of candidates) {
      const ref = deviceArtifacts(version.manifest).find((r) => r.url === name)
      if (!ref) continue
      // A resumed download asks for the rest of the plain bytes (P2): never a compressed copy.
      const range = c.req.header('range')
      const encoding = range
        ? null
        : await compressedCopy(deps.store, ref.sha256, c.req.header('accept-encoding'))
      if (encoding && !encoding.intact) {
        log(
          `artifact ${name}: its ${encoding.name} copy in the store does not hash to ${ref.sha256}`,
        )
      }
      const compressed = encoding?.intact ? encoding : null
      const bytes = compressed?.bytes ?? (await deps.store.artifact(ref.sha256))
      if (!bytes) break
      if (!compressed && !(await holds(bytes, ref.sha256, null))) {
        log(`artifact ${name}: the store's copy does not hash to ${ref.sha256}; refused`)
        refuse('E_ARTIFACT_CORRUPT', `the server's copy of ${name} is damaged`)
      }
      c.header('Cache-Control', 'public, max-age=31536000, immutable')
      c.header('ETag', `"${ref.sha256}"`)
      c.header('Vary', 'Accept-Encoding')
      c.header(
        'Content-Type',
        name.endsWith('.json') ? 'application/json' : 'application/octet-stream',
      )
      if (compressed) c.header('Content-Encoding', compressed.name)
      c.header('Accept-Ranges', 'bytes')
      const part = answerRange(range, bytes.byteLength)
      if (part.kind === 'whole') return c.body(bytes as Uint8Array<ArrayBuffer>)
      c.header('Content-Range', contentRange(part, bytes.byteLength)!)
      if (part.kind === 'unsatisfiable') return c.body(null, 416)
      return c.body(bytes.subarray(part.start, part.end + 1) as Uint8Array<ArrayBuffer>, 206)
    }
    refuse('E_NOT_FOUND', `no artifact ${name}`)
  })
  return app
}

/**
 * Stores an artifact with its brotli and gzip forms (P4), each made once so that no request pays
 * for compressing it: JSON shrinks four- to sevenfold, and every device downloads every file.
 */
export async function storeArtifact(
  store: FederationStore,
  sha256: string,
  bytes: Uint8Array,
): Promise<void> {
  await store.putArtifact(sha256, bytes)
  await store.putArtifact(encodedKey(sha256, 'gzip'), gzipSync(bytes, { level: 9 }))
  const br = brotliCompressSync(bytes, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: bytes.byteLength > 4_000_000 ? 9 : 11,
      [constants.BROTLI_PARAM_SIZE_HINT]: bytes.byteLength,
    },
  })
  await store.putArtifact(encodedKey(sha256, 'br'), br)
}

type Encoding = 'br' | 'gzip'

/**
 * The best compressed copy the client accepts (brotli, then gzip), checked against the hash of
 * the decoded bytes; null when the client accepts neither or the store has no copy.
 */
async function compressedCopy(
  store: FederationStore,
  sha256: string,
  acceptEncoding: string | undefined,
): Promise<{ name: Encoding; bytes: Uint8Array; intact: boolean } | null> {
  for (const name of ['br', 'gzip'] as const) {
    if (!new RegExp(`\\b${name}\\b`).test(acceptEncoding ?? '')) continue
    const bytes = await store.artifact(encodedKey(sha256, name))
    if (bytes) return { name, bytes, intact: await holds(bytes, sha256, name) }
  }
  return null
}

/**
 * Stores a shop artifact and refers to it (P2, with its compressed forms): the catalogue and the
 * pools as compact columns (P2b), the rules as JSON. The pools carry `catalogue`'s entries of
 * their first-list items (layout 2), so a first visit's first list needs no catalogue: pass the
 * release's catalogue. Pools that still carry co-visitation (a release from before the shards)
 * stay JSON, the one form that holds it.
 */
export async function storeShopArtifact(
  store: FederationStore,
  ...[kind, value, catalogue]:
    | [kind: 'catalogue', value: DeviceCatalogue, catalogue?: undefined]
    | [kind: 'pools', value: CandidatePools, catalogue: DeviceCatalogue]
    | [kind: 'rules', value: RerankRules, catalogue?: undefined]
): Promise<ArtifactRef> {
  const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v))
  const [bytes, ext] =
    kind === 'catalogue'
      ? [encodeCatalogue(value), 'bin']
      : kind === 'pools' && Object.keys(value.coVisitation).length === 0
        ? [encodePools(value, catalogue!), 'bin']
        : [json(value), 'json']
  const sha256 = createHash('sha256').update(bytes).digest('hex')
  await storeArtifact(store, sha256, bytes)
  return { url: artifactName(sha256, kind, ext), sha256, bytes: bytes.byteLength }
}

/** A stored catalogue, decoded (the server's own output: validated when it was made). */
export async function readCatalogue(
  store: FederationStore,
  ref: ArtifactRef,
): Promise<DeviceCatalogue> {
  return decoded(decodeCatalogue(await stored(store, ref)), ref)
}

/** Stored pools, decoded; co-visitation is empty when it travels in shards. */
export async function readPools(store: FederationStore, ref: ArtifactRef): Promise<CandidatePools> {
  return decoded(decodePools(await stored(store, ref)), ref).pools
}

async function stored(store: FederationStore, ref: ArtifactRef): Promise<Uint8Array> {
  const bytes = await store.artifact(ref.sha256)
  if (!bytes) throw new Error(`expected ${ref.url} in the store`)
  return bytes
}

function decoded<T>(
  result: { ok: true; value: T } | { ok: false; error: string },
  ref: ArtifactRef,
): T {
  if (!result.ok) throw new Error(`${ref.url} in the store does not decode: ${result.error}`)
  return result.value
}

const gunzipAsync = promisify(gunzip)
const brotliDecompressAsync = promisify(brotliDecompress)

/** Whether `bytes` (encoded as `encoding`, or plain) hash to `sha256`; off the event loop. */
async function holds(
  bytes: Uint8Array,
  sha256: string,
  encoding: Encoding | null,
): Promise<boolean> {
  try {
    const plain =
      encoding === 'gzip'
        ? new Uint8Array(await gunzipAsync(bytes))
        : encoding === 'br'
          ? new Uint8Array(await brotliDecompressAsync(bytes))
          : bytes
    const digest = await globalThis.crypto.subtle.digest(
      'SHA-256',
      plain as Uint8Array<ArrayBuffer>,
    )
    return Buffer.from(digest).toString('hex') === sha256
  } catch {
    return false // not in that encoding at all
  }
}

/** The store key of an artifact's encoded form (P4: the hash stays that of the decoded bytes). */
function encodedKey(sha256: string, encoding: Encoding): string {
  return encoding === 'gzip' ? `${sha256}.gz` : `${sha256}.br`
}
