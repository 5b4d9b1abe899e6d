// The helper's runtime wiring (PROTOCOL.md P29c): its store, its aggregation thread and its app.
// A helper is run by an operator independent of the shop's (the leader's); `npm start` runs one in
// the same process as a stand-in, with a store of its own, and `server/cli/helper.ts` alone.
import { createHash } from 'node:crypto'
import { Hono } from 'hono'
import { cors } from 'hono/cors'
import { fairTurns } from '../fair-turns'
import type { AggregateSettings } from './aggregate'
import { createAggregator, type Aggregator } from './aggregator'
import type { HelperStore, HelperStoreConfig } from './helper-store'
import { openHelperStore } from './open-helper-store'
import { helperRoutes } from './routes'
import { answerError, answerNotFound } from '../http-errors'

export interface HelperSettings extends AggregateSettings {
  /**
   * Bodies waiting for a batch at most: devices are not authenticated here, so this bounds the
   * disk anyone can fill; past it `POST /v1/shares` answers 503 and devices try again later.
   */
  maxWaiting: number
}

export const DEFAULT_HELPER_SETTINGS: HelperSettings = {
  // The leader's own floor (defaults.ts minBuffer): a helper of a shop that publishes at fewer
  // updates lowers it knowingly, by configuration, never at the leader's request.
  minBatch: 200,
  // P30c: with the leader's half, noise of σ = 1 clip per cell (npm run sim:ab: DIGINETICA's
  // holdout decided after 2,000 devices at σ = 1, BENCHMARKS.md).
  outcomeSigma: 1,
  waitingTtlMs: 7 * 24 * 3_600_000,
  // A leader names about K = 1,000 bodies a release; 50,000 bodies of ≤ 64 KiB are ≤ 3.2 GiB.
  maxWaiting: 50_000,
}

export interface HelperOptions {
  store: HelperStoreConfig
  /** The secret the paired leader sends with each batch (≥ 32 characters). */
  leaderToken: string
  settings?: Partial<HelperSettings>
  /** How long an aggregate request waits for its answer before 202 (ask again). */
  answerWaitMs?: number
  /**
   * Mounted in the leader's app (the `npm start` stand-in), whose own middleware already takes
   * requests in turns and answers CORS: the helper's app then adds neither.
   */
  mounted?: boolean
}

export interface Helper {
  app: Hono
  store: HelperStore
  aggregator: Aggregator
  close(): Promise<void>
}

export async function createHelper(options: HelperOptions): Promise<Helper> {
  if (options.leaderToken.length < 32)
    throw new Error('expected a leader token of at least 32 characters (the pairing secret)')
  const settings = { ...DEFAULT_HELPER_SETTINGS, ...options.settings }
  if (!(Number.isInteger(settings.minBatch) && settings.minBatch >= 1))
    throw new Error(`expected a minimum batch of at least 1, got ${settings.minBatch}`)
  if (!(Number.isFinite(settings.outcomeSigma) && settings.outcomeSigma >= 0))
    throw new Error(
      `expected an outcome noise multiplier of at least 0, got ${settings.outcomeSigma}`,
    )
  if (!(Number.isInteger(settings.maxWaiting) && settings.maxWaiting >= 1))
    throw new Error(`expected maxWaiting of at least 1, got ${settings.maxWaiting}`)
  const store = await openHelperStore(options.store)
  const aggregator = createAggregator({ store: options.store, settings })
  const app = new Hono()
  if (!options.mounted) {
    app.use('/*', fairTurns())
    // Devices post their bodies from the shop's pages (a worker on the shop's origin): any
    // origin, no credentials. The leader's requests come from a server, not a page.
    app.use(
      '/v1/shares',
      cors({ origin: '*', allowMethods: ['POST'], allowHeaders: ['content-type'] }),
    )
  }
  app.route(
    '/v1',
    helperRoutes({
      store,
      aggregator,
      leaderTokenSha256: createHash('sha256').update(options.leaderToken).digest(),
      answerWaitMs: options.answerWaitMs,
      maxWaiting: settings.maxWaiting,
    }),
  )
  app.notFound(answerNotFound)
  app.onError(answerError)
  return {
    app,
    store,
    aggregator,
    async close() {
      await aggregator.close()
      await store.close()
    },
  }
}
