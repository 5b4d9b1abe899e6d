// npm run bench:recall-index: the embedding-neighbour recall with the cluster index against the
// exact pass it replaces, on a trained model (WASM in Node, one thread). For each probe size:
// how many of the exact 100 neighbours the index finds, how often the next item of a real
// session is among the 100, the median time of one search, and then the whole for-you
// recommendation (recall → rank → rerank, top 20): how often the next item is in the list, and
// its median time; plus the index build time. Cases are prefixes of the validation split (the
// last 5 % of training sessions, which the model held out); the catalogue and pools are built
// from the sessions before it; the test split is never looked at.
// Writes bench/results/recall-index.json.
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { createItemTable } from '../client/worker/recommend/item-table'
import {
  buildNeighbourIndex,
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
import { forYouHits, listCases } from '../train/eval/list-cases'
import { loadDataset } from '../train/data/load-dataset'
import { sharedDataDir } from '../train/data/paths'
import { defaultModelDir, loadModel } from '../train/model-file'
import { setNodeBackend } from '../model/node-backend'
import { describeCommand, describeMachine } from '../train/progress'

const COUNT = 100

const median = (xs: number[]) => {
  const s = xs.slice().sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      data: { type: 'string', default: path.join(sharedDataDir(), 'diginetica-srgnn') },
      model: { type: 'string' },
      cases: { type: 'string', default: '2000' },
      probes: { type: 'string', default: '1024,2048,3072,4096' },
    },
    strict: true,
  })
  await setNodeBackend('wasm')
  const dataset = await loadDataset(values.data)
  const modelFile = values.model ?? path.join(defaultModelDir(dataset.name), 'model.prw')
  const model = await loadModel(modelFile)
  const { nItems, embedDim } = model.config
  const table = createItemTable(model)
  const vectors = await table.values()

  // One case per validation session, evenly spread: a random cut point's prefix and next item.
  const { validation } = splitValidation(dataset.train, 0.05)
  const cases = listCases(validation, Number(values.cases)).map((c) => ({
    ...recentAnchors(c.prefix, DEFAULT_RECALL_SIZES.recentItems),
    ...c,
  }))

  const t0 = performance.now()
  const exact: number[][] = []
  const exactMs: number[] = []
  for (const c of cases) {
    const s = performance.now()
    exact.push(await findNeighbours(table, c.rows, c.weights, COUNT))
    exactMs.push(performance.now() - s)
  }
  const exactHits = cases.filter((c, i) => exact[i]!.includes(c.next)).length
  console.log(
    `exact: ${cases.length} searches, median ${median(exactMs).toFixed(3)} ms, next item among ` +
      `the ${COUNT}: ${((100 * exactHits) / cases.length).toFixed(2)} % (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  )

  const built = await buildNeighbourIndex(vectors, nItems, embedDim)
  console.log(`index: ${built.clusters} clusters, built in ${built.buildMs.toFixed(0)} ms`)
  // The whole for-you list, as the worker makes it, from shop data that predates the cases.
  const fitOnly = { ...dataset, train: splitValidation(dataset.train, 0.05).fit }
  const graph = buildCoVisitation(fitOnly.train, nItems)
  const catalogue = generateCatalogue(fitOnly, { graph })
  const { pools } = buildCandidatePools(fitOnly, catalogue, { graph })
  const idOf = catalogue.items.map((item) => item.id)
  const forYou = async (neighbourIndex: NeighbourIndexOptions | false) => {
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
  const exactList = await forYou(false)
  console.log(
    `for-you top 20, exact recall: next item in the list ${exactList.recall20.toFixed(2)} %, ` +
      `recommend median ${exactList.medianMs.toFixed(3)} ms`,
  )

  const rows = []
  for (const probeItems of values.probes.split(',').map(Number)) {
    const index = await buildNeighbourIndex(vectors, nItems, embedDim, { probeItems })
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
    const list = await forYou({ probeItems })
    const row = {
      probeItems,
      overlapPercent: (100 * overlap) / cases.length,
      nextItemPercent: (100 * hits) / cases.length,
      medianMs: median(ms),
      forYou: list,
    }
    rows.push(row)
    console.log(
      `probe ≥ ${probeItems} items: ${row.overlapPercent.toFixed(2)} % of the exact ${COUNT} found, ` +
        `next item among them ${row.nextItemPercent.toFixed(2)} %, search median ${row.medianMs.toFixed(3)} ms; ` +
        `for-you: next item in the list ${list.recall20.toFixed(2)} %, recommend median ${list.medianMs.toFixed(3)} ms (${list.recall})`,
    )
  }

  const out = path.resolve('bench', 'results', 'recall-index.json')
  await mkdir(path.dirname(out), { recursive: true })
  await writeFile(
    out,
    JSON.stringify(
      {
        command: describeCommand('bench:recall-index'),
        machine: describeMachine(),
        date: new Date().toISOString(),
        model: path.relative(process.cwd(), modelFile),
        nItems,
        cases: cases.length,
        neighbours: COUNT,
        exact: {
          medianMs: median(exactMs),
          nextItemPercent: (100 * exactHits) / cases.length,
          forYou: exactList,
        },
        index: { clusters: built.clusters, buildMs: built.buildMs },
        probes: rows,
      },
      null,
      2,
    ) + '\n',
  )
  console.log(`written ${out}`)
  table.dispose()
  model.dispose()
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? `${error.name}: ${error.message}` : error)
  process.exit(1)
})
