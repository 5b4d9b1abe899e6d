// The helper's HTTP surface (PROTOCOL.md P29c), mounted under /v1 by createHelperApp:
//   POST /v1/shares     a device's helper body (binary: an update's, or an outcome report's,
//                       P30c) → 202 accepted / 200 duplicate / 4xx / 503 E_HELPER_FULL
//                       (maxWaiting bodies wait: try later)
//   POST /v1/aggregate  the leader's token, a batch request (JSON) → 200 the helper's share of
//                       the sums (binary) / 202 still running, ask again / 4xx
//   POST /v1/aggregate-outcomes  the same for a batch of one experiment's outcome reports
//   GET  /v1/helper     public counters: shares waiting and consumed, batches
// Devices are not authenticated here: the helper sums only bodies the leader names, and the
// leader names only updates it accepted under its tokens (P13, P21). A body that no batch names
// is dropped after `waitingTtlMs`.
import { createHash } from 'node:crypto'
import { Hono } from 'hono'
import { isOutcomeBody, readOutcomeHeader } from '../../shared/outcome-transport'
import { readShareHeader } from '../../shared/secure-update'
import { limitBody } from '../federated/documents'
import { isAdminToken } from '../federated/secrets'
import type { AggregateResult } from './aggregate'
import type { Aggregator } from './aggregator'
import type { HelperStore } from './helper-store'
import { answerError, refuse } from '../http-errors'

/** The largest body a device may send either server (the 64 KB per device per server). */
export const MAX_SHARE_BYTES = 64 * 1024
/** A batch of 100,000 reports is about 11 MB of JSON. */
const MAX_AGGREGATE_BYTES = 16 * 2 ** 20
/** How long an aggregate request waits for its batch before answering 202 (ask again). */
const DEFAULT_ANSWER_WAIT_MS = 2_000

export interface HelperDeps {
  store: HelperStore
  aggregator: Aggregator
  /** SHA-256 of the token the paired leader sends (its pairing secret): never the token itself. */
  leaderTokenSha256: Uint8Array
  now?: () => number
  answerWaitMs?: number
  /** Bodies waiting at most (HelperSettings): past it a body is refused with 503. */
  maxWaiting: number
}

export function helperRoutes(deps: HelperDeps): Hono {
  const now = deps.now ?? Date.now
  const app = new Hono()
  // Refusals are answered here too, so that these routes answer alike mounted or on their own.
  app.onError(answerError)
  /** Batches being aggregated, by the request's SHA-256: a retry joins the run under way. */
  const running = new Map<string, Promise<AggregateResult>>()

  app.post('/shares', limitBody(MAX_SHARE_BYTES), async (c) => {
    const body = new Uint8Array(await c.req.arrayBuffer())
    let key: string
    try {
      const header = isOutcomeBody(body) ? readOutcomeHeader(body) : readShareHeader(body)
      if (header.party !== 1)
        throw new RangeError(`expected a body for the helper (party 1), got party ${header.party}`)
      key = Buffer.from(header.idempotencyKey).toString('hex')
    } catch (error) {
      if (!(error instanceof RangeError)) throw error
      refuse('E_SHARE_FORMAT', error.message)
    }
    const outcome = await deps.store.putShare(key, body, now(), deps.maxWaiting)
    if (outcome === 'full') {
      refuse('E_HELPER_FULL', `${deps.maxWaiting} bodies wait already: try later`, {
        headers: { 'retry-after': '3600' },
      })
    }
    return outcome === 'accepted'
      ? c.json({ status: 'accepted', message: 'stored until the leader names it in a batch' }, 202)
      : c.json({ status: 'duplicate', message: 'a body with this key was stored before' }, 200)
  })

  // The leader's batches: of updates (P29c) or of one experiment's outcome reports (P30c).
  for (const [route, aggregate] of [
    ['/aggregate', (body: ArrayBuffer) => deps.aggregator.aggregate(body)],
    ['/aggregate-outcomes', (body: ArrayBuffer) => deps.aggregator.aggregateOutcomes(body)],
  ] as const) {
    app.post(
      route,
      async (c, next) => {
        const given = c.req.header('authorization')?.replace(/^Bearer /, '')
        if (!isAdminToken(given, deps.leaderTokenSha256))
          refuse('E_LEADER', 'expected the paired leader’s token')
        await next()
      },
      limitBody(MAX_AGGREGATE_BYTES),
      async (c) => {
        const body = await c.req.arrayBuffer()
        const sha = createHash('sha256').update(route).update(new Uint8Array(body)).digest('hex')
        let job = running.get(sha)
        if (!job) {
          job = aggregate(body).finally(() => running.delete(sha))
          running.set(sha, job)
        }
        let timer: NodeJS.Timeout | undefined
        const waited = new Promise<'running'>((resolve) => {
          timer = setTimeout(() => resolve('running'), deps.answerWaitMs ?? DEFAULT_ANSWER_WAIT_MS)
        })
        const result = await Promise.race([job, waited]).finally(() => clearTimeout(timer))
        if (result === 'running')
          return c.json(
            { status: 'running', message: 'the batch is being aggregated: ask again' },
            202,
          )
        if (result.status === 'refused') {
          const { code, message, excluded } = result
          refuse(code, message, { body: excluded && { excluded } })
        }
        return c.body(result.answer as Uint8Array<ArrayBuffer>, 200, {
          'content-type': 'application/octet-stream',
        })
      },
    )
  }

  app.get('/helper', async (c) => c.json(await deps.store.counts()))
  return app
}
