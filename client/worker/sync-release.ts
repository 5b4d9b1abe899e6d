// Model sync: the manifest names immutable, content-addressed artifacts; a device keeps the
// release it has when the version matches and otherwise downloads, verifies (sha256, guards,
// weights codec) and stores the new one in one transaction. Each verified artifact is also kept
// as it arrives, so a reload during the download fetches only what had not arrived. IndexedDB
// is only a cache.
import {
  parseArtifact,
  validateCandidatePools,
  validateCatalogue,
  validateModelManifest,
  validateRerankRules,
} from '../../shared/artifacts'
import { decodeCatalogue, decodePools } from '../../shared/compact-artifacts'
import type { ArtifactRef, ModelManifest } from '../../shared/protocol'
import { decodeWeights } from '../../shared/weights-codec'
import type { Release, Storage } from './storage'
import { PocketrecError } from '../../shared/errors'

/** The page sees it as `ModelUnavailableError` (comlink keeps the name). */
export class ReleaseError extends PocketrecError<'E_RELEASE'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ModelUnavailableError', 'E_RELEASE', message, options)
  }
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>)
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('')
}

/**
 * The shop's own page comes first: where the browser supports fetch priority, the release is
 * fetched behind the page's images and scripts (elsewhere the option is ignored).
 */
const LOW_PRIORITY: RequestInit = { priority: 'low' }

/** Fetches an artifact and checks its length and SHA-256 against the manifest's reference. */
export async function fetchArtifact(
  ref: ArtifactRef,
  base: URL,
  fetcher: typeof fetch,
): Promise<Uint8Array> {
  const url = new URL(ref.url, base)
  const response = await fetcher(url, LOW_PRIORITY)
  if (!response.ok)
    throw new ReleaseError(`expected 200 for ${url.pathname}, got ${response.status}`)
  const bytes = new Uint8Array(await response.arrayBuffer())
  if (bytes.byteLength !== ref.bytes) {
    throw new ReleaseError(
      `expected ${ref.bytes} bytes at ${url.pathname}, got ${bytes.byteLength}`,
    )
  }
  const digest = await sha256Hex(bytes)
  if (digest !== ref.sha256) {
    throw new ReleaseError(`expected sha256 ${ref.sha256} for ${url.pathname}, got ${digest}`)
  }
  return bytes
}

/**
 * An artifact kept from an interrupted download when it still verifies, else fetched, verified
 * and kept. Keeping is best effort: a full or failing store only costs a download next time.
 */
async function obtainArtifact(
  ref: ArtifactRef,
  base: URL,
  storage: Storage | null,
  fetcher: typeof fetch,
): Promise<Uint8Array> {
  const kept = await storage?.artifacts.loadDownload(ref.sha256).catch(() => null)
  if (kept && kept.byteLength === ref.bytes && (await sha256Hex(kept)) === ref.sha256) return kept
  const bytes = await fetchArtifact(ref, base, fetcher)
  await storage?.artifacts.saveDownload(ref.sha256, bytes).catch(() => undefined)
  return bytes
}

/** A decoder's answer, or the ReleaseError that names what was wrong. */
export function accept<T>(result: { ok: true; value: T } | { ok: false; error: string }): T {
  if (!result.ok) throw new ReleaseError(result.error)
  return result.value
}

/** A release's catalogue, pools and rules, decoded before its model has arrived. */
export type ShopArtifacts = Omit<Release, 'modelBytes'>

/** The current manifest, checked (ReleaseError when it is missing or malformed). */
export async function fetchManifest(
  manifestUrl: URL,
  fetcher: typeof fetch,
): Promise<ModelManifest> {
  const response = await fetcher(manifestUrl, { ...LOW_PRIORITY, cache: 'no-cache' })
  if (!response.ok)
    throw new ReleaseError(`expected 200 for ${manifestUrl.pathname}, got ${response.status}`)
  return accept(parseArtifact(await response.text(), validateModelManifest))
}

/**
 * The catalogue, pools and rules of `manifest` from their verified bytes, before the model (whose
 * row count the catalogue is checked against later): the compact columns (P2b), or JSON.
 */
export function decodeShop(manifest: ModelManifest, bytes: Uint8Array[]): ShopArtifacts {
  const [catalogue, pools, rules] = bytes
  return {
    manifest,
    catalogue: accept(decodeCatalogue(catalogue!)),
    pools: accept(decodePools(pools!)),
    rules: accept(parseArtifact(new TextDecoder().decode(rules), validateRerankRules)),
  }
}

/** The current release: the stored one if it is still current, else a verified download. */
export async function syncRelease(
  manifestUrl: URL,
  storage: Storage | null,
  fetcher: typeof fetch = fetch,
  onShop?: (shop: ShopArtifacts) => void,
): Promise<Release> {
  const manifest = await fetchManifest(manifestUrl, fetcher)
  const stored = await storage?.artifacts.loadRelease()
  if (stored && stored.manifest.version === manifest.version) return stored

  // Each artifact is kept as it arrives: after a reload mid-download, only the rest travels.
  // One failure does not cut the others short: what arrives is kept for the next try. The
  // shop's artifacts come first and the model after them, so that first lists can be served
  // from the pools (`onShop`) while the model, by far the largest, is on its way.
  const obtain = (ref: ArtifactRef) => obtainArtifact(ref, manifestUrl, storage, fetcher)
  const shop = await Promise.allSettled(
    [manifest.catalogue, manifest.pools, manifest.rules].map(obtain),
  )
  let early: ShopArtifacts | undefined
  // Only a first visit: a device that holds an older release waits for the new one whole
  // (it is no worse off than before), rather than fall back from a model to the pools.
  if (onShop && !stored && shop.every((result) => result.status === 'fulfilled')) {
    early = decodeShop(
      manifest,
      shop.map((result) => (result as PromiseFulfilledResult<Uint8Array>).value),
    )
    onShop(early)
  }
  const settled = [...(await Promise.allSettled([obtain(manifest.model)])), ...shop]
  const failed = settled.find((result) => result.status === 'rejected')
  if (failed) throw failed.reason
  const [modelBytes, catalogueBytes, poolsBytes, rulesBytes] = settled.map(
    (result) => (result as PromiseFulfilledResult<Uint8Array>).value,
  )
  const weights = decodeWeights(modelBytes!) // throws WeightsFormatError on bad bytes
  const nItems = Number(weights.meta.nItems)
  const release: Release = {
    manifest,
    modelBytes: modelBytes!,
    // The compact columns (P2b), or JSON from an older release; what served the early lists is
    // checked against the model now and kept, so shards it fetched stay in place.
    catalogue: accept(
      early
        ? validateCatalogue(early.catalogue, { nItems, withoutDates: true })
        : decodeCatalogue(catalogueBytes!, { nItems }),
    ),
    pools: accept(
      early
        ? validateCandidatePools(early.pools, { nItems })
        : decodePools(poolsBytes!, { nItems }),
    ),
    rules: accept(parseArtifact(new TextDecoder().decode(rulesBytes), validateRerankRules)),
  }
  await storage?.artifacts.saveRelease(release)
  return release
}
