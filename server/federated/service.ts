// The aggregation server's runtime wiring: a store (SQLite by default), seeded from the trainer's
// export, settings sized from the model, the routes' dependencies, the job thread (server/jobs/)
// that publishes and scores versions, and the publisher loop that asks it to turn the buffer into
// versions. server/main.ts starts it; tests and `npm run sim` too.
import { splitWeights } from '../../shared/federation-layout'
import { decodeWeights } from '../../shared/weights-codec'
import type { FederationStore } from '../storage/store'
import {
  DEFAULT_SPARSE,
  defaultSettings,
  type ClientIdSettings,
  type RateLimits,
  type UpdateTraining,
} from './defaults'
import type { FedBuffSettings } from './fedbuff'
import type { CandidateDecision, EvaluationSettings } from '../evaluation/evaluate-versions'
import { createJobs } from '../jobs/jobs'
import type { Promotion, PublishAttempt } from './publisher'
import { seedFromExport } from './releases'
import type { FederationDeps } from './routes'
import { loadSecrets } from './secrets'
import { channelParams, defaultSecureChannel } from './secure-channel'
import { FIXED_POINT_RANGE } from '../../shared/sparse-update'

export interface FederationOptions {
  store: FederationStore
  /** The trainer's export (manifest.json and artifacts) that seeds an empty store. */
  artifactsDir: string
  /** The site this server aggregates for; default `demo-shop`, the demo storefront's. */
  site?: string
  /** The public key tags send (their `data-site`); default the site. */
  siteKey?: string
  /** The operator's admin token; absent: the one created on the store's first start (secrets.ts). */
  adminToken?: string
  /** Token signing secret (≥ 32 bytes); absent: the one created on the store's first start. */
  secret?: Uint8Array
  settings?: Partial<FedBuffSettings>
  training?: UpdateTraining
  rateLimits?: Partial<RateLimits>
  /** The work a device does for its client id, and how long ids live (P21). */
  clientIds?: Partial<ClientIdSettings>
  /** Origins whose pages may register devices (P21); absent: any (the demo). */
  allowedOrigins?: readonly string[]
  /** How a published version becomes current (publisher.ts); default `auto`. */
  promotion?: Promotion
  /** Cases scored per version and the promotion tolerance (P26). */
  evaluation?: Partial<EvaluationSettings>
  /** Lines for the operator (a damaged artifact refused); default stderr. */
  log?: (line: string) => void
  /**
   * The paired helper of the two-server channel (P29c): devices then send sparse updates as
   * secret shares to this server and to it. `url` is what devices are told (absolute, or a path
   * on this server's origin); `link` how this server reaches it (absolute; default `url`);
   * `token` the pairing secret. Absent: the server takes no updates (no federation block).
   */
  helper?: { url: string; link?: string; token: string }
}

export interface Federation {
  deps: FederationDeps
  /** The admin token when it was given or created by this start; null when an earlier start created it. */
  adminToken: string | null
  /** One publisher check now (the loop calls it every `intervalMs`). */
  publishNow(): Promise<PublishAttempt>
  /** `evaluated` promotion: score and promote or keep back the waiting candidates (P26). */
  reviewNow(): Promise<CandidateDecision[]>
  /** Starts checking every `intervalMs`; returns a stop function. */
  startPublisher(intervalMs: number, log?: (line: string) => void): () => void
  /** Ends the job thread (the store is the caller's to close). */
  close(): Promise<void>
}

export async function createFederation(options: FederationOptions): Promise<Federation> {
  const { store } = options
  await seedFromExport(store, options.artifactsDir)
  const current = (await store.current())!
  const model = await store.artifact(current.manifest.model.sha256)
  if (!model) throw new Error(`expected the model of v${current.version} in the store`)
  const { shape } = splitWeights(decodeWeights(model))
  const settings: FedBuffSettings = { ...defaultSettings(), ...options.settings }
  if (options.helper && !settings.secure) {
    const { url, link = url, token } = options.helper
    settings.secure = defaultSecureChannel(shape, {
      helperUrl: url,
      helperLink: link,
      helperToken: token,
    })
  }
  if (settings.secure) checkSecureChannel(settings)
  const secrets = await loadSecrets(store, options)
  const promotion = options.promotion ?? 'auto'
  const jobs = createJobs({
    store: store.config,
    settings,
    promotion,
    evaluation: options.evaluation,
  })
  const deps: FederationDeps = {
    store,
    settings,
    site: options.site ?? 'demo-shop',
    siteKey: options.siteKey ?? options.site ?? 'demo-shop',
    adminTokenSha256: secrets.adminTokenSha256,
    secret: secrets.tokenSecret,
    rateLimits: options.rateLimits,
    clientIds: options.clientIds,
    allowedOrigins: options.allowedOrigins,
    training: options.training ?? DEFAULT_SPARSE.training,
    log: options.log,
    jobs,
  }
  const publishNow = () => jobs.publish()
  const reviewNow = async () => (promotion === 'evaluated' ? jobs.review() : [])
  return {
    deps,
    adminToken: secrets.adminToken,
    publishNow,
    reviewNow,
    startPublisher(intervalMs, log = () => {}) {
      let running = false
      let stopped = false
      const timer = setInterval(() => {
        if (running) return
        running = true
        publishNow()
          .then(async (attempt) => {
            if (attempt.status === 'published') {
              const state = promotion === 'auto' ? 'current' : 'a candidate'
              log(`published v${attempt.record.version} (${state}) from ${attempt.updates} updates`)
            }
            for (const d of await reviewNow()) {
              log(
                d.decision === 'superseded'
                  ? `v${d.version} was built on an older version: not promoted`
                  : `v${d.version} ${d.decision}: validation Recall@20 ${d.recall20.toFixed(2)} ` +
                      `against ${d.current.toFixed(2)} for the current version`,
              )
            }
          })
          // Once stopped, a failure is the job thread being closed under the check.
          .catch((error: unknown) => {
            if (!stopped) log(`publishing failed, will retry: ${String(error)}`)
          })
          .finally(() => (running = false))
      }, intervalMs)
      return () => {
        stopped = true
        clearInterval(timer)
      }
    },
    close: () => jobs.close(),
  }
}

/**
 * P29: a release's sums must not wrap (K · C < 2^15), and the helper's link must be absolute;
 * the channel's public parameters are built now, not at the first upload.
 */
function checkSecureChannel(settings: FedBuffSettings): void {
  const secure = settings.secure!
  if (settings.bufferSize * secure.clipNorm >= FIXED_POINT_RANGE)
    throw new Error(
      `expected bufferSize × clipNorm under ${FIXED_POINT_RANGE} (int32 fixed-point sums), got ${settings.bufferSize} × ${secure.clipNorm}`,
    )
  if (!URL.canParse(secure.helperLink))
    throw new Error(`expected an absolute URL for the helper link, got ${secure.helperLink}`)
  channelParams(secure)
}
