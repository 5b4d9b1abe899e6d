// npm run bench:recall-index: the embedding-neighbour recall with the cluster index against the
// exact pass it replaces, on a trained model (WASM in Node, one thread). For each probe size:
// how many of the exact 100 neighbours the index finds, how often the next item of a real
// session is among the 100, the median time of one search, and then the whole for-you
// recommendation (recall → rank → rerank, top 20): how often the next item is in the list, and
// its median time; plus the index build time. Cases are prefixes of the validation split (the
// last 5 % of training sessions, which the model held out); the catalogue and pools are built
// from the sessions before it; the test split is never looked at.
// Writes bench/results/recall-index.json (--results).
import path from 'node:path'
import { readItemTable, type ItemTable } from '../client/worker/recommend/item-table'
import {
  buildNeighbourIndex,
  type NeighbourIndex,
  type NeighbourIndexOptions,
} from '../client/worker/recommend/neighbour-index'
import {
  anchorQuery,
  DEFAULT_RECALL_SIZES,
  findNeighbours,
  recentAnchors,
} from '../client/worker/recommend/recall'
import { createRecommender } from '../client/worker/recommend/recommend'
import { buildCandidatePools } from '../train/artifacts/build-pools'
import { buildCoVisitation } from '../train/artifacts/co-visitation'
import { createDefaultRules } from '../train/artifacts/default-rules'
import { generateCatalogue } from '../train/artifacts/generate-catalogue'
import { splitValidation } from '../train/data/examples'
import { forYouHits, listCases } from './list-cases'
import { loadDataset } from '../train/data/load-dataset'
import type { SessionDataset } from '../train/data/types'
import type { GruModel } from '../model/gru-model'
import { sharedDataDir } from '../train/data/paths'
import { defaultModelDir, loadModel } from '../train/model-file'
import { setNodeBackend } from '../model/node-backend'
import { runBenchmark, type BenchRun } from './harness'
import { int, intList, text, readOptions, type Options } from './options'
import { median } from './stats'

const COUNT = 100

export const RECALL_INDEX_FLAGS = {
  data: text(path.join(sharedDataDir(), 'diginetica-srgnn')),
  /** Default: the dataset's trained model in models/<dataset>/model.prw. */
  model: text(),
  cases: int(2000),
  probes: intList([1024, 2048, 3072, 4096]),
  results: text('bench/results/recall-index.json'),
}

type Case = ReturnType<typeof listCases>[number] & ReturnType<typeof recentAnchors>

export async function benchRecallIndex(
  options: Options<typeof RECALL_INDEX_FLAGS>,
  run: BenchRun,
): Promise<void> {
  await setNodeBackend('wasm')
  const dataset = await loadDataset(options.data)
  const modelFile = options.model ?? path.join(defaultModelDir(dataset.name), 'model.prw')
  const model = await loadModel(modelFile)
  const { nItems, embedDim } = model.config
  const table = await readItemTable(model)
  const vectors = table.values

  // One case per validation session, evenly spread: a random cut point's prefix and next item.
  const { validation } = splitValidation(dataset.train, 0.05)
  const cases: Case[] = listCases(validation, options.cases).map((c) => ({
    ...recentAnchors(c.prefix, DEFAULT_RECALL_SIZES.recentItems),
    ...c,
  }))
  const exact = await exactNeighbours(table, cases)
  const built = await buildNeighbourIndex(vectors, nItems, embedDim)
  console.log(`index: ${built.clusters} clusters, built in ${built.buildMs.toFixed(0)} ms`)
  const forYou = forYouList(dataset, model, cases)
  const exactList = await forYou(false)
  console.log(
    `for-you top 20, exact recall: next item in the list ${exactList.recall20.toFixed(2)} %, ` +
      `recommend median ${exactList.medianMs.toFixed(3)} ms`,
  )

  const rows = []
  for (const probeItems of options.probes) {
    const index = await buildNeighbourIndex(vectors, nItems, embedDim, { probeItems })
    const row = { probeItems, ...searchWith(index, vectors, embedDim, cases, exact.lists) }
    const list = await forYou({ probeItems })
    rows.push({ ...row, forYou: list })
    console.log(
      `probe ≥ ${probeItems} items: ${row.overlapPercent.toFixed(2)} % of the exact ${COUNT} found, ` +
        `next item among them ${row.nextItemPercent.toFixed(2)} %, search median ${row.medianMs.toFixed(3)} ms; ` +
        `for-you: next item in the list ${list.recall20.toFixed(2)} %, recommend median ${list.medianMs.toFixed(3)} ms (${list.recall})`,
    )
  }

  await run.write(options.results, {
    model: path.relative(process.cwd(), modelFile),
    nItems,
    cases: cases.length,
    neighbours: COUNT,
    exact: { medianMs: exact.medianMs, nextItemPercent: exact.nextItemPercent, forYou: exactList },
    index: { clusters: built.clusters, buildMs: built.buildMs },
    probes: rows,
  })
  model.dispose()
}

/** The exact pass the index replaces: each case's 100 nearest rows, timed. */
async function exactNeighbours(table: ItemTable, cases: Case[]) {
  const t0 = performance.now()
  const lists: number[][] = []
  const ms: number[] = []
  for (const c of cases) {
    const s = performance.now()
    lists.push(findNeighbours(table, c.rows, c.weights, COUNT))
    ms.push(performance.now() - s)
  }
  const hits = cases.filter((c, i) => lists[i]!.includes(c.next)).length
  const nextItemPercent = (100 * hits) / cases.length
  console.log(
    `exact: ${cases.length} searches, median ${median(ms).toFixed(3)} ms, next item among ` +
      `the ${COUNT}: ${nextItemPercent.toFixed(2)} % (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  )
  return { lists, medianMs: median(ms), nextItemPercent }
}

/** One probe size: how much of the exact lists the index finds, how often the next item, how fast. */
function searchWith(
  index: NeighbourIndex,
  vectors: Float32Array,
  embedDim: number,
  cases: Case[],
  exact: number[][],
) {
  let overlap = 0
  let hits = 0
  const ms: number[] = []
  cases.forEach((c, i) => {
    const query = anchorQuery(vectors, embedDim, c.rows, c.weights)
    const s = performance.now()
    const found = index.search(vectors, query, COUNT, new Set(c.rows))
    ms.push(performance.now() - s)
    const want = new Set(exact[i])
    overlap += found.filter((r) => want.has(r)).length / want.size
    if (found.includes(c.next)) hits++
  })
  return {
    overlapPercent: (100 * overlap) / cases.length,
    nextItemPercent: (100 * hits) / cases.length,
    medianMs: median(ms),
  }
}

/** The whole for-you list, as the worker makes it, from shop data that predates the cases. */
function forYouList(dataset: SessionDataset, model: GruModel, cases: Case[]) {
  const fitOnly = { ...dataset, train: splitValidation(dataset.train, 0.05).fit }
  const graph = buildCoVisitation(fitOnly.train, model.config.nItems)
  const catalogue = generateCatalogue(fitOnly, { graph })
  const { pools } = buildCandidatePools(fitOnly, catalogue, { graph })
  const idOf = catalogue.items.map((item) => item.id)
  return async (neighbourIndex: NeighbourIndexOptions | false) => {
    const recommender = createRecommender({
      model,
      modelVersion: 'bench',
      catalogue,
      pools,
      rules: createDefaultRules(),
      neighbourIndex,
    })
    // The first list starts the index build; wait for it like a shopper's later lists would.
    const warm = {
      sessionProductIds: [idOf[cases[0]!.next]!],
      recentlyViewed: [],
      cartProductIds: [],
      purchases: [],
    }
    await recommender.recommend({ scenario: 'for-you', limit: 20 }, warm)
    while (['pending', 'building'].includes(recommender.recallIndex().state)) {
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    const { hits, ms } = await forYouHits(recommender, cases, idOf)
    const state = recommender.recallIndex().state
    recommender.dispose()
    return { recall20: (100 * hits) / cases.length, medianMs: median(ms), recall: state }
  }
}

runBenchmark({
  script: 'bench:recall-index',
  parse: (argv) => readOptions(RECALL_INDEX_FLAGS, argv),
  run: benchRecallIndex,
})
