import path from 'node:path'
import { artifactFrom } from '../../test/fixtures/read-artifact'
import { beforeAll, describe, expect, it } from 'vitest'
import type { CandidatePools, Catalogue } from '../../shared/protocol'
import { setNodeBackend } from '../../model/node-backend'
import { exportTestRelease } from '../../test/fixtures/exported-release'
import { decodeCoVisitationShard } from '../../shared/compact-artifacts'
import { createPoolsOnlyApiWith, poolsOnlyReason } from './pools-only'

// The page's fallback when no worker may start: lists from the pools, no model. The browser
// flow (a real CSP, zero long tasks) is in test/browser/page-policies.browser.test.ts.
let files: Map<string, Uint8Array>
let catalogue: Catalogue
let pools: CandidatePools
/** Co-visitation as the shards carry it (P2b): item index → its neighbours. */
let coVisited: Map<number, readonly number[]>
const requested: string[] = []
const config = { site: 'test-shop', endpoint: 'http://127.0.0.1/' }
const why = poolsOnlyReason(['blob-worker: the script failed to load'], ['worker-src'])

const serve = (async (input: URL | RequestInfo) => {
  const name = path.basename(new URL(String(input)).pathname)
  requested.push(name)
  const bytes = files.get(name)
  return bytes ? new Response(bytes as Uint8Array<ArrayBuffer>) : new Response('', { status: 404 })
}) as typeof fetch

const decode = <T>(url: string): T => artifactFrom<T>(url, files.get(path.basename(url))!)

beforeAll(async () => {
  await setNodeBackend('cpu') // the fixture trains a tiny model; the module under test runs none
  const release = await exportTestRelease(16)
  files = release.files
  catalogue = decode(release.manifest.catalogue.url)
  pools = decode(release.manifest.pools.url)
  coVisited = new Map()
  for (const ref of release.manifest.coVisitation?.shards ?? []) {
    const shard = decodeCoVisitationShard(files.get(path.basename(ref.url))!)
    if (!shard.ok) throw new Error(shard.error)
    shard.value.lists.forEach((list, i) => coVisited.set(shard.value.first + i, list))
  }
}, 60_000)

describe('poolsOnlyReason', () => {
  it('says E_WORKER_BLOCKED when the page reported a worker-src violation', () => {
    expect(why.code).toBe('E_WORKER_BLOCKED')
    expect(why.message).toContain('blob-worker: the script failed to load')
    expect(why.message).toContain('worker-src')
  })

  it('says E_WORKER_START when no policy refused a worker (a 404, an old browser)', () => {
    const reason = poolsOnlyReason(['blob-worker: x'], ['connect-src'])
    expect(reason.code).toBe('E_WORKER_START')
    expect(reason.message).toContain("worker-src must list the worker's origin as well as blob:")
  })
})

describe('the pools-only recommender', () => {
  it('serves trending lists in pool order from the pools, without fetching the model', async () => {
    requested.length = 0
    const api = createPoolsOnlyApiWith(why, { fetch: serve })
    expect((await api.init(config)).error).toEqual(why)
    await expect(api.recommend({ scenario: 'trending' })).rejects.toMatchObject({
      name: 'ConsentRequiredError',
    })
    await api.setConsent(true)
    const list = await api.recommend({ scenario: 'trending', limit: 5 })
    const inStock = new Map(catalogue.items.map((item) => [item.index, item]))
    const expected = [...pools.trending, ...pools.popular, ...pools.new]
      .filter((index, i, all) => all.indexOf(index) === i && inStock.get(index)?.inStock)
      .slice(0, 5)
      .map((index) => inStock.get(index)!.id)
    expect(list.items.map((item) => item.productId)).toEqual(expected)
    expect(list).toMatchObject({ backend: 'none', modelVersion: 'v1+pools' })
    expect(requested.some((name) => name.includes('model'))).toBe(false)
    const status = await api.ready()
    expect(status).toMatchObject({ backend: null, modelVersion: 'v1', error: why })
    expect(status.backendReason).toContain('pools-only')
  })

  it("answers a product's co-visited items for similar, never the product itself", async () => {
    const api = createPoolsOnlyApiWith(why, { fetch: serve })
    await api.init(config)
    await api.setConsent(true)
    const [key, neighbours] = [...coVisited].find(([, n]) => n.length > 2)!
    const product = catalogue.items.find((item) => item.index === key)!
    const list = await api.recommend({ scenario: 'similar', productId: product.id, limit: 3 })
    expect(list.items.length).toBeGreaterThan(0)
    expect(list.items.map((item) => item.productId)).not.toContain(product.id)
    const first = list.items[0]!
    expect(first.source).toBe('co-visitation')
    expect(neighbours).toContain(catalogue.items.find((i) => i.id === first.productId)!.index)
  })

  it('serves the first trending list from the pools alone; a product list waits for the catalogue', async () => {
    let release: () => void = () => {}
    const held = new Promise<void>((resolve) => (release = resolve))
    const holding = (async (input: URL | RequestInfo, init?: RequestInit) => {
      if (String(input).includes('.catalogue.')) await held
      return serve(input, init)
    }) as typeof fetch
    const api = createPoolsOnlyApiWith(why, { fetch: holding })
    await api.init(config)
    await api.setConsent(true)
    const list = await api.recommend({ scenario: 'trending', limit: 5 })
    const byId = new Map(catalogue.items.map((item) => [item.id, item]))
    expect(list.items).toHaveLength(5)
    for (const item of list.items) {
      expect(item).toMatchObject({ name: byId.get(item.productId)!.name })
      expect(item.price).toBe(byId.get(item.productId)!.price)
    }
    let similar: string | null = null
    const product = list.items[0]!.productId
    const waiting = api
      .recommend({ scenario: 'similar', productId: product, limit: 3 })
      .then((answer) => (similar = answer.modelVersion))
    await new Promise((resolve) => setTimeout(resolve, 30))
    expect(similar).toBeNull()
    release()
    await waiting
    expect(similar).toBe('v1+pools')
  })

  it('stores nothing: track is rejected and says why', async () => {
    const api = createPoolsOnlyApiWith(why, { fetch: serve })
    await api.init(config)
    await api.setConsent(true)
    await expect(api.track({ event: 'Product Viewed' })).resolves.toEqual({
      status: 'rejected',
      error: 'pools-only: nothing is stored (E_WORKER_BLOCKED)',
    })
  })

  it('reports a download the CSP refused as E_CSP_CONNECT, then why no worker runs', async () => {
    const scope = new EventTarget()
    const refused = (async (input: URL | RequestInfo) => {
      setTimeout(() =>
        scope.dispatchEvent(
          Object.assign(new Event('securitypolicyviolation'), {
            effectiveDirective: 'connect-src',
            blockedURI: String(input),
          }),
        ),
      )
      throw new TypeError('Failed to fetch')
    }) as typeof fetch
    const api = createPoolsOnlyApiWith(why, { fetch: refused, policyEvents: scope })
    await api.init(config)
    await api.setConsent(true)
    expect((await api.ready()).error?.code).toBe('E_CSP_CONNECT')
    await expect(api.recommend({ scenario: 'trending' })).rejects.toMatchObject({
      code: 'E_CSP_CONNECT',
    })
  })
})
