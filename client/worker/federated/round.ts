// One federated round, run after each local fine-tuning run (training-schedule.ts) when the
// release takes part in federated learning: an update trained from the *global* weights on the
// same sessions is queued in the outbox (prepare-upload.ts), then the outbox is sent
// (uploader.ts, PROTOCOL.md P7–P12), and the experiments' outcome reports after it (built by
// experiment-reports.ts, sent by report-sender.ts, P30c). The client id's proof of work (P21) runs here too.
import type { Release, Storage } from '../storage'
import { obtainClientId, type Solution } from './client-id'
import type { prepareUpload } from './prepare-upload'
import { drainOutbox, requestToken, type UploaderDeps } from './uploader'
import { rollPeriod, type OutcomeState } from '../experiment-outcomes'
import { sendReports } from './report-sender'
import { helperRoute } from '../../../shared/helper-url'
import { outcomePeriod } from '../../../shared/outcome-counts'

/** What a round reads of the worker's state, at the moment it needs it. */
export interface FederatedRoundDeps {
  /** Defaults to the global fetch. */
  fetch?: typeof fetch
  /** The shop's site key from init(), or null before it. */
  siteKey(): string | null
  /** The storage while consent holds, else null: a withdrawn consent stops the queueing. */
  consented(): Storage | null
}

export interface RoundInput {
  /** Where the release came from; the federation routes are /v1/… on its origin. */
  manifestUrl: URL
  release: Release
  /** The storage the training run began with. */
  store: Storage
  /** The sessions the local run trained on (model rows), oldest first. */
  sessions: readonly Int32Array[]
  /** Trains and shares the update: the model part's (model-part.ts), loaded with the model. */
  prepare: typeof prepareUpload
  /** Makes the ended days' counters reports (P30c): the model part's too. */
  buildReports: (state: OutcomeState) => boolean
}

export interface FederatedRound {
  /** Queues this version's update (once per version, P15) and sends what the outbox holds. */
  run(input: RoundInput): Promise<void>
  /** Stops a proof of work in progress and drops a kept solution (consent withdrawn, device lost). */
  stop(): void
}

export function createFederatedRound(deps: FederatedRoundDeps): FederatedRound {
  /** Stops a client id's proof of work (P21) when consent is withdrawn. */
  let shareAbort: AbortController | null = null
  /** A solved challenge the server could not take yet (new ids rationed): sent again later. */
  const keptSolution: { solution?: Solution } = {}

  return {
    async run({ manifestUrl, release, store, sessions, prepare, buildReports }) {
      const federation = release.manifest.federation
      const siteKey = deps.siteKey()
      if (!federation || siteKey === null) return
      const http = deps.fetch ?? fetch.bind(globalThis)
      shareAbort = new AbortController()
      const ids = {
        fetch: http,
        manifestUrl,
        siteKey,
        store: store.meta,
        // The work runs in this worker's slices, like training: recommend calls go on meanwhile.
        work: { signal: shareAbort.signal },
        kept: keptSolution,
      }
      const uploader: UploaderDeps = {
        fetch: http,
        manifestUrl,
        siteKey,
        clientId: (renew) => obtainClientId(ids, renew),
        outbox: store.outbox,
      }
      const baseVersion = Number(release.manifest.version.replace(/^v/, ''))
      // The server takes one update per device per version (P15): a second one would be trained
      // for nothing. Later runs on this version only retry what the outbox still holds.
      const alreadySent = (await store.meta.loadLastUpdateVersion()) === release.manifest.version
      const token = alreadySent ? null : await requestToken(uploader, baseVersion)
      if (token?.ok) {
        const queued = await prepare({
          modelBytes: release.modelBytes,
          manifestUrl,
          sessions,
          federation,
          token: token.answer,
          baseVersion,
        })
        if (deps.consented() !== store) return
        // No update this time (nothing it could train): the outbox and the reports go on.
        if (queued) {
          await store.meta.saveLastUpdateVersion(release.manifest.version)
          await store.outbox.enqueue({ ...queued, baseVersion: release.manifest.version })
        }
      }
      // The token the update was trained for (its slice) is sent with it: one request less.
      await drainOutbox(uploader, token?.ok ? token.answer : undefined)
      // The experiments' outcome reports of ended days (P30c), through the same two servers.
      await store.meta.updateOutcomes((state) => {
        const rolled = rollPeriod(state, outcomePeriod(Date.now()))
        return buildReports(state) || rolled
      })
      if (deps.consented() !== store) return
      await sendReports({
        fetch: http,
        manifestUrl,
        helperShares: helperRoute(federation.helper, 'shares', manifestUrl),
        token: async () => {
          const answer = await requestToken(uploader)
          return answer.ok ? answer.answer.token : null
        },
        reports: async () => (await store.meta.updateOutcomes(() => false)).reports,
        forget: async (key) => {
          await store.meta.updateOutcomes((state) => {
            state.reports = state.reports.filter((r) => r.key !== key)
            return true
          })
        },
      })
    },

    stop() {
      shareAbort?.abort()
      delete keptSolution.solution
    },
  }
}
