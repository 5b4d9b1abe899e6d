// Publishing a version (PROTOCOL.md P16–P19, P29c): when the buffer is due, sum it with the
// helper onto the current weights (secure-publisher.ts) and its per-item counts onto the server's
// popularity totals (popularity.ts, P28), write the new model (and pools) artifacts, and let the
// store record the version and consume the updates in one transaction. Any failure before that transaction leaves the old version current and the
// buffer whole; a conflict (another replica published) changes nothing either.
import { createHash } from 'node:crypto'
import { artifactName, validateCandidatePools } from '../../shared/artifacts'
import { joinWeights, splitWeights, type ModelShape } from '../../shared/federation-layout'
import type { ArtifactRef } from '../../shared/protocol'
import { decodeWeights, encodeWeights, type WeightsFile } from '../../shared/weights-codec'
import { SHIPPED_MODEL_ENCODING } from '../../shared/shipped-model'
import type { FederationStore, VersionRecord } from '../storage/store'
import { shouldPublish, type FedBuffSettings } from './fedbuff'
import {
  addRelease,
  decodePopularityState,
  encodePopularityState,
  poolsFromReports,
  type PopularityState,
} from './popularity'
import { readCatalogue, readPools, storeArtifact, storeShopArtifact } from './releases'
import { aggregateSecure } from './secure-publisher'

export interface PublisherDeps {
  store: FederationStore
  settings: FedBuffSettings
  now: () => number
  /** Not `auto`: a new version is a candidate until an evaluation promotes it (P24, P26). */
  promotion: Promotion
}

/**
 * `auto`: each version is current once published. `gated`: the operator promotes (P24).
 * `evaluated`: the server scores each candidate on the operator's validation set and promotes it
 * unless it trails "current" (P26).
 */
export type Promotion = 'auto' | 'gated' | 'evaluated'

export type PublishAttempt =
  | { status: 'published'; record: VersionRecord; updates: number }
  | { status: 'not-due'; buffered: number }
  | { status: 'conflict' }

/** Stores bytes under their sha256 and returns the manifest's reference to them. */
async function putArtifactRef(
  store: FederationStore,
  kind: 'model' | 'master' | 'moments' | 'popularity',
  bytes: Uint8Array,
): Promise<ArtifactRef> {
  const sha256 = createHash('sha256').update(bytes).digest('hex')
  // Devices download the model: it is stored with its compressed forms. The rest stays here.
  if (kind === 'model') await storeArtifact(store, sha256, bytes)
  else await store.putArtifact(sha256, bytes)
  return { url: artifactName(sha256, kind, 'prw'), sha256, bytes: bytes.byteLength }
}

/**
 * What one channel's aggregation of the buffer gives a release: the new weights, the buffered
 * updates it consumes, and this release's popularity counts per item (P28; none: pools stay).
 */
export interface Aggregated {
  dense: Float32Array
  table: Float32Array
  /** Keys of the buffered updates the version consumes, summed or left out. */
  consumed: string[]
  /** Updates the version's weights hold. */
  updates: number
  popularity?: { release: Float32Array; reports: number }
  /** Counts the version records beside `updates` (server marks, documents.ts). */
  metrics?: Record<string, number>
  /** Runs once the version is recorded (the two-server channel forgets its batch). */
  published?: () => Promise<void>
}

/** The current version's weights, with which the channels aggregate. */
export interface CurrentWeights {
  record: VersionRecord
  file: WeightsFile
  dense: Float32Array
  table: Float32Array
  shape: ModelShape
}

export async function publishIfDue(deps: PublisherDeps): Promise<PublishAttempt> {
  const { store, settings } = deps
  // Decided on counts: the loop asks every few seconds, and the bodies of a full buffer are
  // tens of megabytes.
  const stats = await store.bufferStats()
  const current = await store.current()
  // Without a helper the server takes no updates (P29c): nothing to publish.
  if (!current || !settings.secure || !shouldPublish(stats, deps.now(), settings)) {
    return { status: 'not-due', buffered: stats.updates }
  }
  // P18: aggregation goes on from the float32 weights the current model was rounded from (a
  // release's step is often below float16's spacing near the weight: 2⁻¹⁴ ≈ 6·10⁻⁵ around 0.1);
  // the trainer's first release has none, and a version rolled back to after its master was
  // pruned (pruneServerState) has none left: their float16 values are then the start.
  const master = current.manifest.master && (await store.artifact(current.manifest.master.sha256))
  const weightBytes = master || (await store.artifact(current.manifest.model.sha256))
  if (!weightBytes) throw new Error(`expected the weights of v${current.version} in the store`)
  const file = decodeWeights(weightBytes)
  const weights = { record: current, file, ...splitWeights(file) }
  const aggregated = await aggregateSecure(deps, weights, settings.secure)
  // The batch fell short of the helper's floor: wait for more updates.
  if (!aggregated) return { status: 'not-due', buffered: stats.updates }

  const nextFile = joinWeights(file, aggregated.dense, aggregated.table)
  const model = await putArtifactRef(
    store,
    'model',
    encodeWeights(nextFile, SHIPPED_MODEL_ENCODING),
  )
  // The server's own state beside the version (P18): referenced, never sent to devices.
  const nextMaster = await putArtifactRef(
    store,
    'master',
    encodeWeights(nextFile, { dtype: 'float32' }),
  )
  // Candidates may already sit above "current": a new version takes the next free number.
  const versions = await store.versions()
  const newest = versions.reduce((a, b) => (b.version > a.version ? b : a))
  // P28: what devices viewed does not depend on which model is current, so the totals go on
  // from the newest version's, candidates kept back (P24, P26) included: no report is lost.
  const totals = newest.manifest.popularity ?? current.manifest.popularity
  const popularity = aggregated.popularity
    ? await publishPopularity(store, current.manifest, totals, aggregated.popularity, deps)
    : { state: totals, pools: current.manifest.pools, reports: undefined }
  const version = newest.version + 1
  const createdAt = new Date(deps.now()).toISOString()
  const record: VersionRecord = {
    version,
    parent: current.version,
    createdAt,
    manifest: {
      ...current.manifest,
      version: `v${version}`,
      createdAt,
      model,
      master: nextMaster,
      // FedAdam's moments (issue 4's experiment) are not carried on.
      moments: undefined,
      popularity: popularity.state,
      pools: popularity.pools,
    },
    metrics: {
      updates: aggregated.updates,
      ...aggregated.metrics,
      ...(popularity.reports !== undefined && { popularityReports: popularity.reports }),
    },
  }
  const outcome = await store.publish({
    record,
    consumed: aggregated.consumed,
    // The channel's releases are not noised yet (issue 12): nothing for the accountant (P20).
    ledger: null,
    makeCurrent: deps.promotion === 'auto',
  })
  if (outcome === 'conflict') return { status: 'conflict' }
  await aggregated.published?.()
  await pruneServerState(store)
  return { status: 'published', record, updates: aggregated.updates }
}

/**
 * P28: adds this release's counts to `totals` and stores them; once `minReports` devices have
 * reported, rebuilds the popular, trending and category pools of `manifest` (the version the
 * release builds on) from them. Returns the references the new version carries.
 */
async function publishPopularity(
  store: FederationStore,
  manifest: PublishedManifest,
  totals: ArtifactRef | undefined,
  counts: { release: Float32Array; reports: number },
  deps: PublisherDeps,
): Promise<{ state: ArtifactRef; pools: ArtifactRef; reports: number }> {
  const options = deps.settings.popularity
  // Pruned with the master (pruneServerState): the totals then start again from zero.
  const previousBytes = totals && (await store.artifact(totals.sha256))
  const previous: PopularityState | undefined = previousBytes
    ? decodePopularityState(previousBytes)
    : undefined
  const state = addRelease(previous, counts.release, counts.reports, options.trendHalfLife)
  const nItems = counts.release.length
  const stateRef = await putArtifactRef(store, 'popularity', encodePopularityState(state))
  if (state.reports < options.minReports) {
    return { state: stateRef, pools: manifest.pools, reports: state.reports }
  }
  const [previousPools, catalogue] = await Promise.all([
    readPools(store, manifest.pools),
    readCatalogue(store, manifest.catalogue),
  ])
  const pools = poolsFromReports(state, previousPools, catalogue)
  // Our own output goes through the guard devices use.
  const checked = validateCandidatePools(pools, { nItems })
  if (!checked.ok) throw new Error(`pools from reports are invalid: ${checked.error}`)
  return {
    state: stateRef,
    pools: await storeShopArtifact(store, 'pools', pools, catalogue),
    reports: state.reports,
  }
}

type PublishedManifest = VersionRecord['manifest']

/** Versions, newest first, whose float32 master and FedAdam moments are kept (P18). */
export const KEEP_SERVER_STATE = 3

/**
 * P18: a version's float32 master and FedAdam moments (18 and 35 MB for DIGINETICA, beside an
 * 8.8 MB model) serve only to publish from it. They are kept for "current" and the newest
 * `KEEP_SERVER_STATE` versions (candidates among them) and dropped for the others; a version
 * rolled back to after that publishes from its float16 model, with fresh moments. Models are
 * never dropped: rollback and devices need them. Returns the hashes it deleted.
 */
export async function pruneServerState(store: FederationStore): Promise<string[]> {
  const [versions, current] = await Promise.all([store.versions(), store.current()])
  const newest = [...versions].sort((a, b) => b.version - a.version).slice(0, KEEP_SERVER_STATE)
  const kept = new Set([...newest.map((v) => v.version), current?.version])
  const keep = new Set<string>()
  const drop = new Set<string>()
  for (const { version, manifest } of versions) {
    keep.add(manifest.model.sha256)
    for (const ref of [manifest.master, manifest.moments, manifest.popularity]) {
      if (ref) (kept.has(version) ? keep : drop).add(ref.sha256)
    }
  }
  const doomed = [...drop].filter((sha256) => !keep.has(sha256))
  if (doomed.length > 0) await store.deleteArtifacts(doomed)
  return doomed
}
