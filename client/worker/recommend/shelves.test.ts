// Issue 14: the shelves of one page. Page-view de-duplication (page-views.ts) and the demotion of
// items shown often and never clicked (rerank.ts), through the whole recommender.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RecommendRequest, RecommendResponse } from '../../../shared/protocol'
import { setNodeBackend } from '../../../model/node-backend'
import { createGruModel, withBonuses, type GruModel } from '../../../model/gru-model'
import { createPageViews, PAGE_VIEWS_KEPT } from './page-views'
import { createRecommender, type RecommendContext, type Recommender } from './recommend'
import { DEMOTION_FLOOR, demotionFactor, FREE_IMPRESSIONS } from './rerank'
import { catalogue, emptyContext, noRules, pools, tinyConfig } from './test-fixtures'

const ids = (response: RecommendResponse) => response.items.map((item) => item.productId)
const shopper: RecommendContext = {
  ...emptyContext,
  sessionProductIds: ['p4', 'p9', 'p8'],
  recentlyViewed: ['p2', 'p6', 'p4', 'p9', 'p8'],
}

/** The product page of the demo: three shelves about p8, plus the shopper's history. */
const productPage = (pageView?: string): RecommendRequest[] => [
  { scenario: 'similar', productId: 'p8', limit: 6, pageView },
  { scenario: 'frequently-bought-together', productId: 'p8', limit: 6, pageView },
  { scenario: 'for-you', productId: 'p8', limit: 6, pageView },
  { scenario: 'recently-viewed', productId: 'p8', limit: 6, pageView },
]

/** Product ids that appear in more than one of the lists. */
function overlaps(lists: RecommendResponse[]): string[] {
  const seen = new Set<string>()
  const repeated: string[] = []
  for (const id of lists.flatMap(ids)) {
    if (seen.has(id)) repeated.push(id)
    seen.add(id)
  }
  return repeated
}

describe('shelves of one page view', () => {
  let model: GruModel
  let recommender: Recommender

  beforeAll(async () => {
    await setNodeBackend('cpu')
    model = createGruModel(tinyConfig, 3)
    const options = { model, modelVersion: 'v-test', catalogue, pools, rules: noRules }
    recommender = createRecommender(options)
  })
  afterAll(() => {
    recommender.dispose()
    model.dispose()
  })

  it('issue 14: never share an item, even requested concurrently', async () => {
    const pageViews = createPageViews()
    const context = { ...shopper, pageViews }
    const shelves = productPage('pv-1').slice(0, 3)
    const lists = await Promise.all(shelves.map((r) => recommender.recommend(r, context)))
    expect(overlaps(lists)).toEqual([])
    // Each shelf is still full: what another shelf took is replaced by the next candidates.
    for (const list of lists) expect(list.items).toHaveLength(6)
    // Without a page view the same shelves repeat each other: the test above means something.
    const plain = await Promise.all(
      productPage()
        .slice(0, 3)
        .map((r) => recommender.recommend(r, context)),
    )
    expect(overlaps(plain).length).toBeGreaterThan(0)
  })

  it('keeps the history shelf whole, and the shelves answered after it leave its items out', async () => {
    // A repeat bonus no score can outweigh: for-you surely takes the session's p4 and p9, which
    // the history shelf lists too (without it, whether for-you takes any is the model's call).
    const repeating = createRecommender({ model: withBonuses(model, { repeatBonus: 1000 }), modelVersion: 'v-test', catalogue, pools, rules: noRules }) // prettier-ignore
    const pageViews = createPageViews()
    const context = { ...shopper, pageViews }
    const [similar, fbt, forYou, history] = productPage('pv-1')
    const whole = await repeating.recommend({ ...history!, pageView: undefined }, context)
    const first = await repeating.recommend(forYou!, context)
    // Answered after for-you, recently viewed still lists every item (p8 is on screen).
    const listed = await repeating.recommend(history!, context)
    expect(ids(listed)).toEqual(ids(whole))
    expect(ids(listed)).toEqual(['p9', 'p4', 'p6', 'p2'])
    // for-you took p4 and p9 first; history shows them all the same.
    expect(ids(first)).toEqual(expect.arrayContaining(['p4', 'p9']))
    const later = await Promise.all([similar!, fbt!].map((r) => repeating.recommend(r, context)))
    expect(overlaps([listed, ...later])).toEqual([])
    expect(overlaps([first, ...later])).toEqual([])
    repeating.dispose()
  })

  it('lets a shelf shown again keep its own items, and a new page view start afresh', async () => {
    const pageViews = createPageViews()
    const context = { ...shopper, pageViews }
    const [similar, forYou] = [productPage('pv-1')[0]!, productPage('pv-1')[2]!]
    const first = await recommender.recommend(similar, context)
    await recommender.recommend(forYou, context)
    // A re-render of the same shelf (consent given, attributes changed) is not a new shelf.
    expect(ids(await recommender.recommend(similar, context))).toEqual(ids(first))
    const next = await recommender.recommend({ ...similar, pageView: 'pv-2' }, context)
    expect(ids(next)).toEqual(ids(first))
  })

  it('forgets all but the last PAGE_VIEWS_KEPT page views', () => {
    const pageViews = createPageViews()
    pageViews.shelf('pv-0', 'similar p1').claim(['a'])
    for (let i = 1; i <= PAGE_VIEWS_KEPT; i++) pageViews.shelf(`pv-${i}`, 'x').claim(['b'])
    expect([...pageViews.shelf('pv-0', 'trending ').taken()]).toEqual([])
    expect([...pageViews.shelf(`pv-${PAGE_VIEWS_KEPT}`, 'y').taken()]).toEqual(['b'])
    pageViews.clear()
    expect([...pageViews.shelf(`pv-${PAGE_VIEWS_KEPT}`, 'y').taken()]).toEqual([])
  })

  it('rejects a page view that is not a non-empty string, naming it', async () => {
    for (const pageView of ['', 42, null]) {
      const request = { scenario: 'trending', pageView } as unknown as RecommendRequest
      await expect(recommender.recommend(request, shopper)).rejects.toMatchObject({
        name: 'InvalidRequestError',
        code: 'E_REQUEST_SHAPE',
        message: expect.stringContaining('expected pageView'),
      })
    }
  })
})

describe('demotion of items shown often and never clicked', () => {
  let model: GruModel
  let recommender: Recommender

  beforeAll(async () => {
    await setNodeBackend('cpu')
    model = createGruModel(tinyConfig, 3)
    const options = { model, modelVersion: 'v-test', catalogue, pools, rules: noRules }
    recommender = createRecommender(options)
  })
  afterAll(() => {
    recommender.dispose()
    model.dispose()
  })

  it('is 1 for the free impressions, then falls to the floor and no further', () => {
    expect(demotionFactor(0)).toBe(1)
    expect(demotionFactor(FREE_IMPRESSIONS)).toBe(1)
    expect(demotionFactor(FREE_IMPRESSIONS + 1)).toBeLessThan(1)
    expect(demotionFactor(FREE_IMPRESSIONS + 2)).toBeLessThan(demotionFactor(FREE_IMPRESSIONS + 1))
    expect(demotionFactor(1000)).toBe(DEMOTION_FLOOR)
  })

  it('issue 14: an item shown many times and never clicked drops below one that was not', async () => {
    // Trending scores by pool order, so the top two are close and the first is known.
    const request: RecommendRequest = { scenario: 'trending', limit: 5 }
    const fresh = ids(await recommender.recommend(request, shopper))
    const [top, second] = fresh
    const impressions = new Map([[top!, 20]])
    const demoted = ids(await recommender.recommend(request, { ...shopper, impressions }))
    expect(demoted.indexOf(top!)).toBeGreaterThan(demoted.indexOf(second!))
    // A click resets the count (the store deletes it): the item is back on top.
    const clicked = new Map<string, number>()
    expect(ids(await recommender.recommend(request, { ...shopper, impressions: clicked }))).toEqual(
      fresh,
    )
  })

  it('leaves recently viewed alone: history keeps its order however often it was shown', async () => {
    const request: RecommendRequest = { scenario: 'recently-viewed' }
    const fresh = ids(await recommender.recommend(request, shopper))
    const impressions = new Map(fresh.map((id) => [id, 50]))
    expect(ids(await recommender.recommend(request, { ...shopper, impressions }))).toEqual(fresh)
  })
})
