// What devices call (PROTOCOL.md P13, P21–P23), mounted under /v1 by index.ts:
//   POST /v1/client/…    a client id against a proof of work (clients.ts)
//   POST /v1/token       site key + issued client id → upload token, slice, version, layout
//   POST /v1/updates     Bearer upload token, the leader's upload (P29c) → 202 accepted /
//                        200 duplicate / 4xx (409 E_NO_HELPER, with /v1/token, unpaired)
//   POST /v1/outcomes    Bearer upload token, the leader's body of an outcome report (P30c) →
//                        202 accepted / 200 duplicate / 4xx
//   GET  /v1/federation  public counters: version, buffered, accepted, refused by code, (ε, δ)
//   GET  /v1/exploration exploration's noised counts per bucket of item ids (P30f)
// A token request has a small body; an upload is limited to its exact size before it is read.
import { Hono, type Context } from 'hono'
import type { FederationStore } from '../../storage/store'
import type { RateLimits } from '../defaults'
import { clientRoutes, siteKeyMap, verifyClientId, type ClientIdDeps } from '../clients'
import { checkVersion, type FedBuffSettings } from '../fedbuff'
import { limitBody, parseDocument } from '../documents'
import { NO_HELPER, receiveUpdate, uploadByteLength, type IntakeCode } from '../intake'
import { publicChannel } from '../secure-channel'
import { DEFAULT_DELTA, epsilonAfter } from '../privacy'
import { createRateLimiter } from '../rate-limiter'
import { issueToken } from '../tokens'
import { MAX_ARMS } from '../../../shared/experiments'
import { reportCells } from '../../../shared/outcome-report'
import { outcomeBodyBytes } from '../../../shared/outcome-transport'
import { receiveOutcome } from '../outcome-intake'
import { EXPLORATION_TOTALS, sumExploration } from '../outcome-release'
import { smallBody } from './guards'
import { refuse } from '../../http-errors'

export interface DeviceDeps extends ClientIdDeps {
  store: FederationStore
  settings: FedBuffSettings
  site: string
  /** Signs upload tokens and derives slices; the same across restarts and replicas (secrets.ts). */
  secret: Uint8Array
  now: () => number
  /** Tokens and uploads per client a minute, new ids per site a minute (P21). */
  rateLimits: RateLimits
}

export function deviceRoutes(deps: DeviceDeps): Hono {
  const { now, rateLimits } = deps
  const keys = siteKeyMap(deps.sites)
  const app = new Hono()
  const refused = new Map<IntakeCode, number>()
  const count = (code: IntakeCode) => refused.set(code, (refused.get(code) ?? 0) + 1)
  const perClient = createRateLimiter({
    limit: rateLimits.perClientPerMinute,
    maxKeys: rateLimits.maxKeys,
    now,
  })
  // Per issued client only: ids cost work, and a site-wide quota here would let ids an attacker
  // holds lock every other device out (P21). New ids have the site-wide quota (clients.ts).
  const allow = (kind: 'token' | 'update' | 'outcome', client: string) =>
    perClient.take(`${kind}:${client}`)
  const currentVersion = async () => {
    const current = await deps.store.current()
    if (!current) throw new Error('expected a current version: seed the store first')
    return current.version
  }

  app.route('/client', clientRoutes(deps))

  app.post('/token', smallBody, async (c) => {
    const secure = deps.settings.secure
    if (!secure) refuse('E_NO_HELPER', NO_HELPER)
    const request = parseDocument<{ siteKey: string; client: string; version?: number }>(
      'token',
      await c.req.text(),
    )
    if (!request.ok) refuse('E_REQUEST', `expected {siteKey, client, version?}: ${request.message}`)
    const body = request.value
    if (!keys.has(body.siteKey)) refuse('E_SITE_KEY', 'expected one of this site’s public keys')
    // Checked before any rate-limiter entry is made: made-up ids cost the server nothing.
    const client = verifyClientId(body.client, deps, now())
    if (!client.ok) refuse('E_CLIENT', `${client.reason}; POST /v1/client issues one (P21)`)
    if (!allow('token', client.id)) refuse('E_RATE_LIMITED', 'too many tokens; retry later')
    const current = await currentVersion()
    // A device retrying an update trained on an earlier version asks for that version's slice.
    const version = body.version ?? current
    const check = checkVersion(version, current, deps.settings.maxStaleness)
    if (check !== 'current' && check !== 'stale-ok') {
      const oldest = Math.max(1, current - deps.settings.maxStaleness)
      refuse('E_VERSION_STALE', `expected a version from v${oldest} to v${current}, got ${version}`)
    }
    const issued = issueToken(deps.site, client.id, version, deps.secret, now())
    return c.json({
      ...issued,
      version,
      current,
      layout: secure.layout,
      clipNorm: secure.clipNorm,
    })
  })

  app.post(
    '/updates',
    // P13: a server paired with no helper takes no updates, whatever their size.
    async (c, next) => {
      if (deps.settings.secure) return next()
      count('E_NO_HELPER')
      refuse('E_NO_HELPER', NO_HELPER)
    },
    limitBody(uploadByteLength(deps.settings), () => count('E_TOO_LARGE')),
    async (c) => {
      const token = c.req.header('authorization')?.replace(/^Bearer /, '')
      const body = new Uint8Array(await c.req.arrayBuffer())
      const result = await receiveUpdate(
        {
          store: deps.store,
          settings: deps.settings,
          site: deps.site,
          secret: deps.secret,
          now,
          currentVersion,
          allow: (client) => allow('update', client),
        },
        { token, body },
      )
      if (result.code === 'accepted' || result.code === 'duplicate') {
        return c.json({ status: result.code, message: result.message }, result.status)
      }
      count(result.code)
      refuse(result.code, result.message)
    },
  )

  app.post(
    '/outcomes',
    // Reports are batched through the helper too: without one the server takes none.
    async (c, next) => {
      if (deps.settings.secure) return next()
      refuse('E_NO_HELPER', NO_HELPER)
    },
    limitBody(outcomeBodyBytes(reportCells(MAX_ARMS), 0)),
    outcomeHandler(deps, (client) => allow('outcome', client)),
  )

  app.get('/federation', async (c) => c.json(await publicCounters(deps, refused)))
  // Summed by the job after each batch of outcome reports: here only read. A device asks at
  // most hourly; five minutes of caching spare the store a crowd.
  app.get('/exploration', async (c) => {
    const totals = await deps.store.setting(EXPLORATION_TOTALS)
    c.header('Cache-Control', 'public, max-age=300')
    c.header('Content-Type', 'application/json')
    return c.body(totals ?? JSON.stringify(sumExploration([])))
  })
  return app
}

/** POST /v1/outcomes (P30c): the leader's body of a device's outcome report. */
function outcomeHandler(deps: DeviceDeps, allow: (client: string) => boolean) {
  const current = async () => {
    const record = await deps.store.current()
    if (!record) throw new Error('expected a current version: seed the store first')
    return record.manifest
  }
  const intake = { ...deps, current, allow }
  return async (c: Context) => {
    const token = c.req.header('authorization')?.replace(/^Bearer /, '')
    const body = new Uint8Array(await c.req.arrayBuffer())
    const result = await receiveOutcome(intake, { token, body })
    if (result.code === 'accepted' || result.code === 'duplicate')
      return c.json({ status: result.code, message: result.message }, result.status as 200 | 202)
    refuse(result.code, result.message)
  }
}

/** GET /v1/federation: what anyone may know of the federation, the pairing secret left out. */
async function publicCounters(
  deps: Pick<DeviceDeps, 'store' | 'settings'>,
  refused: ReadonlyMap<IntakeCode, number>,
) {
  const current = await deps.store.current()
  const ledger = await deps.store.ledger()
  return {
    version: current?.version ?? null,
    buffered: (await deps.store.bufferStats()).updates,
    accepted: await deps.store.acceptedCount(),
    refused: Object.fromEntries(refused),
    privacy: {
      releases: ledger.length,
      // The smallest σ of any noised release bounds them all (P20). The two-server channel's
      // releases are not noised yet (issue 12): none is in the ledger, and no ε is claimed.
      epsilon: ledger.length
        ? epsilonAfter(ledger.length, Math.min(...ledger.map((e) => e.noiseMultiplier)))
        : null,
      delta: DEFAULT_DELTA,
    },
    settings: shownSettings(deps.settings),
  }
}

/** The settings as GET /v1/federation shows them: the helper's pairing secret left out. */
function shownSettings(settings: FedBuffSettings) {
  const { secure, ...rest } = settings
  return secure ? { ...rest, secure: publicChannel(secure) } : rest
}
