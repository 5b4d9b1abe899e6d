import { serve } from '@hono/node-server'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { validateModelManifest } from '../../shared/artifacts'
import type { ModelManifest } from '../../shared/protocol'
import { decodeUpdate } from '../../shared/update-codec'
import { decodeWeights } from '../../shared/weights-codec'
import { computeUpdate } from '../../client/worker/federated/compute-update'
import { writeTestRelease } from '../../test/fixtures/exported-release'
import { setNodeBackend } from '../../train/node-backend'
import { createApp } from '../app'
import { openSqliteStore } from '../storage/sqlite-store'
import type { FederationStore } from '../storage/store'
import { createFederation, type Federation } from './service'

// The whole server side over real HTTP: seeded from a trainer export, serving releases from the
// store, taking a device's real update (computed by the worker's code), publishing v2.
const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-service-'))
let store: FederationStore
let federation: Federation
let origin: string
let close: () => void

const sha = (bytes: ArrayBuffer) => createHash('sha256').update(new Uint8Array(bytes)).digest('hex')

describe('the aggregation server end to end', () => {
  beforeAll(async () => {
    await setNodeBackend('cpu')
    const artifacts = path.join(dir, 'artifacts')
    await writeTestRelease(8, artifacts)
    store = openSqliteStore(path.join(dir, 'server.db'))
    federation = await createFederation({
      store,
      artifactsDir: artifacts,
      settings: { bufferSize: 1, noiseMultiplier: 0, clipNorm: 10 },
      training: { learningRate: 0.01, epochs: 2 },
    })
    const app = createApp({ distDir: dir, federation: federation.deps })
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' })
    await new Promise((resolve) => server.once('listening', resolve))
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    close = () => server.close()
  }, 60_000)

  afterAll(async () => {
    close?.()
    await store?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('seeds v1 from the export once, and serves it from the store with a federation block', async () => {
    const manifest = (await (
      await fetch(`${origin}/artifacts/manifest.json`)
    ).json()) as ModelManifest
    expect(validateModelManifest(manifest).ok).toBe(true)
    expect(manifest.version).toBe('v1')
    expect(manifest.federation?.layout).toEqual(federation.deps.settings.layout)
    for (const ref of [manifest.model, manifest.catalogue, manifest.pools, manifest.rules]) {
      const response = await fetch(`${origin}/artifacts/${ref.url}`)
      expect(response.headers.get('etag')).toBe(`"${ref.sha256}"`)
      expect(sha(await response.arrayBuffer())).toBe(ref.sha256)
      if (ref.url.endsWith('.json')) expect(response.headers.get('content-encoding')).toBe('gzip')
    }
    // A second start on the same store does not seed again.
    const again = await createFederation({ store, artifactsDir: path.join(dir, 'artifacts') })
    expect(again.deps.settings.layout).toEqual(federation.deps.settings.layout)
    expect((await store.versions()).map((v) => v.version)).toEqual([1])
  })

  it("takes a device's update over HTTP and publishes v2 from it; v1's files stay available", async () => {
    const v1 = (await (await fetch(`${origin}/artifacts/manifest.json`)).json()) as ModelManifest
    const issued = await (
      await fetch(`${origin}/v1/token`, {
        method: 'POST',
        body: JSON.stringify({ siteKey: 'demo-shop', client: 'device-0001' }),
      })
    ).json()
    const global = decodeWeights(
      new Uint8Array(await (await fetch(`${origin}/artifacts/${v1.model.url}`)).arrayBuffer()),
    )
    const update = (await computeUpdate(
      global,
      [Int32Array.of(1, 2, 3, 4), Int32Array.of(5, 6, 5)],
      {
        baseVersion: 1,
        slice: issued.slice,
        layout: v1.federation!.layout,
        clipNorm: v1.federation!.clipNorm,
        training: { learningRate: v1.federation!.learningRate, epochs: v1.federation!.epochs },
      },
    ))!
    expect(decodeUpdate(update.body).slice).toBe(issued.slice)
    const response = await fetch(`${origin}/v1/updates`, {
      method: 'POST',
      headers: { authorization: `Bearer ${issued.token}` },
      body: update.body as Uint8Array<ArrayBuffer>,
    })
    expect(response.status).toBe(202)
    expect(await federation.publishNow()).toMatchObject({ status: 'published', updates: 1 })
    const v2 = (await (await fetch(`${origin}/artifacts/manifest.json`)).json()) as ModelManifest
    expect(v2.version).toBe('v2')
    expect(v2.model.sha256).not.toBe(v1.model.sha256)
    expect(v2.catalogue).toEqual(v1.catalogue)
    const model = await fetch(`${origin}/artifacts/${v2.model.url}`)
    expect(sha(await model.arrayBuffer())).toBe(v2.model.sha256)
    expect((await fetch(`${origin}/artifacts/${v1.model.url}`)).status).toBe(200)
    const status = await (await fetch(`${origin}/v1/federation`)).json()
    expect(status).toMatchObject({ version: 2, buffered: 0, accepted: 1 })
  })
})
