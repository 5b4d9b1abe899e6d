// npm run bench:popularity -- [--on validation] [--buckets 1024] [--noise 1] [--buffer 1000]
// How good are pools built from device-reported popularity (PROTOCOL.md P28)? Every later
// session (after the first 20 %, the pre-training's) is one device: it sketches its items with
// the device's code (shared/popularity-sketch.ts), the server's code sums each release's K
// reports with its noise and rebuilds popular and trending (server/federated/popularity.ts).
// After every release the pools are scored by the share of held-out next items they hold,
// beside the trainer's pools from the pre-training sessions (what a shop ships at launch) and
// beside pools from the exact counts of the same reported sessions (what noise and collisions
// cost). No model is trained: popularity does not depend on it (`npm run sim` runs the whole
// path over HTTP). With the simulation's pre-trained model present (`--model`, default
// models/<dataset>/pretrain-0.2-e3.prw, which `npm run sim` caches), the worker's for-you list
// (recall → GRU ranking → rules, top 20) is then scored on held-out prefixes with each of the
// three pool sets. Writes bench/results/popularity-<dataset>-<split>.json.
import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { sketchPopularity } from '../../shared/popularity-sketch'
import { createRandom } from '../../shared/random'
import { LOG_POOL_SIZES } from '../../shared/catalogue-pools'
import type { CandidatePools } from '../../shared/protocol'
import { createRecommender } from '../../client/worker/recommend/recommend'
import { createDefaultRules } from '../artifacts/default-rules'
import { defaultModelDir, loadModel } from '../model-file'
import { setNodeBackend } from '../node-backend'
import {
  advancePopularity,
  DEFAULT_POPULARITY,
  poolsFromReports,
  sumReports,
  type PopularityState,
} from '../../server/federated/popularity'
import { epsilonAfter } from '../../server/federated/privacy'
import { buildCandidatePools } from '../artifacts/build-pools'
import { generateCatalogue } from '../artifacts/generate-catalogue'
import { splitForFederation } from '../data/examples'
import { loadDataset } from '../data/load-dataset'
import { forYouHits, listCases } from '../eval/list-cases'
import { describeCommand, describeMachine } from '../progress'

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: '../shared/data/diginetica-srgnn' },
    on: { type: 'string', default: 'validation' },
    buckets: { type: 'string', default: '1024' },
    noise: { type: 'string', default: '1' },
    buffer: { type: 'string', default: '1000' },
    'trend-half-life': { type: 'string', default: String(DEFAULT_POPULARITY.trendHalfLife) },
    'pretrain-fraction': { type: 'string', default: '0.2' },
    seed: { type: 'string', default: '1' },
    model: { type: 'string' },
    cases: { type: 'string', default: '2000' },
    results: { type: 'string' },
  },
})
const number = (name: keyof typeof values) => {
  const value = Number(values[name])
  if (!Number.isFinite(value) || value < 0)
    throw new Error(`--${name}: expected a number ≥ 0, got ${values[name]}`)
  return value
}
if (values.on !== 'validation' && values.on !== 'test')
  throw new Error(`--on: expected validation or test, got ${values.on}`)
const buckets = number('buckets')
const sigma = number('noise')
const K = number('buffer')
const halfLife = number('trend-half-life')

const dataset = await loadDataset(values.data!)
const { nItems } = dataset
const split = splitForFederation(
  dataset.train,
  number('pretrain-fraction'),
  values.on === 'validation',
)
const targets: number[] = []
for (const s of values.on === 'validation' ? split.validation : dataset.test) {
  for (let j = 1; j < s.length; j++) targets.push(s[j]!)
}
const coverage = (pool: readonly number[]) => {
  const set = new Set(pool)
  return (100 * targets.filter((t) => set.has(t)).length) / targets.length
}

// What the trainer ships at launch: pools from the pre-training sessions alone.
const early = { nItems, itemIds: dataset.itemIds, train: split.early }
const catalogue = generateCatalogue(early)
const trainer = buildCandidatePools(early, catalogue).pools
const trainerScores = { popular: coverage(trainer.popular), trending: coverage(trainer.trending) }
console.log(
  `${dataset.name}: ${split.later.length} devices, ${targets.length} ${values.on} next items; ` +
    `trainer's pools (${split.early.length} pre-training sessions) hold popular ${trainerScores.popular.toFixed(2)} %, trending ${trainerScores.trending.toFixed(2)} %`,
)

const random = createRandom(number('seed'))
const gaussian = () => {
  const u = Math.max(random(), 1e-12)
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random())
}
// The exact counts of the same sessions, without sketch or noise, decayed alike.
const exact: PopularityState = {
  total: new Float32Array(nItems),
  trend: new Float32Array(nItems),
  reports: 0,
}
let state: PopularityState | undefined
const rows = []
const releases = Math.ceil(split.later.length / K)
const started = performance.now()
for (let release = 1; release <= releases; release++) {
  const devices = split.later.slice((release - 1) * K, release * K)
  // Devices trained from version `release` (the first is the trainer's v1) seed with it.
  const reports = devices.map((session) => ({
    seed: release,
    values: sketchPopularity([session], release, buckets).values,
  }))
  state = advancePopularity(
    state,
    sumReports(reports, buckets, sigma, gaussian),
    reports.length,
    nItems,
    halfLife,
  )
  const decay = 0.5 ** (1 / halfLife)
  for (let i = 0; i < nItems; i++) exact.trend[i]! *= decay
  for (const session of devices) {
    for (const item of new Set(session)) {
      exact.total[item]!++
      exact.trend[item]!++
    }
  }
  exact.reports += devices.length
  if (release % 10 === 0 || release === releases) {
    const reported = poolsFromReports(state, trainer, catalogue)
    const counted = poolsFromReports(exact, trainer, catalogue)
    const row = {
      release,
      reports: state.reports,
      popular: coverage(reported.popular),
      trending: coverage(reported.trending),
      exactPopular: coverage(counted.popular),
      exactTrending: coverage(counted.trending),
    }
    rows.push(row)
    console.log(
      `after ${row.reports} reports (${release} releases): popular ${row.popular.toFixed(2)} % ` +
        `(exact counts ${row.exactPopular.toFixed(2)}), trending ${row.trending.toFixed(2)} % ` +
        `(exact ${row.exactTrending.toFixed(2)})`,
    )
  }
}
const seconds = (performance.now() - started) / 1000
const finalPools = {
  trainer,
  reports: poolsFromReports(state!, trainer, catalogue),
  exact: poolsFromReports(exact, trainer, catalogue),
}

// The for-you list with each pool set, on held-out prefixes (one per session, evenly spread).
const modelFile =
  values.model ??
  path.join(defaultModelDir(dataset.name), `pretrain-${values['pretrain-fraction']}-e3.prw`)
let forYou: Record<keyof typeof finalPools, number> | null = null
let coldStart: Record<keyof typeof finalPools, number> | null = null
let forYouCases = 0
if (existsSync(modelFile)) {
  await setNodeBackend('wasm')
  const model = await loadModel(modelFile)
  const scored = (values.on === 'validation' ? split.validation : dataset.test).filter(
    (s) => s.length >= 2,
  )
  const cases = listCases(scored, number('cases'))
  forYouCases = cases.length
  const idOf = catalogue.items.map((item) => item.id)
  const hitRate = async (pools: CandidatePools) => {
    const recommender = createRecommender({
      model,
      modelVersion: 'bench',
      catalogue,
      pools,
      rules: createDefaultRules(),
      neighbourIndex: false,
    })
    // A shopper arriving with no history gets the trending list: how often it holds the first
    // item a held-out session viewed.
    const empty = { sessionProductIds: [], recentlyViewed: [], cartProductIds: [], purchases: [] }
    const arrival = await recommender.recommend({ scenario: 'trending', limit: 20 }, empty)
    const listed = new Set(arrival.items.map((item) => item.productId))
    const firstHits = scored.filter((session) => listed.has(idOf[session[0]!]!)).length
    const { hits } = await forYouHits(recommender, cases, idOf)
    recommender.dispose()
    return {
      forYou: (100 * hits) / cases.length,
      coldStart: (100 * firstHits) / scored.length,
    }
  }
  const trainerRate = await hitRate(finalPools.trainer)
  const reportsRate = await hitRate(finalPools.reports)
  const exactRate = await hitRate(finalPools.exact)
  forYou = { trainer: trainerRate.forYou, reports: reportsRate.forYou, exact: exactRate.forYou }
  coldStart = {
    trainer: trainerRate.coldStart,
    reports: reportsRate.coldStart,
    exact: exactRate.coldStart,
  }
  model.dispose()
  const describe = (r: Record<keyof typeof finalPools, number>) =>
    `trainer's pools ${r.trainer.toFixed(2)} %, pools from reports ${r.reports.toFixed(2)} %, from exact counts ${r.exact.toFixed(2)} %`
  console.log(
    `for-you top 20 with ${path.relative(process.cwd(), modelFile)}, next item in the list on ` +
      `${cases.length} ${values.on} prefixes: ${describe(forYou)}`,
  )
  console.log(
    `cold start (trending, top 20): a ${values.on} session's first item in the list, ` +
      `${scored.length} sessions: ${describe(coldStart)}`,
  )
} else {
  console.log(`no ${path.relative(process.cwd(), modelFile)}: for-you lists not scored`)
}
// With P28 each release is two Gaussian mechanisms of multiplier σ: one of σ/√2 (P20).
const epsilon = epsilonAfter(releases, sigma / Math.SQRT2)
console.log(
  `${releases} releases in ${seconds.toFixed(1)} s; ε = ${epsilon.toFixed(1)} at δ = 1e-6 for model and popularity together (σ = ${sigma})`,
)
const out = path.resolve(
  values.results ?? path.join('bench', 'results', `popularity-${dataset.name}-${values.on}.json`),
)
await mkdir(path.dirname(out), { recursive: true })
await writeFile(
  out,
  JSON.stringify(
    {
      dataset: dataset.name,
      split: values.on,
      date: new Date().toISOString(),
      machine: describeMachine(),
      command: describeCommand('bench:popularity'),
      settings: { buckets, noiseMultiplier: sigma, bufferSize: K, trendHalfLife: halfLife },
      poolSize: LOG_POOL_SIZES,
      targets: targets.length,
      trainer: trainerScores,
      releases: rows,
      epsilon,
      forYou: forYou && {
        model: path.relative(process.cwd(), modelFile),
        cases: forYouCases,
        recall20: forYou,
      },
      coldStart,
    },
    null,
    2,
  ) + '\n',
)
console.log(`wrote ${path.relative(process.cwd(), out)}`)
