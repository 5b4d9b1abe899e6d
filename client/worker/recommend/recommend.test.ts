import * as tf from '@tensorflow/tfjs-core'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { RecommendRequest, RerankRules } from '../../../shared/protocol'
import { setNodeBackend } from '../../../model/node-backend'
import { createGruModel, withBonuses, type GruModel } from '../../../model/gru-model'
import { createRecommender, type RecommendContext, type RecommenderOptions } from './recommend'
import { MIN_INDEXED_ITEMS } from './neighbour-index'
import {
  catalogue,
  emptyContext,
  makeItem,
  noRules,
  OUT_OF_STOCK,
  pools,
  tinyConfig,
} from './test-fixtures'

const DAY_MS = 86_400_000
const NOW = Date.UTC(2026, 10, 27)
const ids = (response: { items: Array<{ productId: string }> }) =>
  response.items.map((item) => item.productId)
const context = (overrides: Partial<RecommendContext>): RecommendContext => ({
  ...emptyContext,
  ...overrides,
})

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`recommend on ${backend}`, () => {
    let model: GruModel
    let before = 0
    const recommenders: Array<{ dispose(): void }> = []
    const create = (options: Partial<RecommenderOptions> = {}) => {
      const recommender = createRecommender({
        model,
        modelVersion: 'v-test',
        catalogue,
        pools,
        rules: noRules,
        now: () => NOW,
        ...options,
      })
      recommenders.push(recommender)
      return recommender
    }

    beforeAll(async () => {
      await setNodeBackend(backend)
      model = createGruModel(tinyConfig, 3)
    })
    beforeEach(() => {
      before = tf.memory().numTensors
    })
    afterEach(() => {
      for (const r of recommenders.splice(0)) r.dispose()
      expect(tf.memory().numTensors).toBe(before)
    })
    afterAll(() => model.dispose())

    it('serves trending in pool order, minus out-of-stock items, on a cold start', async () => {
      const response = await create().recommend({ scenario: 'for-you', limit: 5 }, emptyContext)
      expect(ids(response)).toEqual(['p5', 'p12', 'p7', 'p20', 'p1'])
      expect(response.coldStart).toBe(true)
      expect(response.items.every((item) => item.source === 'trending')).toBe(true)
    })

    it('treats a session of products the catalogue does not know as a cold start', async () => {
      const response = await create().recommend(
        { scenario: 'for-you', limit: 3 },
        context({ sessionProductIds: ['sku-unknown'] }),
      )
      expect(response.coldStart).toBe(true)
      expect(ids(response)).toEqual(['p5', 'p12', 'p7'])
    })

    it('changes the for-you list with the session', async () => {
      const recommender = create()
      const cold = await recommender.recommend({ scenario: 'for-you' }, emptyContext)
      const a = await recommender.recommend(
        { scenario: 'for-you' },
        context({ sessionProductIds: ['p4', 'p9', 'p17'] }),
      )
      const b = await recommender.recommend(
        { scenario: 'for-you' },
        context({ sessionProductIds: ['p30', 'p31', 'p33'] }),
      )
      expect(a.coldStart).toBe(false)
      expect(a.items).toHaveLength(10)
      expect(ids(a)).not.toEqual(ids(cold))
      expect(ids(a)).not.toEqual(ids(b))
      // The last item looked at is not recommended back.
      expect(ids(a)).not.toContain('p17')
      expect(ids(b)).not.toContain('p33')
    })

    it("ranks the last item's co-visited items up by the model's co-visitation bonus, in list order", async () => {
      const shopper = context({ sessionProductIds: ['p4', 'p9', 'p17'] })
      const plain = await create().recommend({ scenario: 'for-you', limit: 3 }, shopper)
      // Steps of 5 % of the bonus a rank, above any two scores' spread (2 × scale = 24): the list's
      // order wins whatever the untrained model scores.
      const covisiting = withBonuses(model, { coVisitBonus: 1000 })
      const response = await create({ model: covisiting }).recommend({ scenario: 'for-you', limit: 3 }, shopper) // prettier-ignore
      // p17's list in the pools: 18, 24, 30.
      expect(ids(response)).toEqual(['p18', 'p24', 'p30'])
      expect(ids(plain)).not.toEqual(ids(response))
    })

    it('is deterministic apart from the attribution id and latency', async () => {
      const recommender = create()
      const request: RecommendRequest = { scenario: 'for-you', limit: 8 }
      const shopper = context({ sessionProductIds: ['p4', 'p9'] })
      const first = await recommender.recommend(request, shopper)
      const second = await recommender.recommend(request, shopper)
      expect(second.items).toEqual(first.items)
      expect(second.attributionId).not.toBe(first.attributionId)
      expect(first.attributionId).toMatch(/^[0-9a-f]{32}$/)
    })

    it('carries an item’s imageUrl from the catalogue to the page, and none where it has none', async () => {
      const items = catalogue.items.map((item) =>
        item.id === 'p12' ? { ...item, imageUrl: '/images/p12.jpg' } : item,
      )
      const response = await create({ catalogue: { ...catalogue, items } }).recommend(
        { scenario: 'for-you', limit: 3 },
        emptyContext,
      )
      expect(response.items.map((item) => [item.productId, item.imageUrl])).toEqual([
        ['p5', undefined],
        ['p12', '/images/p12.jpg'],
        ['p7', undefined],
      ])
      expect('imageUrl' in response.items[0]!).toBe(false)
    })

    it('labels every item with its recall source and fills in the response', async () => {
      const response = await create().recommend(
        { scenario: 'for-you', limit: 20 },
        context({ sessionProductIds: ['p4', 'p9', 'p17'] }),
      )
      const sources = new Set([
        'trending',
        'popular',
        'new',
        'category',
        'co-visitation',
        'embedding',
      ])
      expect(response.items.length).toBe(20)
      for (const item of response.items) {
        expect(sources).toContain(item.source)
        expect(item.score).toBeGreaterThan(0)
      }
      expect(response).toMatchObject({ scenario: 'for-you', modelVersion: 'v-test', backend })
      expect(response.latencyMs).toBeGreaterThanOrEqual(0)
    })

    it('never shows out-of-stock, cart or recently bought items', async () => {
      const recommender = create({ rules: { ...noRules, excludePurchasedDays: 30 } })
      const shopper = context({
        sessionProductIds: ['p4', 'p9', 'p17'],
        cartProductIds: ['p5', 'p18'],
        purchases: [
          { productId: 'p12', timestamp: NOW - 2 * DAY_MS },
          { productId: 'p7', timestamp: NOW - 45 * DAY_MS },
        ],
      })
      const shown = new Set<string>()
      for (const scenario of ['for-you', 'trending'] as const) {
        for (const item of (await recommender.recommend({ scenario, limit: 50 }, shopper)).items) {
          shown.add(item.productId)
        }
      }
      for (const index of OUT_OF_STOCK) expect(shown).not.toContain(`p${index}`)
      for (const hidden of ['p5', 'p18', 'p12']) expect(shown).not.toContain(hidden)
      // Bought 45 days ago, outside the 30-day window.
      expect(shown).toContain('p7')
    })

    it('applies caps, boosts and per-scenario pins from the rules', async () => {
      const rules: RerankRules = {
        ...noRules,
        maxPerCategory: 2,
        boosts: { p33: 1000 },
        pins: { trending: [{ productId: 'p39', position: 1 }] },
      }
      const response = await create({ rules }).recommend(
        { scenario: 'trending', limit: 6 },
        emptyContext,
      )
      // p33 jumps to the top; p39 is pinned at position 1; at most two per category.
      expect(ids(response)[0]).toBe('p33')
      expect(ids(response)[1]).toBe('p39')
      const perCategory = new Map<string, number>()
      for (const item of response.items) {
        perCategory.set(item.category, (perCategory.get(item.category) ?? 0) + 1)
      }
      expect(Math.max(...perCategory.values())).toBeLessThanOrEqual(2)
      expect(response.coldStart).toBe(false)
    })

    it('pins a product into a personalised list with the model scoring it', async () => {
      const rules: RerankRules = {
        ...noRules,
        pins: { 'for-you': [{ productId: 'p38', position: 2 }] },
      }
      const response = await create({ rules }).recommend(
        { scenario: 'for-you', limit: 5 },
        context({ sessionProductIds: ['p4', 'p9'] }),
      )
      expect(ids(response)[2]).toBe('p38')
      expect(response.items[2]!.score).toBeGreaterThan(0)
    })

    it('similar: neighbours and co-visitations of the product, never the product itself', async () => {
      const recommender = create()
      for (const productId of ['p8', 'p21', 'p0']) {
        const response = await recommender.recommend(
          { scenario: 'similar', productId, limit: 20 },
          context({ sessionProductIds: ['p4', productId] }),
        )
        expect(ids(response)).not.toContain(productId)
        expect(response.items.length).toBeGreaterThan(0)
        for (const item of response.items)
          expect(['embedding', 'co-visitation']).toContain(item.source)
      }
    })

    it('similar without a session ranks by similarity to the product alone', async () => {
      const response = await create().recommend(
        { scenario: 'similar', productId: 'p8', limit: 5 },
        emptyContext,
      )
      expect(response.coldStart).toBe(false)
      expect(response.items).toHaveLength(5)
    })

    it('issue 14: a capped similar list of 6 returns 6', async () => {
      // Four categories and one item each allowed: the cap alone used to cut the list to 4.
      const rules: RerankRules = { ...noRules, maxPerCategory: 1 }
      const response = await create({ rules }).recommend(
        { scenario: 'similar', productId: 'p8', limit: 6 },
        emptyContext,
      )
      expect(response.items).toHaveLength(6)
      // The cap still decides the top: the first four are one of each category.
      expect(new Set(response.items.slice(0, 4).map((item) => item.category)).size).toBe(4)
    })

    it('frequently bought together: co-visitations of the product first, not the product', async () => {
      const response = await create({ recallSizes: { embedding: 3 } }).recommend(
        { scenario: 'frequently-bought-together', productId: 'p8', limit: 10 },
        emptyContext,
      )
      // Co-visited with p8: p9, p15, p21; the rest of the three-item budget is empty.
      expect(new Set(ids(response))).toEqual(new Set(['p9', 'p15', 'p21']))
      expect(response.items.every((item) => item.source === 'co-visitation')).toBe(true)
    })

    it('recently viewed: newest first, each once, without the current product or out-of-stock', async () => {
      const response = await create().recommend(
        { scenario: 'recently-viewed', productId: 'p4' },
        context({ recentlyViewed: ['p1', 'p2', 'p3', 'p6', 'p4', 'p2'] }),
      )
      expect(ids(response)).toEqual(['p2', 'p6', 'p1'])
      expect(response.items.every((item) => item.source === 'history')).toBe(true)
    })

    it('recently viewed is empty, not trending, for a shopper with no history', async () => {
      const response = await create().recommend({ scenario: 'recently-viewed' }, emptyContext)
      expect(response.items).toEqual([])
    })

    it('rejects invalid requests with InvalidRequestError saying what arrived', async () => {
      const recommender = create()
      const cases: Array<[unknown, RegExp]> = [
        [null, /expected a request object, got null/],
        [
          { scenario: 'bestsellers' },
          /expected scenario to be one of for-you, .*; got "bestsellers"/,
        ],
        [
          { scenario: 'for-you', limit: 0 },
          /expected limit to be an integer from 1 to 50, got number 0/,
        ],
        [{ scenario: 'for-you', limit: 51 }, /got number 51/],
        [{ scenario: 'for-you', limit: 2.5 }, /got number 2.5/],
        [{ scenario: 'for-you', limit: '10' }, /got "10"/],
        [{ scenario: 'similar' }, /expected a productId for scenario similar, got none/],
        [
          { scenario: 'frequently-bought-together', productId: 'sku-404' },
          /expected productId to name a catalogue product .*, got unknown "sku-404"/,
        ],
        [
          { scenario: 'trending', productId: 42 },
          /expected productId to be a non-empty string, got number 42/,
        ],
      ]
      for (const [request, message] of cases) {
        const error = await recommender
          .recommend(request as RecommendRequest, emptyContext)
          .catch((e: unknown) => e)
        expect(error).toBeInstanceOf(Error)
        expect((error as Error).name).toBe('InvalidRequestError')
        expect((error as Error).message).toMatch(message)
      }
    })

    it('reads new weights after refresh, holding no tensor of its own', async () => {
      const own = createGruModel(tinyConfig, 23)
      const recommender = createRecommender({
        model: own,
        modelVersion: 'v-test',
        catalogue,
        pools,
        rules: noRules,
      })
      const tensors = tf.memory().numTensors
      const shopper = context({ sessionProductIds: ['p4', 'p9'] })
      const ids = async () =>
        (await recommender.recommend({ scenario: 'similar', productId: 'p8' }, shopper)).items
          .map((item) => item.productId)
          .join()
      const first = await ids()
      // The item table is JS memory read back once: no tensor stays behind.
      expect(tf.memory().numTensors).toBe(tensors)
      // Fine-tuning changed the weights: the snapshot is kept until refresh() drops it.
      const table = own.variables.get('item_embedding')!
      tf.tidy(() => table.assign(tf.randomNormal(table.shape, 0, 1, 'float32', 99)))
      expect(await ids()).toBe(first)
      recommender.refresh()
      expect(await ids()).not.toBe(first)
      recommender.dispose()
      own.dispose()
      const error = await recommender
        .recommend({ scenario: 'trending' }, shopper)
        .catch((e: unknown) => e)
      expect((error as Error).name).toBe('ModelUnavailableError')
    })

    it('builds no table for a request still in flight when it is disposed', async () => {
      const recommender = create()
      const pending = recommender
        .recommend({ scenario: 'for-you' }, context({ sessionProductIds: ['p4', 'p9'] }))
        .catch((e: unknown) => e)
      recommender.dispose()
      expect(((await pending) as Error).name).toBe('ModelUnavailableError')
    })

    it('refuses a catalogue whose rows do not fit the model', () => {
      const bad = {
        ...catalogue,
        items: [...catalogue.items, { ...catalogue.items[0]!, id: 'x', index: 40 }],
      }
      expect(() => create({ catalogue: bad })).toThrow(
        /expected catalogue item "x" to have an index in 0..39/,
      )
    })
  })
}

describe('neighbour index in the recommender (wasm)', () => {
  const nItems = MIN_INDEXED_ITEMS
  const config = { ...tinyConfig, nItems }
  const big = {
    type: 'pocketrec-catalogue' as const,
    items: Array.from({ length: nItems }, (_, i) => makeItem(i)),
  }
  const shopper = context({ sessionProductIds: ['p4', 'p900', 'p12000'] })
  let model: GruModel

  beforeAll(async () => {
    await setNodeBackend('wasm')
    model = createGruModel(config, 5)
  })
  afterAll(() => model.dispose())

  const waitForIndex = async (recommender: { recallIndex(): { state: string } }) => {
    while (recommender.recallIndex().state === 'building') {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    return recommender.recallIndex()
  }

  it('is built after the first list, then serves the lists exact recall would (probing all)', async () => {
    const options = { model, modelVersion: 'v-big', catalogue: big, pools, rules: noRules }
    const exact = createRecommender({ ...options, neighbourIndex: false })
    const indexed = createRecommender({ ...options, neighbourIndex: { probeItems: nItems } })
    try {
      expect(exact.recallIndex()).toEqual({ state: 'exact' })
      expect(indexed.recallIndex()).toEqual({ state: 'pending' })
      const request = { scenario: 'for-you', limit: 20 } as const
      const first = await indexed.recommend(request, shopper)
      expect(indexed.recallIndex().state).toBe('building')
      const status = await waitForIndex(indexed)
      expect(status).toMatchObject({ state: 'ready', clusters: 128 }) // √16,384
      const want = await exact.recommend(request, shopper)
      const got = await indexed.recommend(request, shopper)
      expect(ids(got)).toEqual(ids(want))
      expect(got.items.map((i) => i.source)).toEqual(want.items.map((i) => i.source))
      expect(ids(first)).toEqual(ids(want))
      // A refresh (after local fine-tuning) keeps the clusters.
      indexed.refresh()
      expect(indexed.recallIndex().state).toBe('ready')
    } finally {
      exact.dispose()
      indexed.dispose()
    }
  })

  it('stops building when disposed, and stays exact below the size that needs it', async () => {
    const recommender = createRecommender({
      model,
      modelVersion: 'v-big',
      catalogue: big,
      pools,
      rules: noRules,
    })
    await recommender.recommend({ scenario: 'for-you' }, shopper)
    recommender.dispose()
    expect(await waitForIndex(recommender)).toMatchObject({ state: 'failed' })
    const small = createRecommender({
      model: createGruModel(tinyConfig, 1),
      modelVersion: 'v',
      catalogue,
      pools,
      rules: noRules,
    })
    expect(small.recallIndex()).toEqual({ state: 'exact' })
    small.dispose()
  })
})
