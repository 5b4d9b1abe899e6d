import { mkdtempSync, rmSync } from 'node:fs'
import { catalogueFrom } from '../../test/fixtures/read-artifact'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createGruModel, DEFAULT_GRU_CONFIG, withBonuses } from '../../model/gru-model'
import { exportModelWeights } from '../../model/model-weights'
import type { DeviceCatalogue } from '../../shared/protocol'
import { decodePools } from '../../shared/compact-artifacts'
import { decodeWeights, encodeWeights } from '../../shared/weights-codec'
import { coVisitationLists } from '../../train/artifacts/co-visitation'
import { exportArtifacts } from '../../train/artifacts/export-artifacts'
import { countItems } from '../../train/data/examples'
import { loadDataset } from '../../train/data/load-dataset'
import { sharedDataDir } from '../../train/data/paths'
import type { SessionDataset } from '../../train/data/types'
import { evaluateScorer } from '../../model/eval/evaluate'
import { DEFAULT_FIT_OPTIONS, fitGruModel } from '../../train/fit'
import { createGruScorer } from '../../model/eval/gru-scorer'
import { setNodeBackend } from '../../model/node-backend'
import { federationRoutes } from '../federated/routes'
import { createFederation, type Federation } from '../federated/service'
import { resolveFederationConfig } from '../config'
import { openSqliteStore } from '../storage/sqlite-store'
import type { FederationStore, VersionRecord } from '../storage/store'
import { reviewCandidates } from './evaluate-versions'

// P26 on a model that has learned something: a tiny GRU trained for one epoch on the YooChoose
// sample, its release seeding a real store, and held-out sessions the operator uploads as
// product ids.
const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-evaluation-'))
let dataset: SessionDataset
let catalogue: DeviceCatalogue
let store: FederationStore
let federation: Federation
let admin: (route: string, method: string, body: unknown) => Promise<Response>
/** The release's co-visitation lists, as the export built them. */
let coVisitation: (item: number) => readonly number[]

/** The held-out sessions as the operator has them: product ids, not item rows. */
const asProductIds = (sessions: Int32Array[]) =>
  sessions.map((s) => Array.from(s, (i) => catalogue.items[i]!.id))

/** A copy of `record` whose model has its item table rows shuffled: the same numbers, no skill. */
async function brokenCandidate(record: VersionRecord, version: number): Promise<VersionRecord> {
  const file = decodeWeights((await store.artifact(record.manifest.model.sha256))!)
  const table = file.tensors.find((t) => t.name === 'item_embedding')!
  const [rows, dim] = table.shape as [number, number]
  const values = new Float32Array(table.values)
  for (let r = 0; r < rows; r++) {
    const from = (r * 7919 + 13) % rows
    values.set(table.values.subarray(from * dim, (from + 1) * dim), r * dim)
  }
  table.values = values
  const bytes = encodeWeights(file, { dtype: 'float16' })
  const sha256 = `${'f'.repeat(56)}${version.toString(16).padStart(8, '0')}`
  await store.putArtifact(sha256, bytes)
  return {
    version,
    parent: record.version,
    createdAt: record.createdAt,
    manifest: {
      ...record.manifest,
      version: `v${version}`,
      model: { ...record.manifest.model, sha256 },
    },
    metrics: {},
  }
}

/** Records `record` as a candidate: published, "current" left where it is (P24). */
async function publishCandidate(record: VersionRecord): Promise<void> {
  await store.publish({ record, consumed: [], ledger: null, makeCurrent: false })
}

describe('scoring versions on the operator’s validation set (P26)', () => {
  beforeAll(async () => {
    // WASM: the epoch takes a few seconds there, several times longer on the cpu backend.
    await setNodeBackend('wasm')
    dataset = await loadDataset(path.join(sharedDataDir(), 'yoochoose-clicks-100k-sessionrec'))
    const model = createGruModel(
      { ...DEFAULT_GRU_CONFIG, nItems: dataset.nItems, embedDim: 16, hiddenDim: 16 },
      1,
    )
    await fitGruModel(model, dataset.train, { ...DEFAULT_FIT_OPTIONS, epochs: 1, negatives: 256 })
    const artifacts = path.join(dir, 'artifacts')
    // Both scoring bonuses on, as a trained release has them: devices rank with them.
    const scored = withBonuses(model, { repeatBonus: 1, coVisitBonus: 2 })
    const { manifest, coVisitationTopK } = await exportArtifacts({
      dataset,
      model: await exportModelWeights(scored),
      outDir: artifacts,
      createdAt: '2026-11-27T00:00:00.000Z',
    })
    model.dispose()
    coVisitation = coVisitationLists(dataset.train, dataset.nItems, coVisitationTopK)
    const { readFile } = await import('node:fs/promises')
    catalogue = catalogueFrom(await readFile(path.join(artifacts, manifest.catalogue.url)))
    store = openSqliteStore(path.join(dir, 'server.db'))
    federation = await createFederation(
      store,
      resolveFederationConfig({
        artifactsDir: artifacts,
        adminToken: 'admin-token-evaluation',
        promotion: 'evaluated',
        evaluation: { maxCases: 2_000 },
      }),
    )
    const app = federationRoutes(federation.deps)
    admin = (route, method, body) =>
      Promise.resolve(
        app.request(`/admin/${route}`, {
          method,
          headers: { authorization: 'Bearer admin-token-evaluation' },
          body: typeof body === 'string' ? body : JSON.stringify(body),
        }),
      )
  }, 120_000)

  afterAll(async () => {
    await federation?.close()
    await store?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('refuses a validation set it cannot use and keeps none', async () => {
    const refused = [
      '{"type": "pocketrec-validation", "sessions": [',
      { type: 'other', sessions: [['a', 'b']] },
      { type: 'pocketrec-validation', sessions: [] },
      { type: 'pocketrec-validation', sessions: [[1, 2]] },
      { type: 'pocketrec-validation', sessions: ['ab'] },
      // Products the catalogue does not have: no case to score.
      { type: 'pocketrec-validation', sessions: [['no-such-1', 'no-such-2']] },
    ]
    for (const body of refused) {
      const response = await admin('validation', 'PUT', body)
      expect([response.status, ((await response.json()) as { error: string }).error]).toEqual([
        400,
        'E_VALIDATION',
      ])
    }
    const evaluate = await admin('evaluate', 'POST', { version: 1 })
    expect(evaluate.status).toBe(409)
    expect(await federation.reviewNow()).toEqual([])
  })

  it('scores a version on the uploaded sessions exactly as the offline protocol does, bonuses and its co-visitation lists included', async () => {
    const sessions = dataset.test.slice(0, 600)
    const upload = { type: 'pocketrec-validation', sessions: asProductIds(sessions) }
    // A product the catalogue lacks is dropped from its session, as unseen items are offline.
    upload.sessions[0] = [...upload.sessions[0]!, 'no-such-product']
    const stored = await admin('validation', 'PUT', upload)
    expect(stored.status).toBe(201)
    const { cases } = (await stored.json()) as { cases: number }
    expect(cases).toBe(sessions.reduce((n, s) => n + s.length - 1, 0))

    const response = await admin('evaluate', 'POST', { version: 1 })
    expect(response.status).toBe(200)
    const { metrics } = (await response.json()) as { metrics: Record<string, number> }

    const model = (await import('../../model/model-weights')).importModelWeights(
      decodeWeights((await store.artifact((await store.current())!.manifest.model.sha256))!),
    )
    expect(model.config.coVisitBonus).toBe(2)
    const offlineWith = async (options: Parameters<typeof createGruScorer>[2]) => {
      const scorer = createGruScorer(model, undefined, options)
      const report = await evaluateScorer(scorer, sessions, {
        nItems: dataset.nItems,
        trainCounts: countItems(dataset.train, dataset.nItems),
        maxCases: 2_000,
        maxPrefixLen: model.config.maxLen,
      })
      scorer.dispose?.()
      return report
    }
    const offline = await offlineWith({ coVisitation })
    // Without the release's co-visitation lists the numbers differ: the check below can tell.
    const withoutLists = await offlineWith({})
    model.dispose()
    expect(withoutLists.metrics['mrr@20']).not.toBeCloseTo(offline.metrics['mrr@20']!, 4)
    expect(metrics.validationRecall20).toBeCloseTo(offline.metrics['recall@20']! * 100, 6)
    expect(metrics.validationMrr20).toBeCloseTo(offline.metrics['mrr@20']! * 100, 6)
    expect(metrics.validationCases).toBe(offline.cases)
    // The model learned something, or the next test would prove nothing.
    expect(metrics.validationRecall20).toBeGreaterThan(10)
    expect((await store.version(1))!.metrics).toMatchObject(metrics)
  }, 60_000)

  it('keeps back a candidate that scores worse than current, and promotes one that does not', async () => {
    const current = (await store.current())!
    await publishCandidate(await brokenCandidate(current, 2))
    const [kept] = await federation.reviewNow()
    expect(kept).toMatchObject({ version: 2, decision: 'kept-back' })
    if (kept?.decision !== 'kept-back') throw new Error('unreachable')
    expect(kept.recall20).toBeLessThan(kept.current - 0.5)
    expect((await store.current())!.version).toBe(1)
    // Reviewed once: a later pass does not score it again.
    expect(await federation.reviewNow()).toEqual([])

    // The same weights as current: within the tolerance, promoted.
    const same: VersionRecord = {
      ...current,
      version: 3,
      parent: 1,
      manifest: { ...current.manifest, version: 'v3' },
      metrics: {},
    }
    await publishCandidate(same)
    // Scored by hand first: still reviewed, and promoted.
    expect((await admin('evaluate', 'POST', { version: 3 })).status).toBe(200)
    expect(await reviewCandidates(store, { maxCases: 2_000, tolerancePoints: 0.5 })).toMatchObject([
      { version: 3, decision: 'promoted' },
    ])
    expect((await store.current())!.version).toBe(3)
  }, 60_000)

  it('the publisher loop reviews candidates on its own and says what it decided', async () => {
    const current = (await store.current())!
    await publishCandidate(await brokenCandidate(current, 4))
    const lines: string[] = []
    const stop = federation.startPublisher(20, (line) => lines.push(line))
    try {
      await expect.poll(() => lines.length, { timeout: 30_000 }).toBeGreaterThan(0)
    } finally {
      stop()
    }
    expect(lines[0]).toMatch(/^v4 kept-back: validation Recall@20 \d+\.\d+ against \d+\.\d+/)
    expect((await store.current())!.version).toBe(3)
  }, 60_000)

  it('reads the co-visitation lists of an older release from its pools, and scores it the same', async () => {
    const first = (await store.version(1))!
    const pools = decodePools((await store.artifact(first.manifest.pools.sha256))!)
    if (!pools.ok) throw new Error(pools.error)
    const inline: Record<string, number[]> = {}
    for (let item = 0; item < dataset.nItems; item++) {
      const list = coVisitation(item)
      if (list.length > 0) inline[String(item)] = [...list]
    }
    const sha256 = 'e'.repeat(64)
    // Older releases sent the pools as JSON, co-visitation inside (the binary layout has none).
    const json = JSON.stringify({ ...pools.value.pools, coVisitation: inline })
    await store.putArtifact(sha256, new TextEncoder().encode(json))
    const { coVisitation: _shards, ...manifest } = first.manifest
    await publishCandidate({
      ...first,
      version: 5,
      parent: (await store.current())!.version,
      manifest: { ...manifest, version: 'v5', pools: { ...manifest.pools, sha256 } },
      metrics: {},
    })
    const response = await admin('evaluate', 'POST', { version: 5 })
    expect(response.status).toBe(200)
    const { metrics } = (await response.json()) as { metrics: Record<string, number> }
    expect(metrics.validationMrr20).toBe(first.metrics.validationMrr20)
    expect(metrics.validationRecall20).toBe(first.metrics.validationRecall20)
  }, 60_000)
})
