import { artifactFrom, shopCatalogue } from '../../test/fixtures/read-artifact'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { validateCatalogue } from '../../shared/artifacts'
import { decodePools } from '../../shared/compact-artifacts'
import type { Catalogue, DeviceCatalogue, ModelManifest } from '../../shared/protocol'
import { writeTestRelease } from '../../test/fixtures/exported-release'
import { setNodeBackend } from '../../model/node-backend'
import { createApp } from '../app'
import { resolveFederationConfig } from '../config'
import { openSqliteStore } from '../storage/sqlite-store'
import type { FederationStore } from '../storage/store'
import { createFederation, type Federation } from './service'

// The catalogue upload (PUT /v1/admin/catalogue, P25; docs/catalogue.schema.json) as a shop's
// system sends it: a malformed one is refused with the field named, and an item's imageUrl
// travels through the release to devices.
const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-catalogue-upload-'))
const ADMIN = 'the-catalogue-upload-test-admin-token'
let store: FederationStore
let federation: Federation
let app: ReturnType<typeof createApp>
let catalogue: Catalogue

beforeAll(async () => {
  await setNodeBackend('cpu')
  const artifacts = path.join(dir, 'artifacts')
  await writeTestRelease(8, artifacts)
  store = openSqliteStore(path.join(dir, 'server.db'))
  federation = await createFederation(
    store,
    resolveFederationConfig({ artifactsDir: artifacts, adminToken: ADMIN, promotion: 'gated' }),
  )
  app = createApp({ distDir: dir, federation: federation.deps })
  // What a shop uploads has dates; what devices get does not (P2b).
  catalogue = shopCatalogue(await artifact<DeviceCatalogue>('catalogue'))
}, 60_000)

afterAll(async () => {
  await federation?.close()
  await store?.close()
  rmSync(dir, { recursive: true, force: true })
})

async function artifact<T>(kind: 'catalogue'): Promise<T> {
  const manifest = (await (await app.request('/artifacts/manifest.json')).json()) as ModelManifest
  const response = await app.request(`/artifacts/${manifest[kind].url}`)
  return artifactFrom<T>(manifest[kind].url, new Uint8Array(await response.arrayBuffer()))
}

async function upload(body: unknown) {
  const response = await app.request('/v1/admin/catalogue', {
    method: 'PUT',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  const answer = (await response.json()) as { error?: string; message?: string }
  return { status: response.status, ...answer }
}

/** The catalogue with item 3 changed by `change`. */
function withItem3(change: (item: Record<string, unknown>) => void): unknown {
  const copy = structuredClone(catalogue) as unknown as { items: Array<Record<string, unknown>> }
  change(copy.items[3]!)
  return copy
}

describe('the catalogue upload format (issue 14)', () => {
  it('refuses a malformed item with a 400 that names the field, and publishes nothing', async () => {
    const before = await store.versions()
    const cases: Array<[unknown, RegExp]> = [
      [withItem3((item) => (item.price = '12.50')), /^\/items\/3\/price must be number$/],
      [withItem3((item) => delete item.id), /^\/items\/3 must have required property 'id'$/],
      [
        withItem3((item) => (item.imageUrl = 'javascript:alert(1)')),
        /^\/items\/3\/imageUrl must be an http\(s\) URL or a path from the shop’s root, such as \/images\/sku-1\.jpg, got "javascript:alert\(1\)"$/,
      ],
      [
        withItem3((item) => (item.imageUrl = 'shoes/1.jpg')),
        /^\/items\/3\/imageUrl must be an http\(s\) URL or a path/,
      ],
      [
        withItem3((item) => (item.imageUrl = `https://cdn.example/${'a'.repeat(2048)}`)),
        /^\/items\/3\/imageUrl must NOT have more than 2048 characters$/,
      ],
      [
        withItem3((item) => (item.image = '/a.jpg')),
        /^\/items\/3 must NOT have additional properties: "image"$/,
      ],
    ]
    for (const [body, message] of cases) {
      const answer = await upload(body)
      expect(answer).toMatchObject({ status: 400, error: 'E_CATALOGUE' })
      expect(answer.message).toMatch(message)
    }
    expect(await store.versions()).toEqual(before)
  })

  it('publishes each item’s imageUrl to devices, whose guard takes it', async () => {
    const images = [
      'https://cdn.shop.example/p/1.jpg?w=320',
      '/images/sku 2.jpg',
      '//cdn.example/3.png',
    ]
    const body = withItem3((item) => (item.imageUrl = images[0]))
    ;(body as Catalogue).items[4]!.imageUrl = images[2]
    expect(await upload(body)).toMatchObject({ status: 201 })
    const published = await artifact<DeviceCatalogue>('catalogue')
    expect(published.items[3]!.imageUrl).toBe(images[0])
    expect(published.items[4]!.imageUrl).toBe(images[2])
    expect(published.items[5]!.imageUrl).toBeUndefined()
    expect(validateCatalogue(published, { withoutDates: true }).ok).toBe(true)
    // A path with a space is no URL a page could use as it is: refused by devices too.
    const spaced = withItem3((item) => (item.imageUrl = images[1]))
    expect(validateCatalogue(spaced)).toMatchObject({
      ok: false,
      error: expect.stringMatching(/items\[3\]\.imageUrl to be an http\(s\) URL/),
    })
  })

  it("rewrites the pools' first-list items from the uploaded catalogue (P2c)", async () => {
    const manifest = (await (await app.request('/artifacts/manifest.json')).json()) as ModelManifest
    const poolsBytes = async (url: string) =>
      new Uint8Array(await (await app.request(`/artifacts/${url}`)).arrayBuffer())
    const before = decodePools(await poolsBytes(manifest.pools.url))
    if (!before.ok || !before.value.items) throw new Error('expected pools with first-list items')
    const first = before.value.pools.trending[0]!
    const body = structuredClone(catalogue)
    const item = body.items.find((i) => i.index === first)!
    item.price = item.price + 1.25
    item.name = 'Renamed for the first list'
    expect(await upload(body)).toMatchObject({ status: 201 })
    const next = (await (await app.request('/artifacts/manifest.json')).json()) as ModelManifest
    const after = decodePools(await poolsBytes(next.pools.url))
    if (!after.ok || !after.value.items) throw new Error('expected pools with first-list items')
    expect(after.value.items.items.find((i) => i.index === first)).toMatchObject({
      name: 'Renamed for the first list',
      price: item.price,
    })
  })
})
