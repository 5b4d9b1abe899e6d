// The wire types between the page (loader, demo) and the worker, and the artifacts the
// server (or, until it exists, static files from the trainer) hands to every device.
// Unions are discriminated by strings: reordering a numeric enum would silently break the wire.
import type { ErrorCode } from './errors'
import type { Experiment, ExperimentArm } from './experiments'
import type { SparseLayout } from './sparse-update'

// ---- Artifacts -------------------------------------------------------------------------------

/** An immutable, content-addressed file: `sha256` is of the bytes at `url`. */
export interface ArtifactRef {
  url: string
  sha256: string
  bytes: number
}

/** What a device fetches first; every artifact it names is immutable. */
export interface ModelManifest {
  type: 'pocketrec-manifest'
  /** The global model version, e.g. `v1`; devices compare it to what they hold. */
  version: string
  createdAt: string
  /** Weights of the session model (codec in shared/weights-codec.ts), quantised for download. */
  model: ArtifactRef
  /**
   * The float32 weights `model` was rounded from, which the aggregation server publishes from
   * (PROTOCOL.md P18); kept in its registry, not sent to devices.
   */
  master?: ArtifactRef
  /** With FedAdam on the server (P18), its moments after this version; not sent to devices. */
  moments?: ArtifactRef
  /** P28: the server's popularity totals from device reports after this version; not sent. */
  popularity?: ArtifactRef
  /** The catalogue's columns (shared/compact-artifacts.ts, `.bin`) or, in older releases, JSON. */
  catalogue: ArtifactRef
  /** The ranked pools without co-visitation (`.bin`), or the JSON form with it (older releases). */
  pools: ArtifactRef
  rules: ArtifactRef
  /**
   * Co-visitation in shards of `itemsPerShard` consecutive items, shard `s` holding items
   * `s * itemsPerShard` onwards: a device fetches a shard when it first needs one of its items.
   * Absent: the pools carry co-visitation (older releases).
   */
  coVisitation?: CoVisitationShards
  /**
   * On-device fine-tuning settings for this model, tuned per shop with `npm run sim:local -- --on
   * validation` (the rate does not transfer between catalogues). Absent: the worker's defaults.
   */
  localTraining?: { learningRate: number }
  /**
   * Present when the server aggregates updates (PROTOCOL.md P6, P29c): the sparse layout every
   * update has, the clip bound, the release's public negatives, where the helper is, and how a
   * device trains for an update. Tokens and leader uploads go to /v1/token and /v1/updates on
   * the manifest's origin, helper bodies to `<helper>/v1/shares`.
   */
  federation?: FederationManifest
  /**
   * The operator's A/B experiments (PROTOCOL.md P30): a device places itself in an arm of each
   * by a keyed hash of a random id of its own, keeps it, applies it, and names it in the
   * attribution id of every list. Absent: no experiment runs.
   */
  experiments?: ManifestExperiment[]
}

/** What an arm changes on the device. */
export interface ArmPolicy extends ExperimentArm {
  /**
   * `model`: lists as usual; `pools`: the lists a device serves before its model arrives
   * (co-visitation, category, trending, new, popular in the pools' order), never the model's.
   */
  lists: 'model' | 'pools'
  /**
   * P30e: this share of each list's slots (0.5 at most; 0.1 is 1 in 10) goes to the release's
   * new items, chosen by Thompson sampling (client/worker/recommend/explore.ts). Absent: none.
   */
  explore?: number
}

export interface ManifestExperiment extends Experiment {
  readonly arms: readonly ArmPolicy[]
}

export interface CoVisitationShards {
  itemsPerShard: number
  shards: ArtifactRef[]
}

export interface FederationManifest {
  /** Every update's layout (P29): rows, dense window, public negatives. */
  layout: SparseLayout
  /** P11's bound of the contribution. */
  clipNorm: number
  /** The release's public negatives (model rows), in the order an update carries them (P29). */
  negatives: number[]
  /** Where helper bodies go (POST <helper>/v1/shares): absolute, or relative to the manifest. */
  helper: string
  /** Local training of the global weights for an update (trainable: all, plain SGD, P7). */
  learningRate: number
  /** SGD rate of every weight but the item table; absent: `learningRate`. */
  denseLearningRate?: number
  epochs: number
}

/** One product of the shop's catalogue; `index` is its row in the model's item table. */
/**
 * GET /v1/exploration (P30f): exploration's counts summed over every batch of outcome reports,
 * per bucket of item ids (shared/outcome-report.ts exploreBucket), noised as the batches are.
 */
export interface ExplorationTotals {
  buckets: number
  /** Batches and reports in the sums. */
  batches: number
  reports: number
  /** Per bucket: impressions in exploration slots, and clicks on them. */
  shown: number[]
  clicked: number[]
  /** The standard deviation of the noise in each bucket's impressions and in its clicks. */
  noise: { shown: number; clicked: number }
}

export interface CatalogueItem {
  id: string
  index: number
  name: string
  category: string
  brand: string
  price: number
  inStock: boolean
  /** ISO date the product was added to the shop (for "new" pools and freshness). */
  addedAt: string
  /**
   * The product's picture the widgets show: an http(s) URL, or a path from the shop's root
   * (`/images/sku-1.jpg`), at most 2,048 characters (IMAGE_URL in artifacts.ts).
   */
  imageUrl?: string
}

export interface Catalogue {
  type: 'pocketrec-catalogue'
  items: CatalogueItem[]
}

/**
 * What devices download of a product (P2b): all but `addedAt`, which only the pools built on the
 * server and at export read. A Catalogue is a DeviceCatalogue.
 */
export type DeviceCatalogueItem = Omit<CatalogueItem, 'addedAt'>

export interface DeviceCatalogue {
  type: 'pocketrec-catalogue'
  items: DeviceCatalogueItem[]
}

/** Recall sources. Pools hold catalogue indices, best first. */
export type RecallSource =
  | 'trending'
  | 'popular'
  | 'new'
  | 'category'
  | 'co-visitation'
  | 'embedding'
  | 'history'
  /** Placed by a pin rule (RerankRules.pins) rather than found by any recall. */
  | 'pinned'
  /** An exploration slot of the device's arm (P30e): a new item drawn by Thompson sampling. */
  | 'explore'

export interface CandidatePools {
  type: 'pocketrec-pools'
  trending: number[]
  popular: number[]
  new: number[]
  byCategory: Record<string, number[]>
  /** For an item index (as a string key), the items most often viewed in the same sessions. */
  coVisitation: Record<string, number[]>
}

/** Business rules the server sets for re-ranking. */
export interface RerankRules {
  type: 'pocketrec-rules'
  /** Drop items bought within this many days. */
  excludePurchasedDays: number
  /**
   * At most this many items per category and per brand among a list's first items. The caps are
   * soft: when they would leave a list shorter than asked, the items they held back fill the rest
   * in rank order (a list asked for 6 returns 6 while the candidates last).
   */
  maxPerCategory: number
  maxPerBrand: number
  /** Multiplicative score boosts by product id. */
  boosts: Record<string, number>
  /** Product ids pinned at fixed 0-based positions, per scenario. */
  pins: Partial<Record<Scenario, Array<{ productId: string; position: number }>>>
  /**
   * The shop's objective (P30d): how much a product the shopper viewed, clicked, added to the
   * cart or bought counts as a target of on-device fine-tuning, relative to a view (a shop that
   * sells wants view < click < add < purchase, e.g. 1, 2, 4, 8). Absent: every one counts once.
   */
  eventWeights?: EventWeights
}

export interface EventWeights {
  view: number
  click: number
  add: number
  purchase: number
  /**
   * Added for each minute the shopper stayed on a product's page, where the shop reports it
   * (`dwell_seconds` of Product Viewed), up to ten minutes. Absent: dwell counts for nothing.
   */
  dwellPerMinute?: number
}

// ---- Worker API --------------------------------------------------------------------------------

export type Scenario =
  'for-you' | 'similar' | 'frequently-bought-together' | 'trending' | 'recently-viewed'

export interface RecommendRequest {
  scenario: Scenario
  /** The product on screen: required by `similar` and `frequently-bought-together`. */
  productId?: string
  /** List length, 1..50 (default 10). */
  limit?: number
  /**
   * The page view this list is for, any non-empty string shared by every list of one page: the
   * page's lists then never share an item (whichever is answered first keeps it; recently viewed
   * is never cut, as history, but the lists answered after it leave its items out). The tag sends
   * the page's URL; a caller without a page view gets no de-duplication.
   */
  pageView?: string
}

export interface RecommendedItem {
  productId: string
  name: string
  category: string
  price: number
  /** The catalogue's picture of it, when the shop gave one. */
  imageUrl?: string
  score: number
  /** Where the candidate came from, for the "why" shown in the demo and reports. */
  source: RecallSource
}

export interface RecommendResponse {
  /** Later click and purchase events carry this id so the list gets the credit. */
  attributionId: string
  scenario: Scenario
  items: RecommendedItem[]
  modelVersion: string
  backend: string
  latencyMs: number
  /** True when no session signal existed and trending items were served. */
  coldStart: boolean
}

export type BackendName = 'webgpu' | 'webgl' | 'wasm' | 'cpu'

export interface BackendProbe {
  backend: BackendName
  ok: boolean
  /** Why a backend was skipped or failed (e.g. "fallback adapter: no real GPU"). */
  reason?: string
  /** Median milliseconds of the micro-benchmark, when it ran. */
  medianMs?: number
}

export interface WorkerStatus {
  consent: boolean
  backend: BackendName | null
  backendReason: string
  probes: BackendProbe[]
  modelVersion: string | null
  /**
   * What lists come from now: `model` (personalised), `pools` (a first visit's model is still
   * downloading: co-visitation, category, trending, new and popular, in the pools' order) or
   * null (nothing has arrived yet).
   */
  lists: 'model' | 'pools' | null
  events: number
  sessions: number
  training: {
    state: 'idle' | 'training' | 'waiting-for-lock' | 'disabled'
    steps: number
    /** Recent losses, oldest first, for the loss curve. */
    losses: number[]
  }
  /** How embedding-neighbour recall runs now (null before the model is loaded). */
  recallIndex: RecallIndexStatus | null
  /**
   * What keeps the recommender from its best: the last start that failed (E_CSP_CONNECT,
   * E_NETWORK, E_RELEASE, E_NO_BACKEND; cleared once a start succeeds), else a standing limit
   * (E_WASM_BLOCKED, E_WORKER_BLOCKED), else null. The tag's status() and `pocketrec:error`
   * event carry it as it is.
   */
  error: StatusError | null
}

/** A failure as status() and the `pocketrec:error` event report it: branch on `code`. */
export interface StatusError {
  code: ErrorCode
  message: string
}

/**
 * Embedding-neighbour recall: `exact` scores every item (small catalogues); large ones build an
 * index of item clusters in the background (`pending` until the first recommendation, then
 * `building`) and use it once `ready`; `failed` stays exact.
 */
export interface RecallIndexStatus {
  state: 'exact' | 'pending' | 'building' | 'ready' | 'failed'
  clusters?: number
  buildMs?: number
  error?: string
}

export type TrackResult = { status: 'stored' } | { status: 'rejected'; error: string }

/** Error names that cross the worker boundary (comlink keeps name, message and stack). */
export type WorkerErrorName =
  'ConsentRequiredError' | 'InvalidRequestError' | 'ModelUnavailableError' | 'StorageError'
