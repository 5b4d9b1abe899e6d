// What the server hands every device (the global model and the artifacts of its version) and
// what this device derived from it (locally fine-tuned weights). All of it can be downloaded or
// retrained again, so a missing or corrupt record reads as "none" and the caller re-fetches.
import type {
  CandidatePools,
  DeviceCatalogue,
  ModelManifest,
  RerankRules,
} from '../../../shared/protocol'
import { removeCorrupt, runRead, runWrite, type StorageContext } from './database'
import type { StoredLocalWeights } from './schema'
import {
  isStoredCatalogue,
  isStoredDownload,
  isStoredLocalWeights,
  isStoredModel,
  isStoredPools,
  isStoredRules,
} from './stored-records'

/** One global model version with everything recommendation needs beside it. */
export interface Release {
  manifest: ModelManifest
  /** Weights codec bytes; decodeWeights checks them when the model is loaded. */
  modelBytes: Uint8Array
  catalogue: DeviceCatalogue
  pools: CandidatePools
  rules: RerankRules
}

export interface LocalWeights {
  baseVersion: string
  bytes: Uint8Array
  steps: number
}

export interface ArtifactStore {
  /** Replaces the release in one transaction: a reader sees the old version or the new, never a mix. */
  saveRelease(release: Release): Promise<void>
  /** The stored release, or null when any part of it is missing or corrupt. */
  loadRelease(): Promise<Release | null>
  saveLocalWeights(weights: LocalWeights): Promise<void>
  /** The fine-tuned weights; compare `baseVersion` with the release before using them. */
  loadLocalWeights(): Promise<StoredLocalWeights | null>
  deleteLocalWeights(): Promise<void>
  /** Keeps one verified artifact of a release being downloaded (P3 checked by the caller). */
  saveDownload(sha256: string, bytes: Uint8Array): Promise<void>
  /** A kept artifact's bytes, or null; the caller verifies them again before use. */
  loadDownload(sha256: string): Promise<Uint8Array | null>
}

const ARTIFACT_STORES = ['pools', 'catalogue', 'rules', 'downloads'] as const

export function createArtifactStore(context: StorageContext): ArtifactStore {
  return {
    saveRelease(release) {
      const { version } = release.manifest
      return runWrite(
        context,
        ['model', ...ARTIFACT_STORES],
        `saving model ${version}`,
        async (tx) => {
          // Every request at once (a store runs its requests in order, so each clear comes before
          // its put): the transaction waits on one batch, not eight round trips through this
          // worker's event loop, and a worker that stops meanwhile holds these stores for less.
          // One version at a time keeps the cache bounded; a rollback is just another release.
          await Promise.all([
            ...ARTIFACT_STORES.map((name) => tx.objectStore(name).clear()),
            tx.objectStore('pools').put({ version, data: release.pools }),
            tx.objectStore('catalogue').put({ version, data: release.catalogue }),
            tx.objectStore('rules').put({ version, data: release.rules }),
            tx.objectStore('model').put({
              key: 'global',
              version,
              manifest: release.manifest,
              bytes: release.modelBytes,
              savedAtMs: context.now(),
            }),
          ])
        },
      )
    },

    async loadRelease() {
      const found = await runRead(
        context,
        ['model', ...ARTIFACT_STORES],
        'reading the model',
        async (tx) => {
          const model: unknown = await tx.objectStore('model').get('global')
          if (!isStoredModel(model)) return { model }
          return {
            model,
            pools: (await tx.objectStore('pools').get(model.version)) as unknown,
            catalogue: (await tx.objectStore('catalogue').get(model.version)) as unknown,
            rules: (await tx.objectStore('rules').get(model.version)) as unknown,
          }
        },
      )
      const { model, pools, catalogue, rules } = found
      if (!isStoredModel(model)) {
        if (model !== undefined) await removeCorrupt(context, 'model', ['global'], isStoredModel)
        return null
      }
      if (isStoredPools(pools) && isStoredCatalogue(catalogue) && isStoredRules(rules)) {
        return {
          manifest: model.manifest,
          modelBytes: model.bytes,
          catalogue: catalogue.data,
          pools: pools.data,
          rules: rules.data,
        }
      }
      // Missing parts are simply re-downloaded; corrupt ones go now (removeCorrupt keeps valid ones).
      await removeCorrupt(context, 'pools', [model.version], isStoredPools)
      await removeCorrupt(context, 'catalogue', [model.version], isStoredCatalogue)
      await removeCorrupt(context, 'rules', [model.version], isStoredRules)
      return null
    },

    saveLocalWeights(weights) {
      return runWrite(context, ['local-weights'], 'saving local weights', async (tx) => {
        await tx
          .objectStore('local-weights')
          .put({ key: 'local', ...weights, savedAtMs: context.now() })
      })
    },

    async loadLocalWeights() {
      const raw = await runRead(context, ['local-weights'], 'reading local weights', (tx) =>
        tx.objectStore('local-weights').get('local'),
      )
      if (isStoredLocalWeights(raw)) return raw
      if (raw !== undefined)
        await removeCorrupt(context, 'local-weights', ['local'], isStoredLocalWeights)
      return null
    },

    saveDownload(sha256, bytes) {
      return runWrite(
        context,
        ['downloads'],
        `keeping artifact ${sha256.slice(0, 16)}`,
        async (tx) => {
          await tx.objectStore('downloads').put({ sha256, bytes, savedAtMs: context.now() })
        },
      )
    },

    async loadDownload(sha256) {
      const raw: unknown = await runRead(context, ['downloads'], 'reading a kept artifact', (tx) =>
        tx.objectStore('downloads').get(sha256),
      )
      if (isStoredDownload(raw) && raw.sha256 === sha256) return raw.bytes
      if (raw !== undefined) await removeCorrupt(context, 'downloads', [sha256], isStoredDownload)
      return null
    },

    deleteLocalWeights() {
      return runWrite(context, ['local-weights'], 'deleting local weights', async (tx) => {
        await tx.objectStore('local-weights').delete('local')
      })
    },
  }
}
