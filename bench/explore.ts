// npm run bench:explore -- [--data <folder>] [--model <file>] [--share 0.1] [--batch 200]
// [--sigma 1,…]: what exploration (P30e, P30f) shows, earns and costs. The test split's sessions
// are devices, in the split's order; at each step the worker's own recommender (shipped model,
// the catalogue and pools export builds from the training sessions, default rules) gives a
// for-you list of 20, the device clicks when the session's next item is on it, and its
// impressions since the last click feed both the demotion and the Thompson draws, as IndexedDB
// does on a device. Arms side by side: exploration off; on with the device's own counts; on
// with the fleet's counts as the prior, as devices get them (P30f), one arm per `--sigma`: each
// device's explored impressions and clicks by bucket, clipped as its report is, summed over
// `--batch` devices with the two servers' noise (each server's multiplier σ; 1 is their
// default), the running totals the prior of every later device. Per arm: Recall@20 (the share of steps whose next item is on the list:
// what exploration costs), the share of slots holding a new item (the release's `new` pool) and
// an explored one, the share of clicks on each, and clicks per 1,000 explored slots. Beside it,
// the published protocol's Recall@20 (the model's top 20 over every item) with the same share of
// its slots given to Thompson draws over the new items, fed alike. Writes
// bench/results/explore-<dataset>.json.
import path from 'node:path'
import { loadShippedModel, modelTopLists } from './model-lists'
import {
  exploreSlots,
  placeExplored,
  thompsonScores,
  type ExploreDraw,
} from '../client/worker/recommend/explore'
import { fleetDraw } from '../client/worker/exploration-totals'
import { countExplored, emptyOutcomeCounts, type ExploreCounts } from '../shared/outcome-counts'
import { addHalfNoise, buildOutcomeReport, reportCells, sumShares } from '../shared/outcome-report'
import type { CandidatePools } from '../shared/protocol'
import { sumExploration } from '../server/federated/outcome-release'
import type { OutcomeBatchRecord } from '../server/storage/store'
import type { Candidate } from '../client/worker/recommend/recall'
import { createRecommender } from '../client/worker/recommend/recommend'
import { setNodeBackend } from '../model/node-backend'
import { betaDraw, createRandom } from '../shared/random'
import { buildCandidatePools } from '../train/artifacts/build-pools'
import { buildCoVisitation } from '../train/artifacts/co-visitation'
import { createDefaultRules } from '../train/artifacts/default-rules'
import { generateCatalogue } from '../train/artifacts/generate-catalogue'
import { loadDataset } from '../train/data/load-dataset'
import { defaultModelDir } from '../train/model-file'
import { createProgressLine, formatDuration } from '../train/progress'
import { defaultSettings } from '../server/federated/defaults'
import { runBenchmark, type BenchRun } from './harness'
import { int, num, numList, readOptions, text, type Options } from './options'

const EXPLORE_FLAGS = {
  data: text('../shared/data/diginetica-srgnn'),
  /** Default: the dataset's trained model in models/<dataset>/model.prw, run in shipped form. */
  model: text(),
  share: num(0.1, 0.01, 0.5),
  /** Devices per batch of outcome reports (the fleet arm): the leader's default `minBatch`. */
  batch: int(defaultSettings().outcomes.minBatch, 1),
  /** Each server's noise multiplier on the batches: a fleet arm per value. */
  sigma: numList([1], 0, 10),
  /** Test sessions used, evenly spread (0: all). */
  sessions: int(0, 0),
  seed: int(1, 0),
  /** Default: bench/results/explore-<dataset>.json. */
  results: text(),
}
type ExploreOptions = Options<typeof EXPLORE_FLAGS>

export interface ArmResult {
  arm: 'off' | 'own counts' | 'fleet counts'
  /** The fleet arm's noise multiplier (each server's). */
  sigma?: number
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
  /** Clicks per 1,000 explored slots. */
  exploredClicksPerMille: number
}

/**
 * The servers' side of the fleet arm (P30f): devices' exploration counts, clipped into their
 * reports' section, summed per batch with each server's half of the noise, and the running
 * totals over the batches as the leader sums them for `GET /v1/exploration`.
 */
function createFleet(batchSize: number, sigma: number, random: () => number) {
  const batches: OutcomeBatchRecord[] = []
  let reports: Uint32Array[] = []
  let draw: ReturnType<typeof fleetDraw> | undefined
  return {
    /** The draw the devices have now, by product id: the fleet's counts once a batch is in. */
    draw: () => draw,
    /** The same by index into `ids`, as the replays' candidates name items. */
    drawByIndex(ids: readonly string[]): ExploreDraw | undefined {
      const now = draw
      return now && ((index, n, r) => now(ids[index]!, n, r))
    },
    report(explored: ExploreCounts) {
      reports.push(buildOutcomeReport(1, 0, 0, emptyOutcomeCounts(), explored))
      if (reports.length < batchSize) return
      const sum = sumShares(reports, reportCells(1))
      addHalfNoise(sum, 1, sigma, random) // the leader's half
      addHalfNoise(sum, 1, sigma, random) // the helper's
      const totals = new Uint8Array(sum.buffer)
      batches.push({ id: `${batches.length}`, experiment: 'bench', createdAtMs: 0, reports: reports.length, sigma, totals }) // prettier-ignore
      draw = fleetDraw(sumExploration(batches))
      reports = []
    },
  }
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
  const runs: Array<{ arm: ArmResult['arm']; sigma?: number }> = [
    { arm: 'off' },
    { arm: 'own counts' },
    ...options.sigma.map((sigma) => ({ arm: 'fleet counts' as const, sigma })),
  ]
  for (const { arm, sigma } of runs) {
    const share = arm === 'off' ? 0 : options.share
    const fleet = () =>
      sigma === undefined
        ? undefined
        : createFleet(options.batch, sigma, createRandom(options.seed + 1))
    const name = sigma === undefined ? arm : `${arm}, σ = ${sigma}`
    const protocolRecall20 = protocolRecall(tops, devices, pools.new, share, options.seed, fleet(), idOf) // prettier-ignore
    const tally = await replayWorkerLists(
      { model, catalogue, pools, idOf, fresh, devices },
      { name, share, random: createRandom(options.seed), servers: fleet() },
    )
    const pct = (n: number, of: number) => (of > 0 ? (100 * n) / of : 0)
    arms.push({
      arm,
      ...(sigma === undefined ? {} : { sigma }),
      explore: share,
      steps: tally.steps,
      recall20: pct(tally.hits, tally.steps),
      protocolRecall20,
      newShown: pct(tally.newShown, tally.slots),
      exploredShown: pct(tally.explored, tally.slots),
      newClicked: pct(tally.newClicked, tally.hits),
      exploredClicked: pct(tally.exploredClicked, tally.hits),
      exploredClicksPerMille:
        tally.explored > 0 ? (1000 * tally.exploredClicked) / tally.explored : 0,
    })
  }
  model.dispose()

  const f = (v: number) => v.toFixed(2)
  console.log(
    '\n| exploration | for-you list holds the next item (%) | slots: new / explored (%) | clicks: new / explored (%) | clicks per 1,000 explored slots | protocol Recall@20 |',
  )
  console.log('| --- | --: | --: | --: | --: | --: |')
  for (const a of arms) {
    console.log(
      `| ${a.explore === 0 ? 'off' : `${a.explore}, ${a.arm}${a.sigma === undefined ? '' : `, σ = ${a.sigma}`}`} | ${f(a.recall20)} | ${f(a.newShown)} / ${f(a.exploredShown)} | ${f(a.newClicked)} / ${f(a.exploredClicked)} | ${f(a.exploredClicksPerMille)} | ${f(a.protocolRecall20)} |`,
    )
  }
  const latent = latentClicks(
    devices,
    pools.new.map((index) => idOf[index]!),
    options,
  )
  console.log(
    `\nNew items clicked at their own rates (drawn from Beta(${LATENT_PRIOR.join(', ')}): mean ` +
      `${f((100 * LATENT_PRIOR[0]) / (LATENT_PRIOR[0] + LATENT_PRIOR[1]))} %, best of these ${f(latent.bestRate)} %), ` +
      `the same devices and explored slots:\n`,
  )
  console.log('| explored items chosen by | clicks per 1,000 explored slots |')
  console.log('| --- | --: |')
  for (const row of latent.rows) console.log(`| ${row.name} | ${f(row.clicksPerMille)} |`)
  await run.write(
    options.results ?? path.join('bench', 'results', `explore-${dataset.name}.json`),
    {
      dataset: dataset.name,
      devices: devices.length,
      newItems: pools.new.length,
      batch: options.batch,
      arms,
      latent,
      benchSeconds: (performance.now() - started) / 1000,
    },
  )
  console.log(`in ${formatDuration((performance.now() - started) / 1000)}`)
}

interface ReplayShop {
  model: Awaited<ReturnType<typeof loadShippedModel>>
  catalogue: ReturnType<typeof generateCatalogue>
  pools: CandidatePools
  idOf: readonly string[]
  fresh: ReadonlySet<string>
  devices: readonly Int32Array[]
}

/**
 * The devices' sessions replayed through the worker's recommender: a for-you list of 20 a step,
 * a click when it holds the next item, the device's impressions since the last click, and with
 * `servers` the device's exploration counts reported when its session ends.
 */
async function replayWorkerLists(
  { model, catalogue, pools, idOf, fresh, devices }: ReplayShop,
  arm: {
    name: string
    share: number
    random: () => number
    servers: ReturnType<typeof createFleet> | undefined
  },
) {
  const { name, share, random, servers } = arm
  const recommender = createRecommender({
    model,
    modelVersion: 'bench',
    catalogue,
    pools,
    rules: createDefaultRules(),
  })
  const progress = createProgressLine(process.stderr, 15)
  const tally = { steps: 0, hits: 0, slots: 0, newShown: 0, explored: 0, newClicked: 0, exploredClicked: 0 } // prettier-ignore
  for (const [d, session] of devices.entries()) {
    const impressions = new Map<string, number>()
    const explored: ExploreCounts = []
    const draw = servers?.draw()
    for (let k = 1; k < session.length; k++) {
      const response = await recommender.recommend(
        { scenario: 'for-you', limit: 20 },
        {
          sessionProductIds: Array.from(session.subarray(0, k), (i) => idOf[i]!),
          recentlyViewed: [],
          cartProductIds: [],
          purchases: [],
          impressions,
          ...(share > 0 ? { explore: { share, random, ...(draw && { draw }) } } : {}),
        },
      )
      const next = idOf[session[k]!]!
      tally.steps++
      for (const item of response.items) {
        tally.slots++
        if (fresh.has(item.productId)) tally.newShown++
        if (item.source === 'explore') {
          tally.explored++
          countExplored(explored, item.productId, 'shown')
        }
        impressions.set(item.productId, (impressions.get(item.productId) ?? 0) + 1)
      }
      const clicked = response.items.find((item) => item.productId === next)
      if (clicked) {
        tally.hits++
        if (fresh.has(next)) tally.newClicked++
        if (clicked.source === 'explore') {
          tally.exploredClicked++
          countExplored(explored, next, 'clicked')
        }
        impressions.delete(next)
      }
    }
    servers?.report(explored)
    if (d % 200 === 0) progress.update(`${name}: ${d}/${devices.length} devices`)
  }
  progress.done(`${name}: ${devices.length} devices, ${tally.steps} steps`)
  recommender.dispose()
  return tally
}

/** Each new item's click-through in the latent-click replay: Beta(0.4, 20), mean 2 %, skewed. */
const LATENT_PRIOR = [0.4, 20] as const

/**
 * Exploration where new items do get clicked: each has a click-through rate of its own, drawn
 * once from LATENT_PRIOR, and a device clicks an explored item with that chance. The same
 * devices (a list per step of their sessions) and the same share of explored slots, chosen at
 * random, by the device's own counts, or with the fleet's (per `--sigma`, batched as the
 * servers do): what aggregation buys when there is something to learn, which the logs above,
 * whose next item is seldom a new one, cannot show.
 */
function latentClicks(
  devices: readonly Int32Array[],
  newIds: readonly string[],
  options: ExploreOptions,
) {
  const random = createRandom(options.seed + 2)
  const rates = newIds.map(() => betaDraw(LATENT_PRIOR[0], LATENT_PRIOR[1], random))
  const bestRate = 100 * Math.max(...rates)
  const candidates = newIds.map((_, index): Candidate => ({ index, source: 'new' }))
  const runs: Array<{ name: string; choose: 'random' | 'thompson'; sigma?: number }> = [
    { name: 'uniform draw', choose: 'random' },
    { name: 'Thompson, own counts', choose: 'thompson' },
    ...options.sigma.map((sigma) => ({ name: `Thompson, fleet counts, σ = ${sigma}`, choose: 'thompson' as const, sigma })), // prettier-ignore
  ]
  const rows = runs.map(({ name, choose, sigma }) => {
    const draws = createRandom(options.seed + 3)
    const fleet =
      sigma === undefined
        ? undefined
        : createFleet(options.batch, sigma, createRandom(options.seed + 1))
    let shown = 0
    let clicks = 0
    for (const session of devices) {
      const impressions = new Map<number, number>()
      const explored: ExploreCounts = []
      const byIndex = fleet?.drawByIndex(newIds)
      for (let k = 1; k < session.length; k++) {
        const slots = exploreSlots(20, options.share, draws)
        const scores =
          choose === 'random'
            ? Float32Array.from(candidates, () => draws())
            : thompsonScores(candidates, (i) => impressions.get(i) ?? 0, draws, byIndex)
        const chosen = Array.from(scores.keys()).sort((a, b) => scores[b]! - scores[a]!).slice(0, slots) // prettier-ignore
        for (const index of chosen) {
          shown++
          countExplored(explored, newIds[index]!, 'shown')
          impressions.set(index, (impressions.get(index) ?? 0) + 1)
          if (draws() < rates[index]!) {
            clicks++
            countExplored(explored, newIds[index]!, 'clicked')
            impressions.delete(index)
          }
        }
      }
      fleet?.report(explored)
    }
    return { name, shown, clicks, clicksPerMille: shown > 0 ? (1000 * clicks) / shown : 0 }
  })
  return { prior: LATENT_PRIOR, bestRate, rows }
}

/**
 * Recall@20 of the model's top 20 with `share` of its slots given to Thompson draws, with the
 * fleet's counts as their prior when `fleet` is given.
 */
function protocolRecall(
  tops: readonly Int32Array[],
  devices: readonly Int32Array[],
  fresh: readonly number[],
  share: number,
  seed: number,
  fleet: ReturnType<typeof createFleet> | undefined,
  idOf: readonly string[],
): number {
  const random = createRandom(seed)
  const candidates = fresh.map((index): Candidate => ({ index, source: 'new' }))
  let step = 0
  let hits = 0
  for (const session of devices) {
    const impressions = new Map<number, number>()
    const explored: ExploreCounts = []
    const byIndex = fleet?.drawByIndex(idOf)
    for (let k = 1; k < session.length; k++) {
      const top = tops[step++]!
      const slots = share > 0 ? exploreSlots(20, share, random) : 0
      const kept = Array.from(top.subarray(0, 20 - slots), (index) => ({ index, source: 'embedding' as const, score: 1 })) // prettier-ignore
      const taken = new Set(kept.map((r) => r.index))
      const draws = thompsonScores(candidates, (i) => impressions.get(i) ?? 0, random, byIndex)
      const chosen = candidates
        .map((c, i) => ({ index: c.index, source: c.source, score: draws[i]! }))
        .filter((r) => !taken.has(r.index))
        .sort((a, b) => b.score - a.score)
        .slice(0, slots)
      for (const r of chosen) countExplored(explored, idOf[r.index]!, 'shown')
      const list = placeExplored(kept, chosen, 20)
      for (const r of list) impressions.set(r.index, (impressions.get(r.index) ?? 0) + 1)
      const hit = list.find((r) => r.index === session[k])
      if (hit) {
        hits++
        impressions.delete(session[k]!)
        if (hit.source === 'explore') countExplored(explored, idOf[hit.index]!, 'clicked')
      }
    }
    fleet?.report(explored)
  }
  return step > 0 ? (100 * hits) / step : 0
}

runBenchmark({
  script: 'bench:explore',
  parse: (argv) => readOptions(EXPLORE_FLAGS, argv),
  run: benchExplore,
})
