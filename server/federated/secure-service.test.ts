// The two-server channel served (PROTOCOL.md P29–P29c): a leader (createFederation over real
// HTTP) paired with a helper (its own server and store); devices compute their updates with the
// worker's own code (share-update.ts), post the helper's body to the helper and the leader's to
// the leader, and the leader publishes. The published model must be, bit for bit, the one the
// plaintext channel computes from the same contributions.
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { computeSparseUpdate } from '../../client/worker/federated/compute-sparse-update'
import { computeShareUpload } from '../../client/worker/federated/share-update'
import { validateModelManifest } from '../../shared/artifacts'
import { helperRoute } from '../../shared/helper-url'
import { joinWeights, splitWeights } from '../../shared/federation-layout'
import type { ModelManifest } from '../../shared/protocol'
import { addContribution, applySparseSums, createSparseSums } from '../../shared/sparse-update'
import { SHIPPED_MODEL_ENCODING } from '../../shared/shipped-model'
import { decodeWeights, encodeWeights, type WeightsFile } from '../../shared/weights-codec'
import { writeTestRelease } from '../../test/fixtures/exported-release'
import { setNodeBackend } from '../../model/node-backend'
import { createApp } from '../app'
import { openSqliteStore } from '../storage/sqlite-store'
import type { FederationStore } from '../storage/store'
import { issueClientId } from './clients'
import { createFederation, type Federation } from './service'
import { resolveFederationConfig } from '../config'
import { serverGroup, startTestHelper, type TestHelper } from '../../test/fixtures/listen'

const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-secure-'))
const TOKEN = 'a-pairing-secret-for-the-service-test-0123'
const K = 6
let store: FederationStore
let federation: Federation
let helper: TestHelper
let origin = ''
let helperOrigin = ''
const servers = serverGroup()

const manifest = async () =>
  (await (await fetch(`${origin}/artifacts/manifest.json`)).json()) as ModelManifest
const modelOf = async (m: ModelManifest) =>
  decodeWeights(
    new Uint8Array(await (await fetch(`${origin}/artifacts/${m.model.url}`)).arrayBuffer()),
  )
const sessionsOf = (n: number) => [Int32Array.of(1 + n, 2 + 2 * n, 3 + n), Int32Array.of(7, 8 + n)]

async function token(client: string) {
  const response = await fetch(`${origin}/v1/token`, {
    method: 'POST',
    body: JSON.stringify({ siteKey: 'demo-shop', client: issueClientId(federation.deps, client) }),
  })
  expect(response.status).toBe(200)
  return (await response.json()) as { token: string; slice: number; version: number }
}

/**
 * One device as the worker runs it; returns the statuses of its two uploads (the helper's 0 when
 * `toHelper` is false: a device that sends the leader alone, which the helper can never sum).
 */
async function sendShares(n: number, global: WeightsFile, current: ModelManifest, toHelper = true) {
  const issued = await token(`device-${n}`)
  const upload = (await computeShareUpload(global, sessionsOf(n), {
    baseVersion: issued.version,
    slice: issued.slice,
    federation: current.federation!,
    training: { learningRate: 0.05, epochs: 1, seed: n + 1 },
  }))!
  const helperUrl = helperRoute(current.federation!.helper, 'shares', new URL(origin))
  const helperStatus = toHelper
    ? (await fetch(helperUrl, { method: 'POST', body: upload.helper as Uint8Array<ArrayBuffer> }))
        .status
    : 0
  const toLeader = await fetch(`${origin}/v1/updates`, {
    method: 'POST',
    headers: { authorization: `Bearer ${issued.token}` },
    body: upload.leader as Uint8Array<ArrayBuffer>,
  })
  return { helper: helperStatus, leader: toLeader.status, slice: issued.slice, upload }
}

describe('the two-server channel served (P29c)', () => {
  beforeAll(async () => {
    await setNodeBackend('cpu')
    const artifacts = path.join(dir, 'artifacts')
    await writeTestRelease(8, artifacts)
    helper = await startTestHelper(dir, { token: TOKEN, minBatch: 4, answerWaitMs: 50 })
    helperOrigin = helper.origin
    store = openSqliteStore(path.join(dir, 'leader.db'))
    federation = await createFederation(
      store,
      resolveFederationConfig({
        artifactsDir: artifacts,
        promotion: 'auto',
        settings: { bufferSize: K, minBuffer: K },
        helper: { url: helperOrigin, token: TOKEN },
      }),
    )
    origin = await servers.serve(createApp({ distDir: dir, federation: federation.deps }).fetch)
  }, 60_000)

  afterAll(async () => {
    await servers.close()
    await federation?.close()
    await store?.close()
    await helper?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('announces the channel in the manifest, and never the pairing secret', async () => {
    const current = await manifest()
    expect(validateModelManifest(current).ok).toBe(true)
    const secure = current.federation!
    expect(secure.helper).toBe(helperOrigin)
    expect(secure.negatives).toHaveLength(secure.layout.negativeRows)
    const status = await (await fetch(`${origin}/v1/federation`)).text()
    expect(status).not.toContain(TOKEN)
    expect(JSON.stringify(current)).not.toContain(TOKEN)
  })

  it('publishes from devices’ shares exactly the model the plaintext channel computes', async () => {
    const v1 = await manifest()
    const global = await modelOf(v1)
    const secure = v1.federation!
    const plain = createSparseSums(splitWeights(global).shape, Int32Array.from(secure.negatives))
    for (let n = 0; n < K; n++) {
      const sent = await sendShares(n, global, v1)
      expect(sent).toMatchObject({ helper: 202, leader: 202 })
      // The same device's contribution in the clear (its training is seeded: the same values).
      const update = (await computeSparseUpdate(global, sessionsOf(n), {
        slice: sent.slice,
        layout: secure.layout,
        negativeRows: Int32Array.from(secure.negatives),
        clipNorm: secure.clipNorm,
        training: { learningRate: 0.05, epochs: 1, seed: n + 1 },
      }))!
      expect(sent.upload.dropped).toBe(0)
      addContribution(plain, update.contribution, secure.layout.embedDim)
    }
    expect(await federation.publishNow()).toMatchObject({ status: 'published', updates: K })
    const v2 = await manifest()
    expect(v2.version).toBe('v2')
    // The plaintext release from v1's weights (its export has no float32 master: the shipped
    // model is the start), with the channel's step.
    const step = federation.deps.settings.secure!.step
    const next = applySparseSums(splitWeights(global), plain, step, secure.layout.embedDim)
    const expected = encodeWeights(
      joinWeights(global, next.dense, next.table),
      SHIPPED_MODEL_ENCODING,
    )
    expect(v2.model.sha256).toBe(createHash('sha256').update(expected).digest('hex'))
    // The next version's negatives follow from its model.
    expect(v2.federation!.negatives).not.toEqual(secure.negatives)
    expect(await (await fetch(`${helperOrigin}/v1/helper`)).json()).toMatchObject({
      consumed: K,
      batches: 1,
    })
  })

  it('refuses an update trained on an older model, a replayed upload, and a helper body at the leader', async () => {
    const v1 = (await store.version(1))!.manifest
    const v2 = await manifest()
    const global = await modelOf(v2)
    const sent = await sendShares(100, global, v2)
    expect(sent).toMatchObject({ helper: 202, leader: 202 })
    const issued = await token('device-100')
    const replay = await fetch(`${origin}/v1/updates`, {
      method: 'POST',
      headers: { authorization: `Bearer ${issued.token}` },
      body: sent.upload.leader as Uint8Array<ArrayBuffer>,
    })
    expect(await replay.json()).toMatchObject({ status: 'duplicate' })
    // A leader upload whose body says it is the helper's: refused before anything is stored.
    const relabelled = sent.upload.leader.slice()
    relabelled[4] = 1
    const helperAtLeader = await fetch(`${origin}/v1/updates`, {
      method: 'POST',
      headers: { authorization: `Bearer ${(await token('device-101')).token}` },
      body: relabelled as Uint8Array<ArrayBuffer>,
    })
    expect(helperAtLeader.status).toBe(400)
    expect(await helperAtLeader.json()).toMatchObject({ error: 'E_UPDATE_FORMAT' })
    // A device still on v1 (a token for v1 is issued while v1 is within the staleness bound).
    const old = await modelOf({ ...v2, model: v1.model })
    const staleToken = await fetch(`${origin}/v1/token`, {
      method: 'POST',
      body: JSON.stringify({
        siteKey: 'demo-shop',
        client: issueClientId(federation.deps, 'device-102'),
        version: 1,
      }),
    })
    const stale = (await staleToken.json()) as { token: string; slice: number }
    const upload = (await computeShareUpload(old, sessionsOf(3), {
      baseVersion: 1,
      slice: stale.slice,
      federation: {
        ...v2.federation!,
        negatives: (await manifestOfVersion(1)).federation!.negatives,
      },
      training: { learningRate: 0.05, epochs: 1, seed: 9 },
    }))!
    const refused = await fetch(`${origin}/v1/updates`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stale.token}` },
      body: upload.leader as Uint8Array<ArrayBuffer>,
    })
    expect(refused.status).toBe(409)
    expect(await refused.json()).toMatchObject({ error: 'E_VERSION_STALE' })
  })

  it('consumes unsummed what the helper can never sum, instead of stalling the release on it', async () => {
    // The test above left one summable update in the buffer (fewer than K).
    expect((await store.buffered()).length).toBe(1)
    const current = await manifest()
    const global = await modelOf(current)
    const before = (await (await fetch(`${helperOrigin}/v1/helper`)).json()) as { consumed: number }
    // Three devices send the leader alone: the buffer's head holds what no batch can sum.
    for (let n = 200; n < 203; n++)
      expect(await sendShares(n, global, current, false)).toMatchObject({ helper: 0, leader: 202 })
    for (let n = 203; n < 206; n++)
      expect(await sendShares(n, global, current)).toMatchObject({ helper: 202, leader: 202 })
    // The batch is the first six: three summable, under the helper's minimum of four. Nothing is
    // published or consumed.
    expect(await federation.publishNow()).toMatchObject({ status: 'not-due' })
    expect((await store.buffered()).length).toBe(7)
    // Three more honest devices: the next batch sums six honest updates and consumes the three
    // unsummable ones with them (before, it asked for the same first six for ever).
    for (let n = 206; n < 209; n++)
      expect(await sendShares(n, global, current)).toMatchObject({ helper: 202, leader: 202 })
    expect(await federation.publishNow()).toMatchObject({ status: 'published', updates: 6 })
    expect((await store.buffered()).length).toBe(1)
    expect(await (await fetch(`${helperOrigin}/v1/helper`)).json()).toMatchObject({
      consumed: before.consumed + 6,
    })
  })
})

/** A version's manifest as devices were served it then. */
async function manifestOfVersion(version: number): Promise<ModelManifest> {
  const { servedManifest } = await import('./releases')
  const record = (await store.version(version))!
  return servedManifest(record.manifest, federation.deps.settings, federation.deps.training)
}
