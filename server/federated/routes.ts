// The federation's HTTP surface (PROTOCOL.md P13, P21–P23), mounted under /v1 by createApp:
//   POST /v1/client/…        a client id against a proof of work (clients.ts)
//   POST /v1/token           site key + issued client id → upload token, slice, version, layout
//   POST /v1/updates         Bearer upload token, the leader's upload (P29c) → 202 accepted /
//                            200 duplicate / 4xx (409 E_NO_HELPER, with /v1/token, unpaired)
//   GET  /v1/federation      public counters: version, buffered, accepted, refused by code, (ε, δ)
//   GET  /v1/admin/versions  admin token: every version with parent, metrics, model hash
//   POST /v1/admin/metrics   admin token, {version, metrics}: record an evaluation (P24)
//   POST /v1/admin/promote   admin token, {version}: make an evaluated candidate current (P24)
//   POST /v1/admin/rollback  admin token, {version}: repoint "current" to an earlier version
//   PUT  /v1/admin/catalogue admin token, catalogue JSON: publish it with rebuilt pools (P25)
//   PUT  /v1/admin/rules     admin token, rules JSON: publish them (P25)
//   PUT  /v1/admin/validation admin token, held-out sessions: the set versions are scored on (P26)
//   POST /v1/admin/evaluate  admin token, {version}: score it on that set now, recorded (P26)
// Every route that takes a body has a limit, checked before the body is read (an upload: its
// exact size; a shop document: 64 MiB; anything else: a few KiB), and every JSON body is
// checked against its schema (documents.ts) before anything uses it.
import { Hono, type Context } from 'hono'
import type { FederationStore } from '../storage/store'
import type { Jobs } from '../jobs/jobs'
import { DEFAULT_RATE_LIMITS, type RateLimits, type UpdateTraining } from './defaults'
import { clientRoutes, verifyClientId, type ClientIdDeps } from './clients'
import { checkVersion, type FedBuffSettings } from './fedbuff'
import { limitBody, NOT_EVALUATIONS, parseDocument } from './documents'
import { NO_HELPER, receiveUpdate, uploadByteLength, type IntakeCode } from './intake'
import { publicChannel } from './secure-channel'
import { DEFAULT_DELTA, epsilonAfter } from './privacy'
import { createRateLimiter } from './rate-limiter'
import { isAdminToken } from './secrets'
import { issueToken } from './tokens'

export interface FederationDeps extends ClientIdDeps {
  store: FederationStore
  settings: FedBuffSettings
  site: string
  /** The public key the script tag carries (P21). */
  siteKey: string
  /** SHA-256 of the admin token (secrets.ts): the token itself is never held. */
  adminTokenSha256: Uint8Array
  /** Signs upload tokens and derives slices; the same across restarts and replicas (secrets.ts). */
  secret: Uint8Array
  now?: () => number
  /** Tokens and uploads per client a minute, new ids per site a minute (P21); defaults.ts. */
  rateLimits?: Partial<RateLimits>
  /** How devices train for an update, announced in the manifest's federation block. */
  training: UpdateTraining
  /**
   * The job thread (createFederation starts it): shop changes, the validation set and scoring
   * (P25, P26) run there. Without it those four admin routes answer 500.
   */
  jobs?: Jobs
  /** Where the server reports what an operator must know (a damaged artifact); default stderr. */
  log?: (line: string) => void
}

/** A catalogue of 43,097 products is 7 MB of JSON; room for ten times that. */
const MAX_SHOP_UPLOAD_BYTES = 64 * 2 ** 20
/** Token requests and admin requests (`{version}`, metrics): a few hundred bytes. */
const MAX_SMALL_BODY_BYTES = 4096

export function federationRoutes(deps: FederationDeps): Hono {
  const now = deps.now ?? Date.now
  const app = new Hono()
  const refused = new Map<IntakeCode, number>()
  const limits = { ...DEFAULT_RATE_LIMITS, ...deps.rateLimits }
  const perClient = createRateLimiter({
    limit: limits.perClientPerMinute,
    maxKeys: limits.maxKeys,
    now,
  })
  // Per issued client only: ids cost work, and a site-wide quota here would let ids an attacker
  // holds lock every other device out (P21). New ids have the site-wide quota (clients.ts).
  const allow = (kind: 'token' | 'update', client: string) => perClient.take(`${kind}:${client}`)
  const currentVersion = async () => {
    const current = await deps.store.current()
    if (!current) throw new Error('expected a current version: seed the store first')
    return current.version
  }

  app.route('/client', clientRoutes(deps))

  app.post('/token', limitBody(MAX_SMALL_BODY_BYTES), async (c) => {
    const secure = deps.settings.secure
    if (!secure) return c.json({ error: 'E_NO_HELPER', message: NO_HELPER }, 409)
    const request = parseDocument<{ siteKey: string; client: string; version?: number }>(
      'token',
      await c.req.text(),
    )
    if (!request.ok) {
      const message = `expected {siteKey, client, version?}: ${request.message}`
      return c.json({ error: 'E_REQUEST', message }, 400)
    }
    const body = request.value
    if (body.siteKey !== deps.siteKey) {
      return c.json({ error: 'E_SITE_KEY', message: 'expected this site’s public key' }, 401)
    }
    // Checked before any rate-limiter entry is made: made-up ids cost the server nothing.
    const client = verifyClientId(body.client, deps, now())
    if (!client.ok) {
      const message = `${client.reason}; POST /v1/client issues one (P21)`
      return c.json({ error: 'E_CLIENT', message }, 400)
    }
    if (!allow('token', client.id)) {
      return c.json({ error: 'E_RATE_LIMITED', message: 'too many tokens; retry later' }, 429)
    }
    const current = await currentVersion()
    // A device retrying an update trained on an earlier version asks for that version's slice.
    const version = body.version ?? current
    const check = checkVersion(version, current, deps.settings.maxStaleness)
    if (check !== 'current' && check !== 'stale-ok') {
      const oldest = Math.max(1, current - deps.settings.maxStaleness)
      const message = `expected a version from v${oldest} to v${current}, got ${version}`
      return c.json({ error: 'E_VERSION_STALE', message }, 409)
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
      return c.json({ error: 'E_NO_HELPER', message: NO_HELPER }, 409)
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
      if (result.status >= 400) count(result.code)
      const key = result.status >= 400 ? 'error' : 'status'
      return c.json({ [key]: result.code, message: result.message }, result.status)
    },
  )

  app.get('/federation', async (c) => {
    const current = await deps.store.current()
    const ledger = await deps.store.ledger()
    return c.json({
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
    })
  })

  const admin = new Hono()
  // Authenticated before any body is read.
  admin.use(async (c, next) => {
    const given = c.req.header('authorization')?.replace(/^Bearer /, '')
    if (!isAdminToken(given, deps.adminTokenSha256)) {
      return c.json({ error: 'E_ADMIN', message: 'expected the admin token' }, 401)
    }
    await next()
  })
  const smallBody = limitBody(MAX_SMALL_BODY_BYTES)
  /** The number a `{version}` body names, or its 400 E_REQUEST when malformed. */
  const versionIn = async (c: Context): Promise<{ version: number } | { refusal: Response }> => {
    const body = parseDocument<{ version: number }>('version', await c.req.text())
    if (body.ok) return body.value
    const message = `expected {"version": n}: ${body.message}`
    return { refusal: c.json({ error: 'E_REQUEST', message }, 400) }
  }
  const unknownVersion = (c: Context, version: number) =>
    c.json({ error: 'E_VERSION_UNKNOWN', message: `no version ${version}` }, 404)
  admin.get('/versions', async (c) => {
    const current = await deps.store.current()
    const versions = await deps.store.versions()
    const scores = new Map((await deps.store.deviceScores()).map((s) => [s.version, s]))
    return c.json({
      current: current?.version ?? null,
      versions: versions.map((v) => {
        const s = scores.get(v.version)
        return {
          version: v.version,
          parent: v.parent,
          createdAt: v.createdAt,
          metrics: v.metrics,
          model: v.manifest.model.sha256,
          // P27: how this version ranked devices' own next items before they trained on them.
          devices: s && {
            updates: s.updates,
            cases: s.cases,
            recall20: s.cases ? (100 * s.hits20) / s.cases : null,
            mrr20: s.cases ? (100 * s.reciprocalRank20) / s.cases : null,
          },
        }
      }),
    })
  })
  admin.post('/metrics', smallBody, async (c) => {
    const body = parseDocument<{ version: number; metrics: Record<string, number> }>(
      'metrics',
      await c.req.text(),
    )
    if (!body.ok) {
      const message = `expected {version, metrics: {name: number}}: ${body.message}`
      return c.json({ error: 'E_METRICS', message }, 400)
    }
    const { version, metrics } = body.value
    if (!(await deps.store.recordMetrics(version, metrics))) return unknownVersion(c, version)
    return c.json({ version, metrics })
  })
  admin.post('/promote', smallBody, async (c) => {
    const named = await versionIn(c)
    if ('refusal' in named) return named.refusal
    const record = await deps.store.version(named.version)
    if (!record) return unknownVersion(c, named.version)
    // P24: a version becomes current only with an evaluation on record (the server's own
    // counts and markers are not evaluations).
    const evaluations = Object.keys(record.metrics).filter((name) => !NOT_EVALUATIONS.has(name))
    if (evaluations.length === 0) {
      const message = `v${record.version} has no evaluation: POST /v1/admin/metrics first`
      return c.json({ error: 'E_NOT_EVALUATED', message }, 409)
    }
    await deps.store.setCurrent(record.version)
    return c.json({ current: record.version, evaluations })
  })
  admin.post('/rollback', smallBody, async (c) => {
    const named = await versionIn(c)
    if ('refusal' in named) return named.refusal
    const { version } = named
    const current = (await deps.store.current())?.version ?? 0
    // Back only: moving forward to a newer version is a promotion, which needs an evaluation.
    if (version >= current) {
      const message = `expected a version before the current v${current}, got v${version}`
      return c.json({ error: 'E_ROLLBACK', message }, 409)
    }
    if (!(await deps.store.setCurrent(version))) return unknownVersion(c, version)
    return c.json({ current: version })
  })
  const uploadLimit = limitBody(MAX_SHOP_UPLOAD_BYTES)
  // Bodies are parsed in the job thread, not here: JSON.parse alone took 37 ms for DIGINETICA's
  // 7 MB catalogue, and uploads may be 64 MiB.
  const jobs = () => {
    if (!deps.jobs) throw new Error('expected the job thread in deps.jobs (createFederation)')
    return deps.jobs
  }
  admin.put('/validation', uploadLimit, async (c) => {
    const result = await jobs().putValidation(await c.req.arrayBuffer())
    if (result.status === 'refused')
      return c.json({ error: result.code, message: result.message }, 400)
    const { status: _, ...stored } = result
    return c.json(stored, 201)
  })
  admin.post('/evaluate', smallBody, async (c) => {
    const named = await versionIn(c)
    if ('refusal' in named) return named.refusal
    // The job thread looks the version up itself.
    const result = await jobs().evaluate(named.version)
    if (result.status === 'unknown-version') return unknownVersion(c, named.version)
    if (result.status === 'no-validation') {
      const message = 'no validation set: PUT /v1/admin/validation first'
      return c.json({ error: 'E_NO_VALIDATION', message }, 409)
    }
    return c.json({ version: result.version, metrics: result.metrics })
  })
  for (const kind of ['catalogue', 'rules'] as const) {
    admin.put(`/${kind}`, uploadLimit, async (c) => {
      const result = await jobs().putShopChange(kind, await c.req.arrayBuffer())
      if (result.status === 'refused')
        return c.json({ error: result.code, message: result.message }, 400)
      if (result.status === 'conflict') {
        const message = 'another version was published at the same moment; send it again'
        return c.json({ error: 'E_CONFLICT', message }, 409)
      }
      const { status: _, ...published } = result
      return c.json(published, 201)
    })
  }
  app.route('/admin', admin)

  function count(code: IntakeCode) {
    refused.set(code, (refused.get(code) ?? 0) + 1)
  }
  return app
}

/** The settings as GET /v1/federation shows them: the helper's pairing secret left out. */
function shownSettings(settings: FedBuffSettings) {
  const { secure, ...rest } = settings
  return secure ? { ...rest, secure: publicChannel(secure) } : rest
}
