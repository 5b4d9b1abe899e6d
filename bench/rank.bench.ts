// Ranking alternatives and the whole recommend at the DIGINETICA catalogue size, WASM in Node:
//   npx vitest bench bench/rank.bench.ts --run
// The numbers are quoted in rank.ts; timings are measured here, never asserted in tests.
import * as tf from '@tensorflow/tfjs-core'
import { afterAll, beforeAll, bench, describe } from 'vitest'
import { setNodeBackend } from '../model/node-backend'
import type { CandidatePools, Catalogue, RerankRules } from '../shared/protocol'
import { createGruModel, DEFAULT_GRU_CONFIG, type GruModel } from '../model/gru-model'
import { createRandom } from '../shared/random'
import { encodeSessionBatch } from '../model/session-batch'
import { readItemTable, type ItemTable } from '../client/worker/recommend/item-table'
import { rankCandidates } from '../client/worker/recommend/rank'
import { findNeighbours, type Candidate } from '../client/worker/recommend/recall'
import { selectTopIndices } from '../client/worker/recommend/top-indices'
import { createRecommender, type Recommender } from '../client/worker/recommend/recommend'

const N_ITEMS = 43_097
const N_CANDIDATES = 300
const config = { ...DEFAULT_GRU_CONFIG, nItems: N_ITEMS, dropout: 0 }
const random = createRandom(1)
const pick = (n: number) => Array.from({ length: n }, () => Math.floor(random() * N_ITEMS))
const session = Int32Array.from(pick(10))
const candidates: Candidate[] = [...new Set(pick(N_CANDIDATES * 2))]
  .slice(0, N_CANDIDATES)
  .map((index) => ({ index, source: 'embedding' }))
const options = { time: 2000, warmupTime: 500 }

let model: GruModel
let table: ItemTable
let rows: tf.Tensor2D // [nItems, d], for the row-gather alternative only
let transposed: tf.Tensor2D // [d, nItems], for the column-gather and exact-matMul alternatives
let recommender: Recommender

beforeAll(async () => {
  await setNodeBackend('wasm')
  model = createGruModel(config, 1)
  table = await readItemTable(model)
  rows = tf.tidy(() => model.itemVectors())
  transposed = tf.tidy(() => tf.transpose(rows))
  const catalogue: Catalogue = {
    type: 'pocketrec-catalogue',
    items: Array.from({ length: N_ITEMS }, (_, index) => ({
      id: `p${index}`,
      index,
      name: `Product ${index}`,
      category: `c${index % 50}`,
      brand: `b${index % 300}`,
      price: 10,
      inStock: index % 10 !== 0,
      addedAt: '2026-01-01',
    })),
  }
  const coVisitation: Record<string, number[]> = {}
  for (const i of session) coVisitation[String(i)] = pick(50)
  const pools: CandidatePools = {
    type: 'pocketrec-pools',
    trending: pick(200),
    popular: pick(200),
    new: pick(100),
    byCategory: Object.fromEntries(Array.from({ length: 50 }, (_, c) => [`c${c}`, pick(200)])),
    coVisitation,
  }
  const rules: RerankRules = {
    type: 'pocketrec-rules',
    excludePurchasedDays: 30,
    maxPerCategory: 3,
    maxPerBrand: 2,
    boosts: {},
    pins: {},
  }
  recommender = createRecommender({ model, modelVersion: 'bench', catalogue, pools, rules })
})

afterAll(() => {
  recommender.dispose()
  rows.dispose()
  transposed.dispose()
  model.dispose()
})

describe(`rank ${N_CANDIDATES} candidates of ${N_ITEMS} items (wasm)`, () => {
  bench(
    'encode the session only',
    async () => {
      const s = tf.tidy(() => model.encode(encodeSessionBatch([session], config.maxLen)))
      await s.data()
      s.dispose()
    },
    options,
  )

  bench(
    'score every item, pick the candidates in JS (rankCandidates)',
    async () => {
      rankCandidates(model, table, { session }, candidates)
    },
    options,
  )

  const indices = Int32Array.from(candidates, (c) => c.index)
  bench(
    'alternative: gather 300 columns of the [d, n] table, [1,d]·[d,300]',
    async () => {
      const logits = tf.tidy(() => {
        const query = tf.mul(model.encode(encodeSessionBatch([session], config.maxLen)), 12)
        const items = tf.gather(transposed, tf.tensor1d(indices, 'int32'), 1)
        return tf.matMul(query as tf.Tensor2D, items as tf.Tensor2D)
      })
      await logits.data()
      logits.dispose()
    },
    options,
  )

  bench(
    'alternative: gather 300 rows of an [n, d] table, [300,d]·[d,1]',
    async () => {
      const logits = tf.tidy(() => {
        const query = tf.mul(model.encode(encodeSessionBatch([session], config.maxLen)), 12)
        const items = tf.gather(rows, tf.tensor1d(indices, 'int32')) as tf.Tensor2D
        return tf.matMul(items, tf.reshape(query, [config.embedDim, 1]))
      })
      await logits.data()
      logits.dispose()
    },
    options,
  )
})

describe(`recall pieces and the whole recommend, ${N_ITEMS} items (wasm)`, () => {
  bench(
    'embedding neighbours of 3 recent items: matMul, read-back, top-100 in JS',
    async () => {
      findNeighbours(table, [session[9]!, session[8]!, session[7]!], [1, 0.5, 0.25], 100)
    },
    options,
  )

  const scores = Float32Array.from({ length: N_ITEMS }, () => random())
  bench(
    'JS top-100 selection over 43,097 scores',
    () => {
      selectTopIndices(scores, 100)
    },
    options,
  )

  const shopper = {
    sessionProductIds: [...session].map((i) => `p${i}`),
    recentlyViewed: [],
    cartProductIds: [],
    purchases: [],
  }
  bench(
    'recommend similar, session of 10',
    async () => {
      await recommender.recommend({ scenario: 'similar', productId: 'p7', limit: 20 }, shopper)
    },
    options,
  )

  bench(
    'recommend for-you, session of 10 (recall → rank → rerank)',
    async () => {
      await recommender.recommend({ scenario: 'for-you', limit: 20 }, shopper)
    },
    options,
  )
})
