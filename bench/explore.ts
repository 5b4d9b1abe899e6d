// npm run bench:explore -- [--data <folder>] [--model <file>] [--share 0.1]: what exploration
// (P30e) shows, earns and costs. The test split's sessions are devices; at each step the worker's
// own recommender (shipped model, the catalogue and pools export builds from the training
// sessions, default rules) gives a for-you list of 20, the device clicks when the session's next
// item is on it, and its impressions since the last click feed both the demotion and the
// Thompson draws, as IndexedDB does on a device. Side by side, exploration off and on: Recall@20
// (the share of steps whose next item is on the list: what exploration costs), the share of
// slots holding a new item (the release's `new` pool) and an explored one, and the share of
// clicks on each. Beside it, the published protocol's Recall@20 (the model's top 20 over every
// item) with the same share of its slots given to Thompson draws over the new items, the draws
// fed by the same impressions. Writes bench/results/explore-<dataset>.json.
import path from 'node:path'
import { loadShippedModel, modelTopLists } from './model-lists'
import { exploreSlots, placeExplored, thompsonScores } from '../client/worker/recommend/explore'
import type { Candidate } from '../client/worker/recommend/recall'
import { createRecommender } from '../client/worker/recommend/recommend'
import { setNodeBackend } from '../model/node-backend'
import { createRandom } from '../shared/random'
import { buildCandidatePools } from '../train/artifacts/build-pools'
import { buildCoVisitation } from '../train/artifacts/co-visitation'
import { createDefaultRules } from '../train/artifacts/default-rules'
import { generateCatalogue } from '../train/artifacts/generate-catalogue'
import { loadDataset } from '../train/data/load-dataset'
import { defaultModelDir } from '../train/model-file'
import { createProgressLine, formatDuration } from '../train/progress'
import { runBenchmark, type BenchRun } from './harness'
import { int, num, readOptions, text, type Options } from './options'

const EXPLORE_FLAGS = {
  data: text('../shared/data/diginetica-srgnn'),
  /** Default: the dataset's trained model in models/<dataset>/model.prw, run in shipped form. */
  model: text(),
  share: num(0.1, 0.01, 0.5),
  /** Test sessions used, evenly spread (0: all). */
  sessions: int(0, 0),
  seed: int(1, 0),
  /** Default: bench/results/explore-<dataset>.json. */
  results: text(),
}
type ExploreOptions = Options<typeof EXPLORE_FLAGS>

export interface ArmResult {
  explore: number
  steps: number
  recall20: number
  /** The published protocol's Recall@20 (full ranking), its explored slots drawn alike. */
  protocolRecall20: number
  /** Shares of list slots: a new item, an explored one. */
  newShown: number
  exploredShown: number
  /** Shares of clicks: on a new item, on an explored one. */
  newClicked: number
  exploredClicked: number
}

async function benchExplore(options: ExploreOptions, run: BenchRun): Promise<void> {
  const started = performance.now()
  await setNodeBackend('wasm')
  const dataset = await loadDataset(options.data)
  const model = await loadShippedModel(
    options.model ?? path.join(defaultModelDir(dataset.name), 'model.prw'),
  )
  const graph = buildCoVisitation(dataset.train, dataset.nItems)
  const catalogue = generateCatalogue(dataset, { graph })
  const { pools } = buildCandidatePools(dataset, catalogue, { graph })
  const idOf = catalogue.items.map((item) => item.id)
  const fresh = new Set(pools.new.map((index) => idOf[index]!))
  const usable = dataset.test.filter((s) => s.length >= 2)
  const count = options.sessions > 0 ? Math.min(options.sessions, usable.length) : usable.length
  const devices = Array.from({ length: count }, (_, i) => usable[Math.floor((i * usable.length) / count)]!) // prettier-ignore
  console.log(
    `${dataset.name}: ${devices.length} test sessions as devices, ${pools.new.length} new items, ` +
      `exploration share ${options.share}`,
  )

  const tops = await modelTopLists(model, devices, 20)
  const arms: ArmResult[] = []
  for (const share of [0, options.share]) {
    const protocolRecall20 = protocolRecall(tops, devices, pools.new, share, options.seed)
    const recommender = createRecommender({
      model,
      modelVersion: 'bench',
      catalogue,
      pools,
      rules: createDefaultRules(),
    })
    const random = createRandom(options.seed)
    const progress = createProgressLine(process.stderr, 15)
    const tally = { steps: 0, hits: 0, slots: 0, newShown: 0, explored: 0, newClicked: 0, exploredClicked: 0 } // prettier-ignore
    for (const [d, session] of devices.entries()) {
      const impressions = new Map<string, number>()
      for (let k = 1; k < session.length; k++) {
        const response = await recommender.recommend(
          { scenario: 'for-you', limit: 20 },
          {
            sessionProductIds: Array.from(session.subarray(0, k), (i) => idOf[i]!),
            recentlyViewed: [],
            cartProductIds: [],
            purchases: [],
            impressions,
            ...(share > 0 ? { explore: { share, random } } : {}),
          },
        )
        const next = idOf[session[k]!]!
        tally.steps++
        for (const item of response.items) {
          tally.slots++
          if (fresh.has(item.productId)) tally.newShown++
          if (item.source === 'explore') tally.explored++
          impressions.set(item.productId, (impressions.get(item.productId) ?? 0) + 1)
        }
        const clicked = response.items.find((item) => item.productId === next)
        if (clicked) {
          tally.hits++
          if (fresh.has(next)) tally.newClicked++
          if (clicked.source === 'explore') tally.exploredClicked++
          impressions.delete(next)
        }
      }
      if (d % 200 === 0) progress.update(`explore ${share}: ${d}/${devices.length} devices`)
    }
    progress.done(`explore ${share}: ${devices.length} devices, ${tally.steps} steps`)
    recommender.dispose()
    const pct = (n: number, of: number) => (of > 0 ? (100 * n) / of : 0)
    arms.push({
      explore: share,
      steps: tally.steps,
      recall20: pct(tally.hits, tally.steps),
      protocolRecall20,
      newShown: pct(tally.newShown, tally.slots),
      exploredShown: pct(tally.explored, tally.slots),
      newClicked: pct(tally.newClicked, tally.hits),
      exploredClicked: pct(tally.exploredClicked, tally.hits),
    })
  }
  model.dispose()

  const f = (v: number) => v.toFixed(2)
  console.log(
    '\n| exploration | for-you list holds the next item (%) | slots: new / explored (%) | clicks: new / explored (%) | protocol Recall@20 |',
  )
  console.log('| --- | --: | --: | --: | --: |')
  for (const a of arms) {
    console.log(
      `| ${a.explore === 0 ? 'off' : `on, ${a.explore}`} | ${f(a.recall20)} | ${f(a.newShown)} / ${f(a.exploredShown)} | ${f(a.newClicked)} / ${f(a.exploredClicked)} | ${f(a.protocolRecall20)} |`,
    )
  }
  await run.write(
    options.results ?? path.join('bench', 'results', `explore-${dataset.name}.json`),
    {
      dataset: dataset.name,
      devices: devices.length,
      newItems: pools.new.length,
      arms,
      benchSeconds: (performance.now() - started) / 1000,
    },
  )
  console.log(`in ${formatDuration((performance.now() - started) / 1000)}`)
}

/** Recall@20 of the model's top 20 with `share` of its slots given to Thompson draws. */
function protocolRecall(
  tops: readonly Int32Array[],
  devices: readonly Int32Array[],
  fresh: readonly number[],
  share: number,
  seed: number,
): number {
  const random = createRandom(seed)
  const candidates = fresh.map((index): Candidate => ({ index, source: 'new' }))
  let step = 0
  let hits = 0
  for (const session of devices) {
    const impressions = new Map<number, number>()
    for (let k = 1; k < session.length; k++) {
      const top = tops[step++]!
      const slots = share > 0 ? exploreSlots(20, share, random) : 0
      const kept = Array.from(top.subarray(0, 20 - slots), (index) => ({ index, source: 'embedding' as const, score: 1 })) // prettier-ignore
      const taken = new Set(kept.map((r) => r.index))
      const draws = thompsonScores(candidates, (i) => impressions.get(i) ?? 0, random)
      const explored = candidates
        .map((c, i) => ({ index: c.index, source: c.source, score: draws[i]! }))
        .filter((r) => !taken.has(r.index))
        .sort((a, b) => b.score - a.score)
        .slice(0, slots)
      const list = placeExplored(kept, explored, 20)
      for (const r of list) impressions.set(r.index, (impressions.get(r.index) ?? 0) + 1)
      if (list.some((r) => r.index === session[k])) {
        hits++
        impressions.delete(session[k]!)
      }
    }
  }
  return step > 0 ? (100 * hits) / step : 0
}

runBenchmark({
  script: 'bench:explore',
  parse: (argv) => readOptions(EXPLORE_FLAGS, argv),
  run: benchExplore,
})
