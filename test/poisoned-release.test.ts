// What the two-server channel cannot check, and what stops it (PROTOCOL.md P29b, P26): the
// servers verify where a device's keys add, not how much. A device that sends an oversized
// payload (the rows it may move a thousand times over the clip) is accepted by both
// servers and poisons the release; `evaluated` promotion scores the candidate on the operator's
// validation set and keeps it back, so devices keep getting the current version. (That an
// equally good candidate is promoted is evaluate-versions.test.ts's.)
import { catalogueFrom } from './fixtures/read-artifact'
import { mkdtempSync, rmSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import * as tf from '@tensorflow/tfjs-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { computeSparseUpdate } from '../client/worker/federated/compute-sparse-update'
import { computeShareUpload } from '../client/worker/federated/share-update'
import { createGruModel, DEFAULT_GRU_CONFIG } from '../model/gru-model'
import { exportModelWeights, importModelWeights } from '../model/model-weights'
import { encodeSessionBatch } from '../model/session-batch'
import { createApp } from '../server/app'
import { issueClientId } from '../server/federated/clients'
import { createFederation, type Federation } from '../server/federated/service'
import { resolveFederationConfig } from '../server/config'
import { openSqliteStore } from '../server/storage/sqlite-store'
import type { FederationStore } from '../server/storage/store'
import { helperRoute } from '../shared/helper-url'
import { encodeLeaderUpload, NO_SCORE } from '../shared/leader-upload'
import { createNobleCipher } from '../shared/noble-cipher'
import type { ModelManifest } from '../shared/protocol'
import { placeRows } from '../shared/row-buckets'
import { secureParamsFor, splitContribution } from '../shared/secure-update'
import { toFixed } from '../shared/sparse-update'
import { decodeWeights, type WeightsFile } from '../shared/weights-codec'
import { exportArtifacts } from '../train/artifacts/export-artifacts'
import { loadDataset } from '../train/data/load-dataset'
import { sharedDataDir } from '../train/data/paths'
import type { SessionDataset } from '../train/data/types'
import { DEFAULT_FIT_OPTIONS, fitGruModel } from '../train/fit'
import { setNodeBackend } from '../model/node-backend'
import { serverGroup, startTestHelper, type TestHelper } from './fixtures/listen'

const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-poison-'))
const TOKEN = 'the-poisoned-release-test-pairing-secret-01'
const ADMIN = 'admin-token-poisoned-release'
const K = 5
let dataset: SessionDataset
let store: FederationStore
let federation: Federation
let helper: TestHelper
let origin = ''
const servers = serverGroup()

beforeAll(async () => {
  // A model that has learned something (as in evaluate-versions.test.ts), or a poisoned release
  // could not score worse than it.
  await setNodeBackend('wasm')
  dataset = await loadDataset(path.join(sharedDataDir(), 'yoochoose-clicks-100k-sessionrec'))
  const model = createGruModel(
    { ...DEFAULT_GRU_CONFIG, nItems: dataset.nItems, embedDim: 16, hiddenDim: 16 },
    1,
  )
  await fitGruModel(model, dataset.train, { ...DEFAULT_FIT_OPTIONS, epochs: 1, negatives: 256 })
  const artifacts = path.join(dir, 'artifacts')
  const { manifest } = await exportArtifacts({
    dataset,
    model: await exportModelWeights(model),
    outDir: artifacts,
    createdAt: '2026-12-04T00:00:00.000Z',
  })
  model.dispose()
  const catalogue = catalogueFrom(await readFile(path.join(artifacts, manifest.catalogue.url)))
  helper = await startTestHelper(dir, { token: TOKEN, minBatch: K, answerWaitMs: 50 })
  const helperOrigin = helper.origin
  store = openSqliteStore(path.join(dir, 'leader.db'))
  federation = await createFederation(
    store,
    resolveFederationConfig({
      artifactsDir: artifacts,
      adminToken: ADMIN,
      promotion: 'evaluated',
      evaluation: { maxCases: 2_000 },
      settings: { bufferSize: K, minBuffer: K },
      helper: { url: helperOrigin, token: TOKEN },
    }),
  )
  origin = await servers.serve(createApp({ distDir: dir, federation: federation.deps }).fetch)
  const sessions = dataset.test
    .slice(0, 600)
    .map((s) => Array.from(s, (i) => catalogue.items[i]!.id))
  const put = await fetch(`${origin}/v1/admin/validation`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${ADMIN}` },
    body: JSON.stringify({ type: 'pocketrec-validation', sessions }),
  })
  expect(put.status).toBe(201)
}, 180_000)

afterAll(async () => {
  await servers.close()
  await federation?.close()
  await store?.close()
  await helper?.close()
  rmSync(dir, { recursive: true, force: true })
})

let devices = 0

/** One device's token, the current manifest and model. */
async function enrol() {
  const client = issueClientId(federation.deps, `device-${devices++}`)
  const issued = (await (
    await fetch(`${origin}/v1/token`, {
      method: 'POST',
      body: JSON.stringify({ siteKey: 'demo-shop', client }),
    })
  ).json()) as { token: string; slice: number; version: number }
  const current = (await (await fetch(`${origin}/artifacts/manifest.json`)).json()) as ModelManifest
  const global = decodeWeights(
    new Uint8Array(await (await fetch(`${origin}/artifacts/${current.model.url}`)).arrayBuffer()),
  )
  return { issued, secure: current.federation!, global }
}

async function upload(
  issued: { token: string },
  helperUrl: string,
  leader: Uint8Array,
  helperBody: Uint8Array,
) {
  const toHelper = await fetch(helperRoute(helperUrl, 'shares'), {
    method: 'POST',
    body: helperBody as Uint8Array<ArrayBuffer>,
  })
  const toLeader = await fetch(`${origin}/v1/updates`, {
    method: 'POST',
    headers: { authorization: `Bearer ${issued.token}` },
    body: leader as Uint8Array<ArrayBuffer>,
  })
  return [toHelper.status, toLeader.status]
}

/** An honest device: the worker's own code on a test session. */
async function honest(n: number) {
  const { issued, secure, global } = await enrol()
  const shares = (await computeShareUpload(global, [dataset.train[n]!], {
    baseVersion: issued.version,
    slice: issued.slice,
    federation: secure,
    training: { learningRate: 0.05, epochs: 1, seed: n + 1 },
  }))!
  expect(await upload(issued, secure.helper, shares.leader, shares.helper)).toEqual([202, 202])
}

/**
 * A device that trains honestly, then sends, for every row it may move (its viewed rows and the
 * public negatives), a change a thousand times the clip bound along the mean of the model's
 * session vectors (which it can compute from the public model): once the rows are normalised,
 * they score first for nearly every session (a shilling attack). The dense window, if any, is
 * blown up the same way.
 */
async function poisoner(n: number, global: WeightsFile) {
  const { issued, secure } = await enrol()
  const update = (await computeSparseUpdate(global, [dataset.train[n]!], {
    slice: issued.slice,
    layout: secure.layout,
    negativeRows: Int32Array.from(secure.negatives),
    clipNorm: secure.clipNorm,
  }))!
  const direction = meanSessionVector(global)
  const d = secure.layout.embedDim
  const huge = (values: Int32Array, along?: Float32Array) =>
    Int32Array.from(values, (_, i) =>
      Math.round(toFixed(1000 * secure.clipNorm * (along ? along[i % d]! : i % 2 ? 1 : -1)) / 4),
    )
  const contribution = {
    ...update.contribution,
    rowValues: huge(update.contribution.rowValues, direction),
    dense: huge(update.contribution.dense),
    negatives: huge(update.contribution.negatives, direction),
  }
  const shape = { nItems: dataset.nItems, embedDim: secure.layout.embedDim, denseSize: 0 }
  shape.denseSize = global.tensors.reduce(
    (n, t) => n + (t.name === 'item_embedding' ? 0 : t.values.length),
    0,
  )
  const params = secureParamsFor(secure.layout, shape)
  const placed = placeRows(contribution.rows, params.buckets.params, Math.random)
  const randomBytes = (k: number) => globalThis.crypto.getRandomValues(new Uint8Array(k))
  const [leader, helperBody] = splitContribution(
    contribution,
    placed.bucketRow,
    { baseVersion: issued.version, slice: issued.slice, idempotencyKey: randomBytes(16) },
    params,
    randomBytes,
    createNobleCipher(),
  )
  // Both servers take it: nothing either can see on its share says the values are too large.
  expect(
    await upload(issued, secure.helper, encodeLeaderUpload(leader, NO_SCORE), helperBody),
  ).toEqual([202, 202])
}

/** The unit mean of the sessions' vectors under `file`, over the first 500 training sessions. */
function meanSessionVector(file: WeightsFile): Float32Array {
  const model = importModelWeights(file)
  try {
    const sessions = dataset.train.slice(0, 500)
    const mean = tf.tidy(() =>
      tf.mean(model.encode(encodeSessionBatch(sessions, model.config.maxLen)), 0),
    )
    const values = mean.dataSync() as Float32Array
    mean.dispose()
    const norm = Math.hypot(...values)
    return values.map((v) => v / norm)
  } finally {
    model.dispose()
  }
}

describe('a release poisoned by oversized payloads (issue 12)', () => {
  it('is published as a candidate and kept back by evaluated promotion', async () => {
    const v1 = (await store.current())!
    const global = decodeWeights((await store.artifact(v1.manifest.model.sha256))!)
    for (let n = 0; n < K - 1; n++) await honest(n)
    await poisoner(K, global)
    expect(await federation.publishNow()).toMatchObject({ status: 'published', updates: K })
    const [decision] = await federation.reviewNow()
    expect(decision).toMatchObject({ version: 2, decision: 'kept-back' })
    if (decision?.decision !== 'kept-back') throw new Error('unreachable')
    // Not a dip within noise: the poisoned model lost most of its skill (10.82 against 28.93 here
    // since the attention's position table; 6.97 against 30.47 before it; 0.25 when the update
    // carried a dense window, which the poisoner blew up as well).
    expect(decision.recall20).toBeLessThan(decision.current / 2)
    expect((await store.current())!.version).toBe(1)
    const served = (await (
      await fetch(`${origin}/artifacts/manifest.json`)
    ).json()) as ModelManifest
    expect(served.version).toBe('v1')
  }, 120_000)
})
