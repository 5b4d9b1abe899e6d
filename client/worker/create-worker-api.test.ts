import 'fake-indexeddb/auto'
import { artifactFrom, catalogueFrom } from '../../test/fixtures/read-artifact'
import { decodeCoVisitationShard } from '../../shared/compact-artifacts'
import type { CandidatePools, DeviceCatalogue, ModelManifest } from '../../shared/protocol'
import * as tf from '@tensorflow/tfjs-core'
import path from 'node:path'
import { beforeAll, describe, expect, it, vi } from 'vitest'
import { openDB } from 'idb'
import { exploreBucket, outcomeCell } from '../../shared/outcome-counts'
import { fleetTotals } from '../../test/fixtures/exploration-totals'
import { exportTestRelease } from '../../test/fixtures/exported-release'
import { setNodeBackend } from '../../model/node-backend'
import { createWorkerApiWith, type WorkerEnvironment } from './create-worker-api'
import type { TrainingLocks } from './federated/training-lock'

// The worker's behaviour in Node: real storage code on fake-indexeddb, artifacts exported by the
// trainer and served by a fake fetch, backends cpu and wasm. The browser flow is in test/browser.
let files: Map<string, Uint8Array>
let productIds: string[]
let manifest: ModelManifest
let catalogue: DeviceCatalogue

function environment(overrides: Partial<WorkerEnvironment> = {}): WorkerEnvironment {
  return {
    loaders: { wasm: () => setNodeBackend('wasm'), cpu: () => setNodeBackend('cpu') },
    fetch: (async (input: URL | RequestInfo) => {
      const bytes = files.get(path.basename(new URL(String(input)).pathname))
      return bytes
        ? new Response(bytes as Uint8Array<ArrayBuffer>)
        : new Response('', { status: 404 })
    }) as typeof fetch,
    ...overrides,
  }
}

const config = { site: 'test-shop', endpoint: 'http://127.0.0.1/' }

describe('the worker API', () => {
  beforeAll(async () => {
    await setNodeBackend('cpu')
    const release = await exportTestRelease(16)
    files = release.files
    manifest = release.manifest
    catalogue = catalogueFrom(files.get(path.basename(release.manifest.catalogue.url)))
    // In-stock products only: re-ranking rightly drops the others from every list.
    productIds = catalogue.items
      .filter((item: { inStock: boolean }) => item.inStock)
      .slice(0, 5)
      .map((item: { id: string }) => item.id)
  }, 60_000)

  it('refuses to store or recommend before consent', async () => {
    const api = createWorkerApiWith(environment())
    await api.init(config)
    await expect(
      api.track({ event: 'Product Viewed', properties: { product_id: productIds[0] } }),
    ).rejects.toMatchObject({
      name: 'ConsentRequiredError',
    })
    await expect(api.recommend({ scenario: 'trending' })).rejects.toMatchObject({
      name: 'ConsentRequiredError',
    })
    expect((await indexedDB.databases()).map((d) => d.name)).toEqual([])
  })

  it('stores valid events, rejects malformed ones, and recommends from the stored session', async () => {
    const api = createWorkerApiWith(environment())
    await api.init(config)
    await api.setConsent(true)
    expect(
      await api.track({ event: 'Product Viewed', properties: { product_id: 42 } }),
    ).toMatchObject({
      status: 'rejected',
      error: expect.stringContaining('expected properties.product_id'),
    })
    const cold = await api.recommend({ scenario: 'for-you', limit: 10 })
    expect(cold.coldStart).toBe(true)
    for (const id of productIds.slice(0, 3)) {
      expect(await api.track({ event: 'Product Viewed', properties: { product_id: id } })).toEqual({
        status: 'stored',
      })
    }
    const warm = await api.recommend({ scenario: 'for-you', limit: 10 })
    expect(warm.coldStart).toBe(false)
    expect(warm.items.map((i) => i.productId)).not.toEqual(cold.items.map((i) => i.productId))
    const recent = await api.recommend({ scenario: 'recently-viewed', limit: 10 })
    expect(recent.items.map((i) => i.productId)).toEqual(productIds.slice(0, 3).reverse())
    // The lists above may come from the pools while the model loads: ready() waits for it.
    const status = await api.ready()
    expect(status).toMatchObject({ consent: true, events: 3, sessions: 1, modelVersion: 'v1' })
    expect(['wasm', 'cpu']).toContain(status.backend)
    await api.forget()
    expect((await indexedDB.databases()).map((d) => d.name)).toEqual([])
  })

  it('issue 14: the shelves of one page view share no item, even requested concurrently', async () => {
    const api = createWorkerApiWith(environment())
    await api.init(config)
    await api.setConsent(true)
    for (const id of productIds.slice(0, 3)) {
      await api.track({ event: 'Product Viewed', properties: { product_id: id } })
    }
    const productId = productIds[2]!
    const page = (pageView?: string) =>
      Promise.all(
        (['similar', 'frequently-bought-together', 'for-you'] as const).map((scenario) =>
          api.recommend({ scenario, productId, limit: 8, pageView }),
        ),
      )
    const shelves = (await page('pv-1')).map((list) => list.items.map((item) => item.productId))
    const all = shelves.flat()
    expect(new Set(all).size).toBe(all.length)
    expect(shelves[0]).toHaveLength(8)
    // The same page without a page view repeats items: the check above is not vacuous.
    const plain = (await page()).flatMap((list) => list.items.map((item) => item.productId))
    expect(new Set(plain).size).toBeLessThan(plain.length)
    await api.forget()
  })

  it('issue 14: demotes what was shown often and never clicked, until it is clicked', async () => {
    const api = createWorkerApiWith(environment())
    await api.init(config)
    await api.setConsent(true)
    // One item a list: the one shown every time sinks until one never shown outranks it.
    const top = async () => (await api.recommend({ scenario: 'trending', limit: 1 })).items[0]!
    const first = await top()
    const tops: string[] = []
    for (let i = 0; i < 10; i++) tops.push((await top()).productId)
    expect(tops.some((id) => id !== first.productId)).toBe(true)
    await api.track({
      event: 'Product Clicked',
      properties: { product_id: first.productId },
      attribution_id: 'a'.repeat(32),
    })
    // The click ends its demotion: back on top at its first, undemoted score.
    expect(await top()).toEqual(first)
    await api.forget()
  })

  it('fetches the co-visitation shard of the product on screen, once, and no other shard', async () => {
    const { itemsPerShard, shards } = manifest.coVisitation!
    // An in-stock product of the last shard whose neighbours are in stock too.
    const last = shards.length - 1
    const shard = decodeCoVisitationShard(files.get(shards[last]!.url)!)
    if (!shard.ok) throw new Error(shard.error)
    const inStock = new Set(catalogue.items.filter((i) => i.inStock).map((i) => i.index))
    const offset = shard.value.lists.findIndex(
      (list, i) =>
        inStock.has(last * itemsPerShard + i) && list.filter((j) => inStock.has(j)).length >= 3,
    )
    const product = catalogue.items[last * itemsPerShard + offset]!.id
    const fetched: string[] = []
    const api = createWorkerApiWith(
      environment({
        fetch: ((input: URL | RequestInfo, init?: RequestInit) => {
          fetched.push(path.basename(new URL(String(input)).pathname))
          return environment().fetch!(input, init)
        }) as typeof fetch,
      }),
    )
    await api.init(config)
    await api.setConsent(true)
    const request = {
      scenario: 'frequently-bought-together',
      productId: product,
      limit: 10,
    } as const
    // The untrained model ranks the product's embedding neighbours first, so which source the
    // final list keeps says little here (recall's own tests read the lists); the fetches do.
    await api.recommend(request)
    await api.recommend({ ...request, scenario: 'similar' })
    const shardNames = new Set(shards.map((ref) => ref.url))
    expect(fetched.filter((name) => shardNames.has(name))).toEqual([shards[last]!.url])
    await api.forget()
  })

  it('serves the first lists from the pools while the model downloads, then the model', async () => {
    let releaseModel: () => void = () => {}
    const modelHeld = new Promise<void>((resolve) => (releaseModel = resolve))
    const api = createWorkerApiWith(
      environment({
        fetch: (async (input: URL | RequestInfo, init?: RequestInit) => {
          if (String(input).includes('.model.')) await modelHeld
          return environment().fetch!(input, init)
        }) as typeof fetch,
      }),
    )
    await api.init(config)
    expect((await api.status()).lists).toBeNull()
    await api.setConsent(true)
    await api.track({ event: 'Product Viewed', properties: { product_id: productIds[0] } })
    const early = await api.recommend({ scenario: 'for-you', limit: 10 })
    expect(early.modelVersion).toBe('v1+pools')
    expect(early.coldStart).toBe(false)
    expect(early.items.length).toBe(10)
    expect(early.items.map((i) => i.productId)).not.toContain(productIds[0])
    const sources = new Set(early.items.map((i) => i.source))
    expect(sources.has('embedding')).toBe(false)
    expect((await api.status()).lists).toBe('pools')
    expect((await api.status()).modelVersion).toBeNull()
    releaseModel()
    await expect.poll(async () => (await api.status()).lists, { timeout: 30_000 }).toBe('model')
    const personal = await api.recommend({ scenario: 'for-you', limit: 10 })
    expect(personal.modelVersion).toBe('v1')
    await api.forget()
  })

  it('P30: applies the device’s arm, names it in every attribution id, and keeps it on reload', async () => {
    // A holdout: arm "pools" gets the release's lists without the model, even with the model in.
    const withExperiment = (shares: [number, number]) =>
      environment({
        fetch: (async (input: URL | RequestInfo, init?: RequestInit) => {
          if (!String(input).endsWith('manifest.json')) return environment().fetch!(input, init)
          const experiments = [
            {
              id: 'holdout',
              key: 'test-key',
              arms: [
                { name: 'model', share: shares[0], lists: 'model' },
                { name: 'pools', share: shares[1], lists: 'pools' },
              ],
            },
          ]
          return Response.json({ ...manifest, experiments })
        }) as typeof fetch,
      })
    const armOf = (attributionId: string) => /\.holdout:(model|pools)$/.exec(attributionId)?.[1]
    const seen = new Set<string>()
    for (let device = 0; device < 20 && seen.size < 2; device++) {
      const api = createWorkerApiWith(withExperiment([1, 1]))
      await api.init(config)
      await api.setConsent(true)
      await api.ready()
      await api.track({ event: 'Product Viewed', properties: { product_id: productIds[0] } })
      const list = await api.recommend({ scenario: 'for-you', limit: 10 })
      const arm = armOf(list.attributionId)!
      expect(list.attributionId).toMatch(/^[0-9a-f]{32}\.holdout:(model|pools)$/)
      expect(list.modelVersion).toBe(arm === 'pools' ? 'v1+pools' : 'v1')
      seen.add(arm)
      // The device counts the list and a click on it for its arm, in its own database only.
      const click = {
        event: 'Product Clicked',
        properties: { product_id: list.items[0]!.productId },
      }
      await api.track({ ...click, attribution_id: list.attributionId })
      const db = await openDB('pocketrec')
      const outcomes = await db.get('meta', 'outcomes')
      db.close()
      expect(outcomes.counters).toEqual([
        expect.objectContaining({ experiment: 'holdout', arm, counts: expect.any(Array) }),
      ])
      const counts = outcomes.counters[0].counts as number[]
      expect([
        counts[outcomeCell('for-you', 'lists')],
        counts[outcomeCell('for-you', 'clicks')],
      ]).toEqual([1, 1])
      // A reload (another worker on the same database) under shares that now favour the other
      // arm 99 to 1: the device keeps its arm.
      const reloaded = createWorkerApiWith(withExperiment(arm === 'pools' ? [99, 1] : [1, 99]))
      await reloaded.init(config)
      await reloaded.setConsent(true)
      await reloaded.ready()
      for (const scenario of ['for-you', 'trending'] as const) {
        expect(armOf((await reloaded.recommend({ scenario, limit: 5 })).attributionId)).toBe(arm)
      }
      await reloaded.forget() // a new device next time round
    }
    expect([...seen].sort()).toEqual(['model', 'pools'])
  }, 120_000)

  it('P30e: an arm that explores gives its share of a list to the release’s new items', async () => {
    const api = createWorkerApiWith(
      environment({
        fetch: (async (input: URL | RequestInfo, init?: RequestInit) => {
          if (!String(input).endsWith('manifest.json')) return environment().fetch!(input, init)
          const arms = [
            { name: 'a', share: 1, lists: 'model', explore: 0.5 },
            { name: 'b', share: 1, lists: 'model', explore: 0.5 },
          ]
          return Response.json({ ...manifest, experiments: [{ id: 'x', key: 'k', arms }] })
        }) as typeof fetch,
      }),
    )
    await api.init(config)
    await api.setConsent(true)
    await api.ready()
    const list = await api.recommend({ scenario: 'trending', limit: 8 })
    const explored = list.items.filter((item) => item.source === 'explore')
    expect(explored).toHaveLength(4)
    expect(list.items.map((item) => item.source === 'explore')).toEqual([false, true, false, true, false, true, false, true]) // prettier-ignore
    // P30f: the exploring arm counts the explored items' impressions by bucket, and a click on one.
    await api.track({ event: 'Product Clicked', properties: { product_id: explored[1]!.productId }, attribution_id: list.attributionId }) // prettier-ignore
    const db = await openDB('pocketrec')
    const { counters } = await db.get('meta', 'outcomes')
    db.close()
    const buckets = new Map((counters[0].explored as number[][]).map(([b, ...n]) => [b, n]))
    expect(buckets.get(exploreBucket(explored[0]!.productId))?.[0]).toBeGreaterThanOrEqual(1)
    expect(buckets.get(exploreBucket(explored[1]!.productId))).toEqual([1, 1])
    expect([...buckets.values()].reduce((sum, [shown]) => sum + shown!, 0)).toBe(4)
    await api.forget()
  })

  it('P30f: an exploring arm of a federated release draws with the fleet’s counts', async () => {
    const pools = artifactFrom<CandidatePools>(manifest.pools.url, files.get(path.basename(manifest.pools.url))!) // prettier-ignore
    const newIds = pools.new.map((index) => catalogue.items[index]!.id)
    // The fleet ignored every new item but one, which it clicked one time in two.
    const favourite = newIds.at(-1)!
    const totals = fleetTotals(5000)
    totals.clicked[exploreBucket(favourite)] = 2500
    const asked: string[] = []
    const api = createWorkerApiWith(
      environment({
        fetch: (async (input: URL | RequestInfo, init?: RequestInit) => {
          asked.push(new URL(String(input)).pathname)
          if (String(input).endsWith('/v1/exploration')) return Response.json(totals)
          if (!String(input).endsWith('manifest.json')) return environment().fetch!(input, init)
          const arms = ['a', 'b'].map((name) => ({ name, share: 1, lists: 'model', explore: 0.25 }))
          const federation = { helper: '/helper', learningRate: 0.1, epochs: 1, clipNorm: 1, negatives: [], layout: { maxRows: 8, embedDim: 16, denseCoordinates: 0, negativeRows: 0 } } // prettier-ignore
          return Response.json({ ...manifest, federation, experiments: [{ id: 'x', key: 'k', arms }] }) // prettier-ignore
        }) as typeof fetch,
      }),
    )
    await api.init(config)
    await api.setConsent(true)
    await api.ready()
    await api.recommend({ scenario: 'trending', limit: 8 })
    await new Promise((resolve) => setTimeout(resolve, 10))
    expect(asked.filter((p) => p === '/v1/exploration')).toHaveLength(1)
    const explored = []
    for (let i = 0; i < 5; i++) {
      const list = await api.recommend({ scenario: 'trending', limit: 8 })
      explored.push(...list.items.filter((item) => item.source === 'explore').map((item) => item.productId)) // prettier-ignore
    }
    // Two slots a list: the favourite takes one in each (unless the list holds it already).
    expect(explored.filter((id) => id === favourite).length).toBeGreaterThanOrEqual(4)
    expect(asked.filter((p) => p === '/v1/exploration')).toHaveLength(1)
    await api.forget()
  })

  it('P30: a corrupt experiments or outcomes record starts over; lists keep coming', async () => {
    const api = createWorkerApiWith(
      environment({
        fetch: (async (input: URL | RequestInfo, init?: RequestInit) => {
          if (!String(input).endsWith('manifest.json')) return environment().fetch!(input, init)
          const arms = [
            { name: 'a', share: 1, lists: 'model' },
            { name: 'b', share: 1, lists: 'model' },
          ]
          return Response.json({ ...manifest, experiments: [{ id: 'aa', key: 'k', arms }] })
        }) as typeof fetch,
      }),
    )
    await api.init(config)
    await api.setConsent(true)
    const db = await openDB('pocketrec')
    await db.put('meta', { key: 'experiments', deviceId: 42, arms: 'none' })
    // Every field of its shape, but a scenario no list has and three counts instead of 25.
    await db.put('meta', {
      key: 'outcomes',
      lists: [{ attributionId: 'x', scenario: 'nope' }],
      clicked: [],
      counters: [{ experiment: 'aa', key: 'k', arm: 'a', group: 0, counts: [1, 2, 3] }],
    })
    const list = await api.recommend({ scenario: 'trending', limit: 5 })
    expect(list.attributionId).toMatch(/^[0-9a-f]{32}\.aa:(a|b)$/)
    const kept = await db.get('meta', 'experiments')
    expect(kept.deviceId).toMatch(/^[A-Za-z0-9_-]{22}$/)
    const outcomes = await db.get('meta', 'outcomes')
    expect(outcomes.counters).toHaveLength(1)
    expect(outcomes.counters[0].counts[outcomeCell('trending', 'lists')]).toBe(1)
    db.close()
    await api.forget()
  })

  it('serves a cold first list from the pools alone, before the catalogue and the model, with their names and prices', async () => {
    const hold = () => {
      let resolve: () => void = () => {}
      const promise = new Promise<void>((done) => (resolve = done))
      return { promise, resolve }
    }
    const held = { catalogue: hold(), model: hold() }
    const requested: string[] = []
    const api = createWorkerApiWith(
      environment({
        fetch: (async (input: URL | RequestInfo, init?: RequestInit) => {
          const kind = path.basename(new URL(String(input)).pathname).split('.')[1] ?? ''
          requested.push(kind)
          if (kind === 'catalogue' || kind === 'model') await held[kind].promise
          return environment().fetch!(input, init)
        }) as typeof fetch,
      }),
    )
    await api.init(config)
    await api.setConsent(true)
    const first = await api.recommend({ scenario: 'for-you', limit: 10 })
    expect(first.modelVersion).toBe('v1+pools')
    expect(first.coldStart).toBe(true)
    expect(first.items).toHaveLength(10)
    // What the page shows is the catalogue's own entry of each item.
    const byId = new Map(catalogue.items.map((item) => [item.id, item]))
    for (const item of first.items) {
      const entry = byId.get(item.productId)!
      expect(item).toMatchObject({ name: entry.name, category: entry.category, price: entry.price })
    }
    expect(requested).not.toContain('model')
    // A list for a product needs the catalogue: it waits for it, then comes from the pools.
    let productList: string | null = null
    const waiting = api
      .recommend({ scenario: 'similar', productId: productIds[0], limit: 5 })
      .then((list) => (productList = list.modelVersion))
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(productList).toBeNull()
    held.catalogue.resolve()
    await waiting
    expect(productList).toBe('v1+pools')
    expect((await api.status()).lists).toBe('pools')
    held.model.resolve()
    await expect.poll(async () => (await api.status()).lists, { timeout: 30_000 }).toBe('model')
    await api.forget()
  })

  it('falls back to another backend and keeps recommending when the device is lost', async () => {
    let loseDevice: (reason: string) => void = () => {}
    let watched: string | null = null
    const api = createWorkerApiWith(
      environment({
        // Whichever backend wins the probe is the one whose device goes away.
        watchDeviceLoss: (name) =>
          watched === null
            ? ((watched = name), new Promise<string>((resolve) => (loseDevice = resolve)))
            : null,
      }),
    )
    await api.init({ ...config })
    await api.setConsent(true)
    // The model's lists (a first download answers from the pools until the model is in).
    await expect.poll(async () => (await api.status()).lists, { timeout: 20_000 }).toBe('model')
    await api.track({ event: 'Product Viewed', properties: { product_id: productIds[0] } })
    const before = await api.recommend({ scenario: 'for-you' })
    const first = (await api.status()).backend
    expect(watched).toBe(first)
    const other = first === 'wasm' ? 'cpu' : 'wasm'
    loseDevice('unknown: simulated reset')
    await expect.poll(async () => (await api.status()).backend, { timeout: 20_000 }).toBe(other)
    expect((await api.status()).backendReason).toMatch(
      new RegExp(`^${first} device lost \\(unknown: simulated reset\\)`),
    )
    const after = await api.recommend({ scenario: 'for-you' })
    expect(after.backend).toBe(other)
    expect(after.items.map((i) => i.productId)).toEqual(before.items.map((i) => i.productId))
    expect(tf.getBackend()).toBe(other)
    await api.forget()
  }, 60_000)

  it('runs on cpu when WebAssembly is refused, even where wasm was forced, and says why', async () => {
    const api = createWorkerApiWith(
      environment({ wasmRefused: () => "WebAssembly refused: no 'wasm-unsafe-eval'" }),
    )
    await api.init({ ...config, backend: 'wasm' })
    await api.setConsent(true)
    const status = await api.ready()
    expect(status).toMatchObject({
      backend: 'cpu',
      error: { code: 'E_WASM_BLOCKED', message: "WebAssembly refused: no 'wasm-unsafe-eval'" },
    })
    expect(status.probes.map((p) => p.backend)).toEqual(['cpu'])
    expect((await api.recommend({ scenario: 'trending', limit: 3 })).backend).toBe('cpu')
    await api.forget()
  }, 60_000)

  it('tells a fetch the CSP refused (E_CSP_CONNECT) from a lost one (E_NETWORK)', async () => {
    const refusing = new EventTarget()
    const failing = (refused: boolean) =>
      (async (input: URL | RequestInfo) => {
        if (refused) {
          // As Chromium does: the violation is reported just after the fetch has rejected.
          setTimeout(() =>
            refusing.dispatchEvent(
              Object.assign(new Event('securitypolicyviolation'), {
                effectiveDirective: 'connect-src',
                blockedURI: String(input),
              }),
            ),
          )
        }
        throw new TypeError('Failed to fetch')
      }) as typeof fetch
    for (const [refused, code, says] of [
      [true, 'E_CSP_CONNECT', 'add http://127.0.0.1 to connect-src'],
      [false, 'E_NETWORK', 'Failed to fetch'],
    ] as const) {
      const api = createWorkerApiWith(
        environment({ fetch: failing(refused), policyEvents: refusing }),
      )
      await api.init(config)
      await api.setConsent(true)
      // ready() answers with the reason instead of rejecting; recommend rejects with it.
      const { error } = await api.ready()
      expect(error).toMatchObject({ code, message: expect.stringContaining(says) })
      // The loader hears of it through nextError(), which answers once it differs from `seen`.
      await expect(api.nextError(null)).resolves.toEqual(error)
      await expect(api.recommend({ scenario: 'trending' })).rejects.toMatchObject({
        name: 'ModelUnavailableError',
        code,
      })
      await api.forget()
    }
  })

  it('clears a failed start from status once a start succeeds', async () => {
    let offline = true
    const api = createWorkerApiWith(
      environment({
        fetch: (async (input: URL | RequestInfo, init?: RequestInit) => {
          if (offline) throw new TypeError('Failed to fetch')
          return environment().fetch!(input, init)
        }) as typeof fetch,
      }),
    )
    await api.init(config)
    await api.setConsent(true)
    expect((await api.ready()).error?.code).toBe('E_NETWORK')
    offline = false
    await api.recommend({ scenario: 'trending' })
    expect((await api.status()).error).toBeNull()
    await api.forget()
  }, 60_000)

  it('ignores a backend it does not know, with a warning, and probes instead', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const api = createWorkerApiWith(environment())
    await api.init({ ...config, backend: 'gpu' })
    expect(warn).toHaveBeenCalledWith(
      'pocketrec: ignored backend "gpu"; expected one of webgpu, webgl, wasm, cpu',
    )
    warn.mockRestore()
    await api.setConsent(true)
    const status = await api.ready()
    expect(status.probes.map((p) => p.backend)).toEqual(['webgpu', 'webgl', 'wasm', 'cpu'])
    await api.forget()
  }, 60_000)

  it('fine-tunes after a pause only in the tab that gets the training lock', async () => {
    // A lock manager shared by two "tabs": whoever asks first holds the lock until its run ends.
    const requests: string[] = []
    let holder: string | null = 'another tab'
    const locks: TrainingLocks = {
      async request(name, options, callback) {
        requests.push(`${name} ${JSON.stringify(options)}`)
        if (holder !== null) return callback(null)
        holder = 'this tab'
        try {
          return await callback({ name })
        } finally {
          holder = null
        }
      },
    }
    const api = createWorkerApiWith(environment({ locks }))
    await api.init(config)
    await api.setConsent(true)
    for (const id of productIds.slice(0, 3)) {
      await api.track({ event: 'Product Viewed', properties: { product_id: id } })
    }
    // The idle pause (1.5 s) passes; the other tab holds the lock, so this one skips the run.
    await expect.poll(() => requests.length, { timeout: 5_000 }).toBe(1)
    expect(requests[0]).toBe('pocketrec-training {"ifAvailable":true}')
    expect((await api.status()).training).toMatchObject({ state: 'idle', steps: 0 })

    holder = null // the other tab closed
    await api.track({ event: 'Product Viewed', properties: { product_id: productIds[3] } })
    await expect
      .poll(async () => (await api.status()).training.steps, { timeout: 30_000 })
      .toBeGreaterThan(0)
    expect(requests).toHaveLength(2)
    await expect
      .poll(async () => (await api.status()).training.state, { timeout: 30_000 })
      .toBe('idle')
    await api.forget()
  }, 90_000)
})
