// What the operator calls (PROTOCOL.md P22, P24, P26), mounted under /v1/admin behind the admin
// check by index.ts:
//   GET  /v1/admin/versions    every version with parent, metrics, model hash, device scores
//   POST /v1/admin/metrics     {version, metrics}: record an evaluation (P24)
//   POST /v1/admin/promote     {version}: make an evaluated candidate current (P24)
//   POST /v1/admin/rollback    {version}: repoint "current" to an earlier version
//   PUT  /v1/admin/validation  held-out sessions: the set versions are scored on (P26)
//   POST /v1/admin/evaluate    {version}: score it on that set now, recorded (P26)
//   GET  /v1/admin/outcomes    each experiment's batches of outcome totals (P30c)
import { Hono, type Context } from 'hono'
import type { Jobs } from '../../jobs/jobs'
import type { FederationStore } from '../../storage/store'
import { NOT_EVALUATIONS, parseDocument } from '../documents'
import { requireJobs, shopUploadBody, smallBody } from './guards'
import { refuse } from '../../http-errors'
import { SCENARIOS } from '../../../shared/artifacts'
import { EXPERIMENT_GROUPS, type Experiment } from '../../../shared/experiments'
import { OUTCOME_METRICS } from '../../../shared/outcome-counts'
import { digestHex, experimentDigest } from '../../../shared/outcome-transport'

export interface AdminDeps {
  store: FederationStore
  /** The job thread (createFederation starts it): the validation set and scoring run there. */
  jobs?: Jobs
}

export function adminRoutes(deps: AdminDeps): Hono {
  const admin = new Hono()
  admin.get('/versions', async (c) => c.json(await listVersions(deps.store)))
  admin.get('/outcomes', async (c) => c.json(await listOutcomes(deps.store)))
  admin.post('/metrics', smallBody, async (c) => {
    const body = parseDocument<{ version: number; metrics: Record<string, number> }>(
      'metrics',
      await c.req.text(),
    )
    if (!body.ok)
      refuse('E_METRICS', `expected {version, metrics: {name: number}}: ${body.message}`)
    const { version, metrics } = body.value
    if (!(await deps.store.recordMetrics(version, metrics))) unknownVersion(version)
    return c.json({ version, metrics })
  })
  admin.post('/promote', smallBody, async (c) => {
    const version = await versionIn(c)
    const record = (await deps.store.version(version)) ?? unknownVersion(version)
    // P24: a version becomes current only with an evaluation on record (the server's own
    // counts and markers are not evaluations).
    const evaluations = Object.keys(record.metrics).filter((name) => !NOT_EVALUATIONS.has(name))
    if (evaluations.length === 0) {
      refuse(
        'E_NOT_EVALUATED',
        `v${record.version} has no evaluation: POST /v1/admin/metrics first`,
      )
    }
    await deps.store.setCurrent(record.version)
    return c.json({ current: record.version, evaluations })
  })
  admin.post('/rollback', smallBody, async (c) => {
    const version = await versionIn(c)
    const current = (await deps.store.current())?.version ?? 0
    // Back only: moving forward to a newer version is a promotion, which needs an evaluation.
    if (version >= current) {
      refuse('E_ROLLBACK', `expected a version before the current v${current}, got v${version}`)
    }
    if (!(await deps.store.setCurrent(version))) unknownVersion(version)
    return c.json({ current: version })
  })
  admin.put('/validation', shopUploadBody, async (c) => {
    const result = await requireJobs(deps).putValidation(await c.req.arrayBuffer())
    if (result.status === 'refused') refuse(result.code, result.message)
    const { status: _, ...stored } = result
    return c.json(stored, 201)
  })
  admin.post('/evaluate', smallBody, async (c) => {
    const version = await versionIn(c)
    // The job thread looks the version up itself.
    const result = await requireJobs(deps).evaluate(version)
    if (result.status === 'unknown-version') unknownVersion(version)
    if (result.status === 'no-validation') {
      refuse('E_NO_VALIDATION', 'no validation set: PUT /v1/admin/validation first')
    }
    return c.json({ version: result.version, metrics: result.metrics })
  })
  return admin
}

/** GET /v1/admin/versions: every version, and how it ranked devices' own next items (P27). */
async function listVersions(store: FederationStore) {
  const current = await store.current()
  const versions = await store.versions()
  const scores = new Map((await store.deviceScores()).map((s) => [s.version, s]))
  return {
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
  }
}

/** The number a `{version}` body names; refuses a malformed body (400 E_REQUEST). */
async function versionIn(c: Context): Promise<number> {
  const body = parseDocument<{ version: number }>('version', await c.req.text())
  if (!body.ok) refuse('E_REQUEST', `expected {"version": n}: ${body.message}`)
  return body.value.version
}

/** An admin route names a version the store does not hold: 404 (an upload's is a 409). */
function unknownVersion(version: number): never {
  refuse('E_VERSION_UNKNOWN', `no version ${version}`, { status: 404 })
}

/**
 * GET /v1/admin/outcomes: every experiment any version ran, by digest, with its batches' totals
 * (base64 of int32 little-endian cells, arms × scenarios × metrics × groups,
 * shared/outcome-report.ts), oldest first: each batch is one look for the sequential test.
 */
async function listOutcomes(store: FederationStore) {
  const [versions, current, batches] = await Promise.all([
    store.versions(),
    store.current(),
    store.outcomeBatches(),
  ])
  const known = new Map<string, { experiment: Experiment; running: boolean }>()
  const running = new Set(
    (current?.manifest.experiments ?? []).map((e) => digestHex(experimentDigest(e))),
  )
  for (const v of versions) {
    for (const experiment of v.manifest.experiments ?? []) {
      const digest = digestHex(experimentDigest(experiment))
      known.set(digest, { experiment, running: running.has(digest) })
    }
  }
  return {
    scenarios: SCENARIOS,
    metrics: OUTCOME_METRICS,
    groups: EXPERIMENT_GROUPS,
    experiments: [...known].map(([digest, { experiment, running }]) => ({
      digest,
      id: experiment.id,
      arms: experiment.arms.map((arm) => arm.name),
      running,
      batches: batches
        .filter((b) => b.experiment === digest)
        .map((b) => ({
          at: new Date(b.createdAtMs).toISOString(),
          reports: b.reports,
          sigma: b.sigma,
          totals: Buffer.from(b.totals).toString('base64'),
        })),
    })),
  }
}
