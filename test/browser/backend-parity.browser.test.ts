// The same recommendations on every backend: the script tag forces each backend in turn
// (data-backend) in a fresh Chromium profile, tracks fixed sessions, and the worker's for-you
// top-20 must equal the recommender computed in Node on the cpu backend from the same artifacts.
// Small real data (the YooChoose sample) and an untrained seeded model keep it fast.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRecommender } from '../../client/worker/recommend/recommend'
import { createCoVisitationLoader } from '../../client/worker/co-visitation-shards'
import { createGruModel, DEFAULT_GRU_CONFIG } from '../../model/gru-model'
import { exportModelWeights, importModelWeights } from '../../model/model-weights'
import { syncRelease } from '../../client/worker/sync-release'
import type { BackendName, RecommendResponse } from '../../shared/protocol'
import { decodeWeights } from '../../shared/weights-codec'
import { exportArtifacts } from '../../train/artifacts/export-artifacts'
import { loadDataset } from '../../train/data/load-dataset'
import { sharedDataDir } from '../../train/data/paths'
import { setNodeBackend } from '../../model/node-backend'
import { chromiumSkipReason } from './harness'
import { buildDist, openProfile, serveDist, waitForTag, writeTagPage } from './tag-page'

const BACKENDS: BackendName[] = ['cpu', 'wasm', 'webgl', 'webgpu']
const LIMIT = 20
/** Scores (probabilities over the candidates) closer than this may swap places. */
const TIE = 1e-4
const skip = chromiumSkipReason()

interface Ranked {
  productId: string
  score: number
}

/** What one backend returned for one session, and whether local training could have run. */
interface PageSession {
  backend: string
  items: Ranked[]
  trainingSteps: number
  trainingState: string
}

let work: string
let server: { origin: string; close(): void }
let sessions: string[][]
let expected: Ranked[][]

/**
 * Equal lists, except that neighbours whose expected scores tie within `TIE` may be swapped.
 * Returns null or the first difference.
 */
function compareRankings(actual: Ranked[], reference: Ranked[]): string | null {
  if (actual.length !== reference.length) {
    return `expected ${reference.length} items, got ${actual.length}`
  }
  for (let i = 0; i < reference.length; i++) {
    if (actual[i]!.productId === reference[i]!.productId) continue
    const swapped =
      i + 1 < reference.length &&
      actual[i]!.productId === reference[i + 1]!.productId &&
      actual[i + 1]!.productId === reference[i]!.productId &&
      Math.abs(reference[i]!.score - reference[i + 1]!.score) <= TIE
    if (!swapped) {
      return `position ${i}: expected ${reference[i]!.productId} (${reference[i]!.score}), got ${actual[i]!.productId} (${actual[i]!.score})`
    }
    i++
  }
  return null
}

/**
 * Runs in the page: one session at a time, consent withdrawn (the database deleted, the worker
 * stopped) after each. Local fine-tuning starts 1.5 s after the last event and changes the
 * weights, so a list is kept only if no training had started when it was answered; a session
 * whose list raced with training (a slow machine) is tried again with a fresh worker.
 */
async function runSessionsInPage(productSessions: string[][]): Promise<PageSession[]> {
  type Command = (name: string, ...args: unknown[]) => Promise<unknown>
  const pocketrec = (window as unknown as { pocketrec: Command }).pocketrec
  const out: PageSession[] = []
  for (const session of productSessions) {
    let result: PageSession | undefined
    // Raced: training had started, or had already run a step and gone idle again.
    const raced = (r: PageSession | undefined) =>
      r === undefined || r.trainingSteps !== 0 || r.trainingState !== 'idle'
    for (let attempt = 0; attempt < 3 && raced(result); attempt++) {
      await pocketrec('consent', true)
      // Until the model is in, a first download's lists come from the pools: compare the model's.
      const lists = async () =>
        ((await pocketrec('status')) as { worker: { lists: string | null } | null }).worker?.lists
      while ((await lists()) !== 'model') await new Promise((resolve) => setTimeout(resolve, 20))
      // A one-item session never trains: with it, build the item table and compile the kernels,
      // so the call below answers well inside the idle delay before local fine-tuning.
      await pocketrec('track', 'Product Viewed', { product_id: session[0] })
      await pocketrec('recommend', { scenario: 'for-you', limit: 20 })
      // A page view of its own: on the list's, the for-you shelf below would leave its items out.
      await pocketrec('recommend', {
        scenario: 'similar',
        productId: session[0],
        limit: 4,
        pageView: 'warm-up',
      })
      for (const id of session.slice(1)) {
        await pocketrec('track', 'Product Viewed', { product_id: id })
      }
      const response = (await pocketrec('recommend', {
        scenario: 'for-you',
        limit: 20,
      })) as RecommendResponse
      const status = (await pocketrec('status')) as {
        worker: { training: { steps: number; state: string } } | null
      }
      result = {
        backend: response.backend,
        items: response.items.map(({ productId, score }) => ({ productId, score })),
        trainingSteps: status.worker?.training.steps ?? -1,
        trainingState: status.worker?.training.state ?? 'unknown',
      }
      await pocketrec('consent', false)
    }
    out.push(result!)
  }
  return out
}

describe.skipIf(skip)('backend parity in headless Chromium', () => {
  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'pocketrec-parity-'))
    await setNodeBackend('cpu')
    const dataset = await loadDataset(
      path.join(sharedDataDir(), 'yoochoose-clicks-100k-sessionrec'),
    )
    const seeded = createGruModel({ ...DEFAULT_GRU_CONFIG, nItems: dataset.nItems }, 1)
    const weights = await exportModelWeights(seeded)
    seeded.dispose()
    const publicDir = path.join(work, 'public')
    await exportArtifacts({
      dataset,
      model: weights,
      outDir: path.join(publicDir, 'artifacts'),
      createdAt: '2026-11-27T00:00:00.000Z',
    })
    const distDir = path.join(work, 'dist')
    await buildDist(publicDir, distDir)
    for (const backend of BACKENDS) await writeTagPage(distDir, `parity-${backend}`, backend)
    server = await serveDist(distDir)

    // The Node reference reads what the browser reads: the served release (float16 weights).
    const release = await syncRelease(new URL('/artifacts/manifest.json', server.origin), null)
    const byIndex = new Map(release.catalogue.items.map((item) => [item.index, item.id]))
    sessions = dataset.test
      .filter((s) => new Set(s).size === s.length && s.length >= 3)
      .slice(0, 3)
      .map((s) => Array.from(s.slice(0, 5), (index) => byIndex.get(index)!))
    // Every co-visitation shard, as the worker fetches those of the session's items.
    await createCoVisitationLoader({
      shards: release.manifest.coVisitation,
      pools: release.pools,
      nItems: dataset.nItems,
      manifestUrl: new URL('/artifacts/manifest.json', server.origin),
      fetch,
    }).ensure(release.catalogue.items.map((item) => item.index))
    const model = importModelWeights(decodeWeights(release.modelBytes))
    const recommender = createRecommender({
      model,
      modelVersion: release.manifest.version,
      catalogue: release.catalogue,
      pools: release.pools,
      rules: release.rules,
    })
    expected = []
    for (const session of sessions) {
      const response = await recommender.recommend(
        { scenario: 'for-you', limit: LIMIT },
        { sessionProductIds: session, recentlyViewed: session, cartProductIds: [], purchases: [] },
      )
      expected.push(response.items.map(({ productId, score }) => ({ productId, score })))
    }
    recommender.dispose()
    model.dispose()
  }, 120_000)

  afterAll(async () => {
    server?.close()
    if (work) await rm(work, { recursive: true, force: true })
  })

  it('uses fixed sessions whose reference lists are full', () => {
    expect(sessions).toHaveLength(3)
    for (const list of expected) expect(list).toHaveLength(LIMIT)
  })

  it.each(BACKENDS)(
    '%s: the worker top-20 equals the Node reference',
    async (backend) => {
      const log: string[] = []
      const profile = await openProfile(log)
      try {
        await profile.page.goto(`${server.origin}/parity-${backend}.html`)
        await waitForTag(profile.page)
        const results = await profile.page.evaluate(runSessionsInPage, sessions)
        results.forEach((result, s) => {
          const context = `${backend}, session ${s} (${sessions[s]!.join(' ')})\n${log.slice(-20).join('\n')}`
          expect(result.backend, context).toBe(backend)
          // Local fine-tuning would change the weights: the comparison is only fair before it.
          expect([result.trainingSteps, result.trainingState], context).toEqual([0, 'idle'])
          expect(compareRankings(result.items, expected[s]!), context).toBeNull()
          const worst = Math.max(
            ...result.items.map((item, i) => Math.abs(item.score - expected[s]![i]!.score)),
          )
          expect(worst, context).toBeLessThan(1e-3)
        })
      } finally {
        await profile.close()
      }
    },
    60_000,
  )
})
