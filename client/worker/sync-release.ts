// Model sync: the manifest names immutable, content-addressed artifacts; a device keeps the
// release it has when the version matches and otherwise downloads, verifies (sha256, guards,
// weights codec) and stores the new one in one transaction. Each verified artifact is also kept
// as it arrives, and an artifact's first bytes while it arrives, so a reload during the download
// fetches only what had not arrived (the rest of a file as a Range). IndexedDB is only a cache.
import {
  parseArtifact,
  validateCandidatePools,
  validateCatalogue,
  validateModelManifest,
  validateRerankRules,
} from '../../shared/artifacts'
import {
  decodeCatalogue,
  decodeCatalogueInSlices,
  decodePools,
  decodePoolsInSlices,
} from '../../shared/compact-artifacts'
import type {
  ArtifactRef,
  DeviceCatalogue,
  DeviceCatalogueItem,
  ModelManifest,
} from '../../shared/protocol'
import type { Release, Storage } from './storage'
import { catalogueLookupSteps, type CatalogueLookup } from './recommend/catalogue-lookup'
import { inSlices } from '../../shared/slices'
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

/**
 * Bytes between two keeps of a download in progress (a reload resumes from the last one): an
 * eighth of the file, at least 16 KB, so a file is written about eight times while it arrives.
 */
export function keepEveryBytes(fileBytes: number): number {
  return Math.max(16_384, Math.ceil(fileBytes / 8))
}

/** What a download resumes from, and where it keeps its progress (obtainArtifact). */
export interface Resume {
  /** The first bytes of the artifact, kept from an interrupted download: asked for as a Range. */
  prefix?: Uint8Array
  /** Keeps the bytes so far, every keepEveryBytes of them (best effort, awaited). */
  keep?: (prefix: Uint8Array) => Promise<void>
}

/**
 * Fetches an artifact and checks its length and SHA-256 against the manifest's reference. With
 * `resume.prefix`, asks for the rest only (`Range: bytes=<prefix length>-`, answered 206 with its
 * Content-Range, or 200 with the whole file by a server that ignores ranges).
 */
export async function fetchArtifact(
  ref: ArtifactRef,
  base: URL,
  fetcher: typeof fetch,
  resume: Resume = {},
): Promise<Uint8Array> {
  const url = new URL(ref.url, base)
  const from = resume.prefix && resume.prefix.byteLength < ref.bytes ? resume.prefix : null
  const response = await fetcher(
    url,
    from ? { ...LOW_PRIORITY, headers: { Range: `bytes=${from.byteLength}-` } } : LOW_PRIORITY,
  )
  let start = 0
  if (from && response.status === 206) {
    const expected = `bytes ${from.byteLength}-${ref.bytes - 1}/${ref.bytes}`
    const got = response.headers.get('content-range')
    if (got !== expected) {
      void response.body?.cancel()
      throw new ReleaseError(`expected Content-Range ${expected} for ${url.pathname}, got ${got}`)
    }
    start = from.byteLength
  } else if (response.status !== 200) {
    void response.body?.cancel()
    throw new ReleaseError(`expected 200 for ${url.pathname}, got ${response.status}`)
  }
  const bytes = new Uint8Array(ref.bytes)
  if (start > 0) bytes.set(from!)
  const end = await readInto(bytes, start, response, resume.keep)
  if (end !== ref.bytes) {
    throw new ReleaseError(`expected ${ref.bytes} bytes at ${url.pathname}, got ${end}`)
  }
  const digest = await sha256Hex(bytes)
  if (digest !== ref.sha256) {
    throw new ReleaseError(`expected sha256 ${ref.sha256} for ${url.pathname}, got ${digest}`)
  }
  return bytes
}

/**
 * The response's body into `bytes` from `start`; returns where it ended, which is past the
 * buffer (by one) when the body is longer than the manifest says: nothing more is read then.
 */
async function readInto(
  bytes: Uint8Array,
  start: number,
  response: Response,
  keep?: (prefix: Uint8Array) => Promise<void>,
): Promise<number> {
  let at = start
  let keptAt = start
  const every = keepEveryBytes(bytes.byteLength)
  const reader = response.body?.getReader()
  if (!reader) return at
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return at
    if (at + value.byteLength > bytes.byteLength) {
      void reader.cancel()
      return bytes.byteLength + 1
    }
    bytes.set(value, at)
    at += value.byteLength
    if (keep && at - keptAt >= every && at < bytes.byteLength) {
      keptAt = at
      await keep(bytes.slice(0, at))
    }
  }
}

/**
 * An artifact kept from an earlier download when it verifies; else fetched (the rest of it when
 * an interrupted download kept its first bytes), verified and kept. Keeping is best effort: a
 * full or failing store only costs a download next time. A resumed download that does not
 * verify (the kept bytes were damaged, or the server's ranges are wrong) starts over once.
 */
async function obtainArtifact(
  ref: ArtifactRef,
  base: URL,
  storage: Storage | null,
  fetcher: typeof fetch,
): Promise<Uint8Array> {
  const kept = await storage?.artifacts.loadDownload(ref.sha256).catch(() => null)
  if (kept && kept.byteLength === ref.bytes && (await sha256Hex(kept)) === ref.sha256) return kept
  const keep = storage
    ? async (prefix: Uint8Array) => {
        await storage.artifacts.saveDownload(ref.sha256, prefix).catch(() => undefined)
      }
    : undefined
  const prefix = kept && kept.byteLength < ref.bytes ? kept : undefined
  const bytes = await fetchArtifact(ref, base, fetcher, { prefix, keep }).catch((error) => {
    if (!prefix || !(error instanceof ReleaseError)) throw error
    return fetchArtifact(ref, base, fetcher, { keep })
  })
  await keep?.(bytes)
  return bytes
}

/** A decoder's answer, or the ReleaseError that names what was wrong. */
export function accept<T>(result: { ok: true; value: T } | { ok: false; error: string }): T {
  if (!result.ok) throw new ReleaseError(result.error)
  return result.value
}

/** A release's catalogue, pools and rules, decoded before its model has arrived. */
export type ShopArtifacts = Omit<Release, 'modelBytes'>

/**
 * A release's pools and rules, decoded before its catalogue has arrived: `items` holds the
 * catalogue entries of the items trending, popular and new list (P2b), or null where the pools
 * carry none (an older release), and then the first list waits for the catalogue.
 */
export interface FirstListArtifacts extends Omit<ShopArtifacts, 'catalogue'> {
  items: DeviceCatalogue | null
}

/** What a first visit can serve before its model arrives, as each part arrives. */
export interface EarlyArtifacts {
  /** The pools and rules: a first list for a shopper without history (pools-only.ts). */
  onFirstLists(first: FirstListArtifacts & { items: DeviceCatalogue }): void
  /** The catalogue too: every list the pools can make. */
  onShop(shop: IndexedShop): void
}

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
 * The pools and rules of `manifest` from their verified bytes (P2b pools, JSON rules), decoded
 * in slices (the page's pools-only mode runs this on the page's thread).
 */
export async function decodeFirstLists(
  manifest: ModelManifest,
  poolsBytes: Uint8Array,
  rulesBytes: Uint8Array,
): Promise<FirstListArtifacts> {
  const { pools, items } = accept(await decodePoolsInSlices(poolsBytes))
  const rules = accept(parseArtifact(new TextDecoder().decode(rulesBytes), validateRerankRules))
  return { manifest, pools, items, rules }
}

/** A release's shop artifacts with their catalogue's lookup (built in slices, withCatalogue). */
export interface IndexedShop extends ShopArtifacts {
  lookup: CatalogueLookup
}

/**
 * `first` with its catalogue, before the model (whose row count the catalogue is checked against
 * later). The pools' first-list items must be the catalogue's own entries: a first list shows
 * the same names and prices as every later one. Decoded and indexed in slices: the page's
 * pools-only mode runs this on the page's thread.
 */
export async function withCatalogue(
  first: FirstListArtifacts,
  bytes: Uint8Array,
): Promise<IndexedShop> {
  const catalogue = accept(await decodeCatalogueInSlices(bytes))
  // Without the model its row count is unknown: the catalogue's own (its indices are unique).
  let rows = 0
  for (const item of catalogue.items) rows = Math.max(rows, item.index + 1)
  const lookup = await inSlices(catalogueLookupSteps(catalogue.items, rows))
  for (const item of first.items?.items ?? []) {
    const entry = lookup.byIndex[item.index]
    if (!entry || !sameItem(item, entry)) {
      throw new ReleaseError(
        `expected the pools' first-list item ${item.index} ("${item.id}") to match the catalogue's entry, got ${entry ? `"${entry.id}" with other fields` : 'none'}`,
      )
    }
  }
  return { manifest: first.manifest, catalogue, pools: first.pools, rules: first.rules, lookup }
}

function sameItem(a: DeviceCatalogueItem, b: DeviceCatalogueItem): boolean {
  return (
    a.id === b.id &&
    a.name === b.name &&
    a.category === b.category &&
    a.brand === b.brand &&
    a.price === b.price &&
    a.inStock === b.inStock &&
    a.imageUrl === b.imageUrl
  )
}

/** The current release: the stored one if it is still current, else a verified download. */
export async function syncRelease(
  manifestUrl: URL,
  storage: Storage | null,
  fetcher: typeof fetch = fetch,
  early?: EarlyArtifacts,
): Promise<Release> {
  const manifest = await fetchManifest(manifestUrl, fetcher)
  const stored = await storage?.artifacts.loadRelease()
  if (stored && stored.manifest.version === manifest.version) return stored

  // Each artifact is kept as it arrives: after a reload mid-download, only the rest travels.
  // One failure does not cut the others short: what arrives is kept for the next try. Smallest
  // first, one after the other on a slow link: the pools and rules (a first list, `onFirstLists`),
  // the catalogue (every list the pools make, `onShop`), and the model, by far the largest, last.
  const obtain = (ref: ArtifactRef) => obtainArtifact(ref, manifestUrl, storage, fetcher)
  // Only a first visit: a device that holds an older release waits for the new one whole
  // (it is no worse off than before), rather than fall back from a model to the pools.
  const announce = stored ? undefined : early
  const [pools, rules] = await Promise.allSettled([manifest.pools, manifest.rules].map(obtain))
  let first: FirstListArtifacts | undefined
  if (announce && pools.status === 'fulfilled' && rules.status === 'fulfilled') {
    first = await decodeFirstLists(manifest, pools.value, rules.value)
    if (first.items) announce.onFirstLists({ ...first, items: first.items })
  }
  const [catalogue] = await Promise.allSettled([obtain(manifest.catalogue)])
  let shop: IndexedShop | undefined
  if (announce && first && catalogue.status === 'fulfilled') {
    shop = await withCatalogue(first, catalogue.value)
    announce.onShop(shop)
  }
  const settled = [...(await Promise.allSettled([obtain(manifest.model)])), catalogue, pools, rules]
  const failed = settled.find((result) => result.status === 'rejected')
  if (failed) throw failed.reason
  const [modelBytes, catalogueBytes, poolsBytes, rulesBytes] = settled.map(
    (result) => (result as PromiseFulfilledResult<Uint8Array>).value,
  )
  // The codec travels with the model, not with the first lists (worker.ts, model-part.ts).
  const { decodeWeights } = await import('../../shared/weights-codec')
  const weights = decodeWeights(modelBytes!) // throws WeightsFormatError on bad bytes
  const nItems = Number(weights.meta.nItems)
  const release: Release = {
    manifest,
    modelBytes: modelBytes!,
    // The compact columns (P2b), or JSON from an older release; what served the early lists is
    // checked against the model now and kept, so shards it fetched stay in place.
    catalogue: accept(
      shop
        ? validateCatalogue(shop.catalogue, { nItems, withoutDates: true })
        : decodeCatalogue(catalogueBytes!, { nItems }),
    ),
    pools: shop
      ? accept(validateCandidatePools(shop.pools, { nItems }))
      : accept(decodePools(poolsBytes!, { nItems })).pools,
    rules: accept(parseArtifact(new TextDecoder().decode(rulesBytes), validateRerankRules)),
  }
  await storage?.artifacts.saveRelease(release)
  return release
}
