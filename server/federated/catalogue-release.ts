// The shop's own changes as releases (PROTOCOL.md P25, P30): an operator uploads a catalogue
// (prices, stock, categories, new products' dates), re-ranking rules or the A/B experiments
// devices apply through the admin routes. The server checks each whole (a catalogue against the
// model's item table too), rebuilds the pools that follow from a catalogue (new, per category),
// and publishes a version with the same model, so every device picks the change up at its next
// manifest check. Anything refused changes nothing.
import {
  validateCandidatePools,
  validateCatalogue,
  validateExperiments,
  validateRerankRules,
} from '../../shared/artifacts'
import { cataloguePools, popularityOrder } from '../../shared/catalogue-pools'
import type { CandidatePools, ModelManifest } from '../../shared/protocol'
import { decodeWeights } from '../../shared/weights-codec'
import { checkDocument } from './documents'
import type { FederationStore, VersionRecord } from '../storage/store'
import { readPools, storeShopArtifact } from './releases'

export const SHOP_CHANGE_KINDS = ['catalogue', 'rules', 'experiments'] as const
export type ShopChangeKind = (typeof SHOP_CHANGE_KINDS)[number]
export interface ShopChange {
  kind: ShopChangeKind
  body: unknown
}

const REFUSAL = {
  catalogue: 'E_CATALOGUE',
  rules: 'E_RULES',
  experiments: 'E_EXPERIMENTS',
} as const satisfies Record<ShopChangeKind, string>

export type ShopChangeResult =
  | { status: 'published'; record: VersionRecord }
  | { status: 'refused'; code: (typeof REFUSAL)[ShopChangeKind]; message: string }
  /** Another replica (or the publisher) took the version number first: nothing changed. */
  | { status: 'conflict' }

export async function publishShopChange(
  store: FederationStore,
  change: ShopChange,
  now: () => number,
): Promise<ShopChangeResult> {
  const current = await store.current()
  if (!current) throw new Error('expected a current version: seed the store first')
  const manifest: ModelManifest = { ...current.manifest }
  // The schema first (shape, sizes, no unknown keys), then what it cannot say (devices' guards).
  const code = REFUSAL[change.kind]
  const shaped = checkDocument(change.kind, change.body)
  if (!shaped.ok) return { status: 'refused', code, message: shaped.message }
  if (change.kind === 'experiments') {
    const { experiments } = change.body as { experiments: unknown }
    const checked = validateExperiments(experiments)
    if (!checked.ok) return { status: 'refused', code, message: checked.error }
    // Inline in the manifest (a few hundred bytes): every device reads it with the release.
    if (checked.value.length > 0) manifest.experiments = checked.value
    else delete manifest.experiments
  } else if (change.kind === 'rules') {
    const checked = validateRerankRules(change.body)
    if (!checked.ok) return { status: 'refused', code: 'E_RULES', message: checked.error }
    manifest.rules = await storeShopArtifact(store, 'rules', checked.value)
  } else {
    const nItems = await modelItems(store, current.manifest)
    const checked = validateCatalogue(change.body, { nItems })
    if (!checked.ok) return { status: 'refused', code: 'E_CATALOGUE', message: checked.error }
    const catalogue = checked.value
    // Unique indices below nItems, nItems of them: every row of the item table has its product.
    if (catalogue.items.length !== nItems) {
      const message =
        `expected ${nItems} items, one per row of the model's item table, got ` +
        `${catalogue.items.length}; a catalogue with more products needs a retrained model`
      return { status: 'refused', code: 'E_CATALOGUE', message }
    }
    const previous = await readPools(store, current.manifest.pools)
    const pools: CandidatePools = {
      ...previous,
      ...cataloguePools(catalogue, popularityOrder(previous)),
    }
    // Our own output goes through the guard devices use.
    const poolsChecked = validateCandidatePools(pools, { nItems })
    if (!poolsChecked.ok) throw new Error(`rebuilt pools are invalid: ${poolsChecked.error}`)
    // What devices download: compact columns (P2b). Co-visitation shards stay the release's.
    manifest.catalogue = await storeShopArtifact(store, 'catalogue', catalogue)
    manifest.pools = await storeShopArtifact(store, 'pools', pools, catalogue)
  }

  const version = Math.max(...(await store.versions()).map((v) => v.version)) + 1
  const createdAt = new Date(now()).toISOString()
  const record: VersionRecord = {
    version,
    parent: current.version,
    createdAt,
    manifest: { ...manifest, version: `v${version}`, createdAt },
    // The model is the parent's: so are its evaluations.
    metrics: { ...current.metrics, updates: 0 },
  }
  const outcome = await store.publish({ record, consumed: [], ledger: null, makeCurrent: true })
  return outcome === 'published' ? { status: 'published', record } : { status: 'conflict' }
}

async function modelItems(store: FederationStore, manifest: ModelManifest): Promise<number> {
  const bytes = await store.artifact(manifest.model.sha256)
  if (!bytes) throw new Error(`expected the model ${manifest.model.url} in the store`)
  const nItems = decodeWeights(bytes).meta.nItems
  if (typeof nItems !== 'number') throw new Error('expected meta.nItems in the model')
  return nItems
}
