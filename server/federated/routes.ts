// The federation's HTTP surface (PROTOCOL.md P13, P21–P23), mounted under /v1 by createApp:
//   POST /v1/token           site key + client id → upload token, slice, version, layout
//   POST /v1/updates         Bearer upload token, binary body → 202 accepted / 200 duplicate / 4xx
//   GET  /v1/federation      public counters: version, buffered, accepted, refused by code, (ε, δ)
//   GET  /v1/admin/versions  admin token: every version with parent, metrics, model hash
//   POST /v1/admin/metrics   admin token, {version, metrics}: record an evaluation (P24)
//   POST /v1/admin/promote   admin token, {version}: make an evaluated candidate current (P24)
//   POST /v1/admin/rollback  admin token, {version}: repoint "current" to an earlier version
//   PUT  /v1/admin/catalogue admin token, catalogue JSON: publish it with rebuilt pools (P25)
//   PUT  /v1/admin/rules     admin token, rules JSON: publish them (P25)
//   PUT  /v1/admin/validation admin token, held-out sessions: the set versions are scored on (P26)
//   POST /v1/admin/evaluate  admin token, {version}: score it on that set now, recorded (P26)
// Bodies past the layout's size are cut off by the body limit before they are read.
import { Hono, type Context } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { timingSafeEqual } from 'node:crypto'
import { updateByteLength } from '../../shared/update-codec'
import type { FederationStore } from '../storage/store'
import type { Jobs } from '../jobs/jobs'
import { DEFAULT_RATE_LIMITS, type RateLimits, type UpdateTraining } from './defaults'
import { checkVersion, type FedBuffSettings } from './fedbuff'
import { receiveUpdate, type IntakeCode } from './intake'
import { DEFAULT_DELTA, epsilonAfter } from './privacy'
import { issueToken } from './tokens'

export interface FederationDeps {
  store: FederationStore
  settings: FedBuffSettings
  site: string
  /** The public key the script tag carries (P21). */
  siteKey: string
  adminToken: string
  secret: Uint8Array
  now?: () => number
  /** Uploads and tokens per client, and per site, per minute (P21); defaults.ts. */
  rateLimits?: Partial<RateLimits>
  /** How devices train for an update, announced in the manifest's federation block. */
  training: UpdateTraining
  /** The model's item count: the norm of a sketch update depends on it (P8b, P11). */
  nItems?: number
  /**
   * The job thread (createFederation starts it): shop changes, the validation set and scoring
   * (P25, P26) run there. Without it those four admin routes answer 500.
   */
  jobs?: Jobs
}

const CLIENT_ID = /^[A-Za-z0-9_-]{8,64}$/
/** A catalogue of 43,097 products is 7 MB of JSON; room for ten times that. */
const MAX_SHOP_UPLOAD_BYTES = 64 * 2 ** 20

export function federationRoutes(deps: FederationDeps): Hono {
  const now = deps.now ?? Date.now
  const app = new Hono()
  const refused = new Map<IntakeCode, number>()
  const limits = { ...DEFAULT_RATE_LIMITS, ...deps.rateLimits }
  const perClient = createRateLimiter(limits.perClientPerMinute, now)
  const perSite = createRateLimiter(limits.perSitePerMinute, now)
  // A client over its own limit is refused before it can spend the site's.
  const allow = (kind: 'token' | 'update', client: string) =>
    perClient(`${kind}:${client}`) && perSite(`${kind}:${deps.site}`)
  const currentVersion = async () => {
    const current = await deps.store.current()
    if (!current) throw new Error('expected a current version: seed the store first')
    return current.version
  }

  app.post('/token', async (c) => {
    const body = (await c.req.json().catch(() => null)) as {
      siteKey?: unknown
      client?: unknown
      version?: unknown
    } | null
    if (!body || body.siteKey !== deps.siteKey) {
      return c.json({ error: 'E_SITE_KEY', message: 'expected this site’s public key' }, 401)
    }
    if (typeof body.client !== 'string' || !CLIENT_ID.test(body.client)) {
      return c.json(
        { error: 'E_CLIENT', message: 'expected a client id of 8–64 [A-Za-z0-9_-]' },
        400,
      )
    }
    if (!allow('token', body.client)) {
      return c.json({ error: 'E_RATE_LIMITED', message: 'too many tokens; retry later' }, 429)
    }
    const current = await currentVersion()
    // A device retrying an update trained on an earlier version asks for that version's slice.
    const version = body.version ?? current
    const check = Number.isInteger(version)
      ? checkVersion(version as number, current, deps.settings.maxStaleness)
      : 'unknown'
    if (check !== 'current' && check !== 'stale-ok') {
      const oldest = Math.max(1, current - deps.settings.maxStaleness)
      const message = `expected a version from v${oldest} to v${current}, got ${String(version)}`
      return c.json({ error: 'E_VERSION_STALE', message }, 409)
    }
    const issued = issueToken(deps.site, body.client, version as number, deps.secret, now())
    return c.json({
      ...issued,
      version,
      current,
      layout: deps.settings.layout,
      clipNorm: deps.settings.clipNorm,
    })
  })

  app.post(
    '/updates',
    bodyLimit({
      maxSize: updateByteLength(deps.settings.layout),
      onError: (c) => {
        count('E_TOO_LARGE')
        return c.json({ error: 'E_TOO_LARGE', message: 'the body is larger than an update' }, 413)
      },
    }),
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
          nItems: deps.nItems,
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
    const sigma = ledger.length
      ? Math.min(...ledger.map((e) => e.noiseMultiplier))
      : deps.settings.noiseMultiplier
    return c.json({
      version: current?.version ?? null,
      buffered: (await deps.store.bufferStats()).updates,
      accepted: await deps.store.acceptedCount(),
      refused: Object.fromEntries(refused),
      privacy: {
        releases: ledger.length,
        // The smallest σ of any release bounds them all (P20).
        epsilon: epsilonAfter(ledger.length, sigma, DEFAULT_DELTA),
        delta: DEFAULT_DELTA,
      },
      settings: deps.settings,
    })
  })

  const admin = new Hono()
  admin.use(async (c, next) => {
    const given = Buffer.from(c.req.header('authorization')?.replace(/^Bearer /, '') ?? '')
    const expected = Buffer.from(deps.adminToken)
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      return c.json({ error: 'E_ADMIN', message: 'expected the admin token' }, 401)
    }
    await next()
  })
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
  admin.post('/metrics', async (c) => {
    const body = (await c.req.json().catch(() => null)) as {
      version?: unknown
      metrics?: unknown
    } | null
    const metrics = body?.metrics
    const valid =
      typeof metrics === 'object' &&
      metrics !== null &&
      Object.values(metrics).every((v) => typeof v === 'number' && Number.isFinite(v))
    if (!Number.isInteger(body?.version) || !valid) {
      return c.json(
        { error: 'E_METRICS', message: 'expected {version, metrics: {name: number}}' },
        400,
      )
    }
    if (
      !(await deps.store.recordMetrics(body!.version as number, metrics as Record<string, number>))
    ) {
      return c.json(
        { error: 'E_VERSION_UNKNOWN', message: `no version ${String(body!.version)}` },
        404,
      )
    }
    return c.json({ version: body!.version, metrics })
  })
  /** The version a `{version}` body names, or null when it names none the registry has. */
  const versionOf = async (c: Context) => {
    const body = (await c.req.json().catch(() => null)) as { version?: unknown } | null
    return Number.isInteger(body?.version) ? deps.store.version(body!.version as number) : null
  }
  const unknownVersion = (c: Context) =>
    c.json({ error: 'E_VERSION_UNKNOWN', message: 'no such version' }, 404)
  admin.post('/promote', async (c) => {
    const record = await versionOf(c)
    if (!record) return unknownVersion(c)
    // P24: a version becomes current only with an evaluation on record ("updates" is a count).
    const evaluations = Object.keys(record.metrics).filter((name) => name !== 'updates')
    if (evaluations.length === 0) {
      const message = `v${record.version} has no evaluation: POST /v1/admin/metrics first`
      return c.json({ error: 'E_NOT_EVALUATED', message }, 409)
    }
    await deps.store.setCurrent(record.version)
    return c.json({ current: record.version, evaluations })
  })
  admin.post('/rollback', async (c) => {
    const body = (await c.req.json().catch(() => null)) as { version?: unknown } | null
    const version = body?.version
    const current = (await deps.store.current())?.version ?? 0
    // Back only: moving forward to a newer version is a promotion, which needs an evaluation.
    if (!Number.isInteger(version) || (version as number) >= current) {
      const message = `expected a version before the current v${current}, got ${String(version)}`
      return c.json({ error: 'E_ROLLBACK', message }, 409)
    }
    if (!(await deps.store.setCurrent(version as number))) {
      return c.json({ error: 'E_VERSION_UNKNOWN', message: `no version ${String(version)}` }, 404)
    }
    return c.json({ current: version })
  })
  const uploadLimit = bodyLimit({
    maxSize: MAX_SHOP_UPLOAD_BYTES,
    onError: (c) => {
      const message = `expected at most ${MAX_SHOP_UPLOAD_BYTES} bytes of JSON`
      return c.json({ error: 'E_TOO_LARGE', message }, 413)
    },
  })
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
  admin.post('/evaluate', async (c) => {
    const record = await versionOf(c)
    if (!record) return unknownVersion(c)
    const result = await jobs().evaluate(record.version)
    if (result.status === 'unknown-version') return unknownVersion(c)
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

/** A fixed-window counter per key: at most `perMinute` calls each minute. */
export function createRateLimiter(perMinute: number, now: () => number): (key: string) => boolean {
  const windows = new Map<string, { start: number; count: number }>()
  return (key) => {
    const t = now()
    let w = windows.get(key)
    if (!w || t - w.start >= 60_000) {
      // Forget stale windows now and then, so the map does not grow with every client ever seen.
      if (windows.size > 100_000)
        for (const [k, v] of windows) if (t - v.start >= 60_000) windows.delete(k)
      w = { start: t, count: 0 }
      windows.set(key, w)
    }
    return ++w.count <= perMinute
  }
}
