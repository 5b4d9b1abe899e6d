// The aggregation server's runtime wiring: a store (SQLite by default), seeded from the trainer's
// export, settings sized from the model, the routes' dependencies, the job thread (server/jobs/)
// that publishes and scores versions, and the publisher loop that asks it to turn the buffer into
// versions, from a resolved config (server/config.ts). server/main.ts starts it; tests too.
import { splitWeights } from '../../shared/federation-layout'
import { decodeWeights } from '../../shared/weights-codec'
import type { FederationConfig } from '../config'
import type { FederationStore } from '../storage/store'
import type { FedBuffSettings } from './fedbuff'
import type { CandidateDecision } from '../evaluation/evaluate-versions'
import { createJobs } from '../jobs/jobs'
import type { OutcomeBatchResult } from './outcome-release'
import type { PublishAttempt } from './publisher'
import { seedFromExport } from './releases'
import type { FederationDeps } from './routes'
import { loadSecrets } from './secrets'
import { channelParams, defaultSecureChannel } from './secure-channel'
import { FIXED_POINT_RANGE } from '../../shared/sparse-update'

export interface Federation {
  deps: FederationDeps
  /** The admin token when it was given or created by this start; null when an earlier start created it. */
  adminToken: string | null
  /** One publisher check now (the loop calls it every `intervalMs`). */
  publishNow(): Promise<PublishAttempt>
  /** `evaluated` promotion: score and promote or keep back the waiting candidates (P26). */
  reviewNow(): Promise<CandidateDecision[]>
  /** P30c: one batch of outcome reports per experiment with enough waiting (the loop's too). */
  outcomesNow(): Promise<OutcomeBatchResult[]>
  /** Starts checking every `intervalMs`; returns a stop function. */
  startPublisher(intervalMs: number, log?: (line: string) => void): () => void
  /** Ends the job thread (the store is the caller's to close). */
  close(): Promise<void>
}

/** Seeds `store` when empty and starts the job thread; `config` from resolveFederationConfig. */
export async function createFederation(
  store: FederationStore,
  config: FederationConfig,
): Promise<Federation> {
  await seedFromExport(store, config.artifactsDir)
  const current = (await store.current())!
  const model = await store.artifact(current.manifest.model.sha256)
  if (!model) throw new Error(`expected the model of v${current.version} in the store`)
  const { shape } = splitWeights(decodeWeights(model))
  const { helper, promotion } = config
  // The channel's layout follows from the model, so it is made here, not in the config.
  const settings: FedBuffSettings =
    helper && !config.settings.secure
      ? {
          ...config.settings,
          secure: defaultSecureChannel(shape, {
            helperUrl: helper.url,
            helperLink: helper.link,
            helperToken: helper.token,
          }),
        }
      : config.settings
  if (settings.secure) checkSecureChannel(settings)
  const secrets = await loadSecrets(store, config)
  const jobs = createJobs({
    store: store.config,
    settings,
    promotion,
    evaluation: config.evaluation,
  })
  const deps: FederationDeps = {
    store,
    settings,
    site: config.site,
    sites: config.sites,
    adminTokenSha256: secrets.adminTokenSha256,
    secret: secrets.tokenSecret,
    now: Date.now,
    rateLimits: config.rateLimits,
    clientIds: config.clientIds,
    training: config.training,
    log: config.log,
    jobs,
  }
  const publishNow = () => jobs.publish()
  const reviewNow = async () => (promotion === 'evaluated' ? jobs.review() : [])
  const outcomesNow = () => jobs.outcomes()
  return {
    deps,
    adminToken: secrets.adminToken,
    publishNow,
    reviewNow,
    outcomesNow,
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
            for (const b of await outcomesNow()) {
              log(
                b.status === 'released'
                  ? `outcomes: a batch of ${b.reports} reports for experiment ${b.experiment.slice(0, 12)}…`
                  : `outcomes: the helper found too few reports for ${b.experiment.slice(0, 12)}… (${b.leftOut} left out)`,
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
