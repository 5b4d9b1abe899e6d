import { createHash } from 'node:crypto'
import { artifactFrom, shopCatalogue, withoutDates } from '../../test/fixtures/read-artifact'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { prepareUpload } from '../../client/worker/federated/prepare-upload'
import { validateCandidatePools, validateModelManifest } from '../../shared/artifacts'
import { helperRoute } from '../../shared/helper-url'
import type {
  CandidatePools,
  Catalogue,
  DeviceCatalogue,
  ModelManifest,
  RerankRules,
} from '../../shared/protocol'
import { readShareHeader } from '../../shared/secure-update'
import { writeTestRelease } from '../../test/fixtures/exported-release'
import { setNodeBackend } from '../../model/node-backend'
import { createApp } from '../app'
import { openSqliteStore } from '../storage/sqlite-store'
import type { FederationStore } from '../storage/store'
import { issueClientId } from './clients'
import { createFederation, type Federation } from './service'
import { resolveFederationConfig } from '../config'
import { serverGroup, startTestHelper, type TestHelper } from '../../test/fixtures/listen'

// The whole server side over real HTTP: seeded from a trainer export, serving releases from the
// store, paired with a helper (its own server and store, PROTOCOL.md P29c), taking a device's
// real update (computed by the worker's code and sent as its two share bodies), publishing v2.
const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-service-'))
const TOKEN = 'the-service-test-pairing-secret-0123456789'
let store: FederationStore
let federation: Federation
let helper: TestHelper
let origin: string
let helperOrigin: string
const servers = serverGroup()

const sha = (bytes: ArrayBuffer) => createHash('sha256').update(new Uint8Array(bytes)).digest('hex')

const manifest = async () =>
  (await (await fetch(`${origin}/artifacts/manifest.json`)).json()) as ModelManifest
const artifact = async <T>(ref: { url: string }) =>
  artifactFrom<T>(
    ref.url,
    new Uint8Array(await (await fetch(`${origin}/artifacts/${ref.url}`)).arrayBuffer()),
  )

/**
 * One device as the worker runs it: a token, the current model, the worker's own update code
 * (prepare-upload.ts, share-update.ts), the helper's body to the helper, then the leader's upload
 * to the leader (202 from both). Its slice.
 */
async function sendDeviceUpdate(client: string): Promise<number> {
  const current = await manifest()
  const issued = await (
    await fetch(`${origin}/v1/token`, {
      method: 'POST',
      body: JSON.stringify({
        siteKey: 'demo-shop',
        client: issueClientId(federation.deps, client),
      }),
    })
  ).json()
  const manifestUrl = new URL(`${origin}/artifacts/manifest.json`)
  const baseVersion = Number(current.version.slice(1))
  const upload = (await prepareUpload({
    modelBytes: new Uint8Array(
      await (await fetch(`${origin}/artifacts/${current.model.url}`)).arrayBuffer(),
    ),
    manifestUrl,
    sessions: [Int32Array.of(1, 2, 3, 4), Int32Array.of(5, 6, 5)],
    federation: current.federation!,
    token: issued,
    baseVersion,
  }))!
  // Both bodies carry the token's version and slice; the helper's goes to the announced helper.
  for (const body of [upload.body, upload.helper!.body])
    expect(readShareHeader(body)).toMatchObject({ baseVersion, slice: issued.slice })
  expect(upload.helper!.url).toBe(String(helperRoute(helperOrigin, 'shares')))
  const toHelper = await fetch(upload.helper!.url, {
    method: 'POST',
    body: upload.helper!.body as Uint8Array<ArrayBuffer>,
  })
  expect(toHelper.status).toBe(202)
  const response = await fetch(`${origin}/v1/updates`, {
    method: 'POST',
    headers: { authorization: `Bearer ${issued.token}` },
    body: upload.body as Uint8Array<ArrayBuffer>,
  })
  expect(response.status).toBe(202)
  return issued.slice
}

const putShop = (kind: 'catalogue' | 'rules', body: string, token = federation.adminToken!) =>
  fetch(`${origin}/v1/admin/${kind}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body,
  })

describe('the aggregation server end to end', () => {
  beforeAll(async () => {
    await setNodeBackend('cpu')
    const artifacts = path.join(dir, 'artifacts')
    await writeTestRelease(8, artifacts)
    // One update a release (bufferSize 1): the helper's floor must allow a batch of one.
    helper = await startTestHelper(dir, { token: TOKEN, minBatch: 1, answerWaitMs: 50 })
    helperOrigin = helper.origin
    store = openSqliteStore(path.join(dir, 'server.db'))
    federation = await createFederation(
      store,
      resolveFederationConfig({
        artifactsDir: artifacts,
        promotion: 'auto',
        settings: { bufferSize: 1, minBuffer: 1 },
        training: { learningRate: 0.01, epochs: 2 },
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

  it('seeds v1 from the export once, and serves it from the store with a federation block', async () => {
    const manifest = (await (
      await fetch(`${origin}/artifacts/manifest.json`)
    ).json()) as ModelManifest
    expect(validateModelManifest(manifest).ok).toBe(true)
    expect(manifest.version).toBe('v1')
    const secure = federation.deps.settings.secure!
    expect(manifest.federation).toMatchObject({
      layout: secure.layout,
      clipNorm: secure.clipNorm,
      helper: helperOrigin,
      learningRate: 0.01,
      epochs: 2,
    })
    expect(manifest.federation!.negatives).toHaveLength(secure.layout.negativeRows)
    expect(JSON.stringify(manifest)).not.toContain(TOKEN)
    for (const ref of [manifest.model, manifest.catalogue, manifest.pools, manifest.rules]) {
      const response = await fetch(`${origin}/artifacts/${ref.url}`)
      expect(response.headers.get('etag')).toBe(`"${ref.sha256}"`)
      expect(sha(await response.arrayBuffer())).toBe(ref.sha256)
      // Every artifact, the model too, has its compressed copies (undici asks for gzip over http).
      expect(response.headers.get('content-encoding')).toBe('gzip')
    }
    // A device resuming the model's download gets the rest of the plain bytes, never a copy
    // compressed from elsewhere; a start past the end is 416.
    const whole = new Uint8Array(
      await (await fetch(`${origin}/artifacts/${manifest.model.url}`)).arrayBuffer(),
    )
    const from = Math.floor(manifest.model.bytes / 2)
    const rest = await fetch(`${origin}/artifacts/${manifest.model.url}`, {
      headers: { range: `bytes=${from}-` },
    })
    expect(rest.status).toBe(206)
    expect(rest.headers.get('content-encoding')).toBeNull()
    expect(rest.headers.get('content-range')).toBe(
      `bytes ${from}-${manifest.model.bytes - 1}/${manifest.model.bytes}`,
    )
    expect(new Uint8Array(await rest.arrayBuffer())).toEqual(whole.subarray(from))
    const past = await fetch(`${origin}/artifacts/${manifest.model.url}`, {
      headers: { range: `bytes=${manifest.model.bytes}-` },
    })
    expect(past.status).toBe(416)
    // A second start on the same store does not seed again, and announces the same channel.
    const again = await createFederation(
      store,
      resolveFederationConfig({
        artifactsDir: path.join(dir, 'artifacts'),
        promotion: 'auto',
        helper: { url: helperOrigin, token: TOKEN },
      }),
    )
    await again.close()
    expect(again.deps.settings.secure!.layout).toEqual(secure.layout)
    expect((await store.versions()).map((v) => v.version)).toEqual([1])
    // A start without a helper serves the same release with no federation block, and takes no
    // updates (P29c).
    const alone = await createFederation(
      store,
      resolveFederationConfig({ artifactsDir: path.join(dir, 'artifacts'), promotion: 'auto' }),
    )
    try {
      const aloneOrigin = await servers.serve(
        createApp({ distDir: dir, federation: alone.deps }).fetch,
      )
      const served = (await (
        await fetch(`${aloneOrigin}/artifacts/manifest.json`)
      ).json()) as ModelManifest
      expect(served.federation).toBeUndefined()
      expect(served.model).toEqual(manifest.model)
      const token = await fetch(`${aloneOrigin}/v1/token`, {
        method: 'POST',
        body: JSON.stringify({
          siteKey: 'demo-shop',
          client: issueClientId(federation.deps, 'device-alone'),
        }),
      })
      expect([token.status, ((await token.json()) as { error: string }).error]).toEqual([
        409,
        'E_NO_HELPER',
      ])
      // (An empty body: the route's size limit is 0 bytes without a helper, so any other body
      // is refused as too large first.)
      const update = await fetch(`${aloneOrigin}/v1/updates`, {
        method: 'POST',
        headers: { authorization: 'Bearer x' },
      })
      expect([update.status, ((await update.json()) as { error: string }).error]).toEqual([
        409,
        'E_NO_HELPER',
      ])
    } finally {
      await alone.close()
    }
    expect((await store.versions()).map((v) => v.version)).toEqual([1])
  })

  it("takes a device's update over HTTP and publishes v2 from it; v1's files stay available", async () => {
    const v1 = await manifest()
    const slice = await sendDeviceUpdate('device-0001')
    expect(slice).toBeGreaterThanOrEqual(0)
    expect(await helper.helper.store.counts()).toEqual({ waiting: 1, consumed: 0, batches: 0 })
    expect(await federation.publishNow()).toMatchObject({ status: 'published', updates: 1 })
    // The release asked the helper for its share of the device's update.
    expect(await helper.helper.store.counts()).toEqual({ waiting: 0, consumed: 1, batches: 1 })
    const v2 = await manifest()
    expect(v2.version).toBe('v2')
    expect(v2.model.sha256).not.toBe(v1.model.sha256)
    expect(v2.catalogue).toEqual(v1.catalogue)
    const model = await fetch(`${origin}/artifacts/${v2.model.url}`)
    expect(sha(await model.arrayBuffer())).toBe(v2.model.sha256)
    expect((await fetch(`${origin}/artifacts/${v1.model.url}`)).status).toBe(200)
    const status = await (await fetch(`${origin}/v1/federation`)).json()
    expect(status).toMatchObject({ version: 2, buffered: 0, accepted: 1 })
  })

  it('refuses a catalogue or rules it cannot use, and changes nothing (P22, P25)', async () => {
    const before = await manifest()
    const catalogue = shopCatalogue(await artifact<DeviceCatalogue>(before.catalogue))
    const rules = await artifact<RerankRules>(before.rules)
    const item0 = catalogue.items[0]!
    const refusals: Array<
      [kind: 'catalogue' | 'rules', body: string, status: number, code: string]
    > = [
      ['catalogue', '{"type": "pocketrec-catalogue", "items": [', 400, 'E_CATALOGUE'],
      ['catalogue', JSON.stringify({ ...catalogue, type: 'catalogue' }), 400, 'E_CATALOGUE'],
      // One product short: a row of the item table would have no product.
      [
        'catalogue',
        JSON.stringify({ ...catalogue, items: catalogue.items.slice(1) }),
        400,
        'E_CATALOGUE',
      ],
      // A product past the item table.
      [
        'catalogue',
        JSON.stringify({
          ...catalogue,
          items: [...catalogue.items.slice(1), { ...item0, index: catalogue.items.length }],
        }),
        400,
        'E_CATALOGUE',
      ],
      [
        'catalogue',
        JSON.stringify({
          ...catalogue,
          items: [{ ...item0, price: -1 }, ...catalogue.items.slice(1)],
        }),
        400,
        'E_CATALOGUE',
      ],
      ['rules', JSON.stringify({ ...rules, maxPerBrand: 'two' }), 400, 'E_RULES'],
      ['rules', 'null', 400, 'E_RULES'],
    ]
    for (const [kind, body, status, code] of refusals) {
      const response = await putShop(kind, body)
      expect([response.status, ((await response.json()) as { error: string }).error]).toEqual([
        status,
        code,
      ])
    }
    const wrongToken = await putShop('rules', JSON.stringify(rules), 'x'.repeat(24))
    expect(wrongToken.status).toBe(401)
    expect(await manifest()).toEqual(before)
    expect((await store.versions()).map((v) => v.version)).toEqual([1, 2])
  })

  it('publishes an uploaded catalogue with the same model and the pools it implies (P25)', async () => {
    const before = await manifest()
    const catalogue = shopCatalogue(await artifact<DeviceCatalogue>(before.catalogue))
    const pools = await artifact<CandidatePools>(before.pools)
    const newest = pools.new[0]!
    const fresh = catalogue.items.find((item) => !pools.new.includes(item.index))!
    const top = pools.popular[0]!
    const oldCategory = catalogue.items[top]!.category
    const changed: Catalogue = {
      ...catalogue,
      items: catalogue.items.map((item) =>
        item.index === newest
          ? { ...item, inStock: false }
          : item.index === fresh.index
            ? { ...item, inStock: true, addedAt: '2030-01-01T00:00:00.000Z', name: 'Brand new' }
            : item.index === top
              ? { ...item, category: 'Gifts' }
              : item,
      ),
    }
    const response = await putShop('catalogue', JSON.stringify(changed))
    expect(response.status).toBe(201)
    const after = await manifest()
    expect(after.version).toBe('v3')
    expect(after.model).toEqual(before.model)
    expect(after.rules).toEqual(before.rules)
    expect(await artifact<DeviceCatalogue>(after.catalogue)).toEqual(withoutDates(changed))
    const rebuilt = await artifact<CandidatePools>(after.pools)
    expect(rebuilt.new[0]).toBe(fresh.index) // newest in stock first
    expect(rebuilt.new).not.toContain(newest) // out of stock now
    expect(rebuilt.byCategory['Gifts']).toEqual([top])
    expect(rebuilt.byCategory[oldCategory]).not.toContain(top)
    expect(rebuilt.byCategory[oldCategory]).toEqual(
      pools.byCategory[oldCategory]!.filter((i) => i !== top),
    )
    // What the log taught stays: popularity, trending and co-visitation are the release's own.
    expect([rebuilt.popular, rebuilt.trending, rebuilt.coVisitation]).toEqual([
      pools.popular,
      pools.trending,
      pools.coVisitation,
    ])
    expect(validateCandidatePools(rebuilt, { nItems: catalogue.items.length }).ok).toBe(true)
    const v3 = await store.version(3)
    expect(v3).toMatchObject({ parent: 2 })
  })

  it("publishes rules, and the next model version keeps the shop's catalogue and rules", async () => {
    const before = await manifest()
    const rules = await artifact<RerankRules>(before.rules)
    const changed: RerankRules = { ...rules, maxPerCategory: 2, boosts: { 'product-1': 2 } }
    expect((await putShop('rules', JSON.stringify(changed))).status).toBe(201)
    const v4 = await manifest()
    expect(v4.version).toBe('v4')
    expect(await artifact<RerankRules>(v4.rules)).toEqual(changed)
    expect(v4.catalogue).toEqual(before.catalogue)

    await sendDeviceUpdate('device-0002')
    expect(await federation.publishNow()).toMatchObject({ status: 'published', updates: 1 })
    const v5 = await manifest()
    expect(v5.version).toBe('v5')
    expect(v5.model.sha256).not.toBe(v4.model.sha256)
    expect([v5.catalogue, v5.pools, v5.rules]).toEqual([v4.catalogue, v4.pools, v4.rules])
  })
})
