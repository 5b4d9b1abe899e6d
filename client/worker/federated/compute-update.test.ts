import { beforeAll, describe, expect, it } from 'vitest'
import { contributionNorm, splitWeights } from '../../../shared/federation-layout'
import { decodeUpdate, updateNorm } from '../../../shared/update-codec'
import { sketchPopularity } from '../../../shared/popularity-sketch'
import { decodeFloat16, encodeFloat16, type WeightsFile } from '../../../shared/weights-codec'
import { accumulate, applyBuffer, createBuffer } from '../../../server/federated/fedbuff'
import { setNodeBackend } from '../../../train/node-backend'
import { createGruModel, DEFAULT_GRU_CONFIG } from '../model/gru-model'
import { exportModelWeights } from '../model/model-weights'
import { createLocalTrainer } from './train-local'
import { computeUpdate, sessionsToReport, type RoundPlan } from './compute-update'
import { scoreCases } from './score-cases'

const config = { ...DEFAULT_GRU_CONFIG, nItems: 40, embedDim: 8, hiddenDim: 8, maxLen: 5 }
const sessions = [Int32Array.of(3, 9, 12, 9, 30), Int32Array.of(5, 6, 7)]
const layout = { denseCoordinates: 50, sliceRows: 5, embedDim: 8 }
const training = { epochs: 3, learningRate: 0.01, seed: 4 }
let global: WeightsFile

describe('computing an update on the device (PROTOCOL.md P7–P11)', () => {
  beforeAll(async () => {
    await setNodeBackend('cpu')
    const model = createGruModel(config, 2)
    global = await exportModelWeights(model)
    model.dispose()
  })

  it('P7/P8: the server, adding the update back, lands on the trained weights in the slice only', async () => {
    const plan: RoundPlan = { baseVersion: 1, slice: 3, layout, clipNorm: 1e6, training }
    const update = (await computeUpdate(global, sessions, plan))!
    expect(update.clipped).toBe(false)
    const decoded = decodeUpdate(update.body)
    expect(decoded).toMatchObject({ baseVersion: 1, slice: 3, examples: 6 })
    // P27: the score is the downloaded model's, taken before training on these cases.
    const untrained = createGruModel(config, 2)
    const before = await scoreCases(untrained, sessions)
    expect([decoded.score.cases, decoded.score.hits20]).toEqual([before.cases, before.hits20])
    expect(decoded.score.reciprocalRank20).toBeCloseTo(before.reciprocalRank20, 5)
    untrained.dispose()

    // The same training, run again (it is seeded), gives the weights the device reached.
    const copy = createGruModel(config, 2)
    await createLocalTrainer(copy, {
      ...training,
      trainable: 'all',
      optimizer: 'sgd',
      inBatchNegatives: false,
    }).train(sessions)
    const trained = splitWeights(await exportModelWeights(copy))
    copy.dispose()

    const start = splitWeights(global)
    const buffer = createBuffer(start.shape)
    accumulate(buffer, start.shape, decoded, 1, 0)
    const settings = {
      layout,
      bufferSize: 1,
      minBuffer: 1,
      maxWaitMs: 0,
      maxStaleness: 1,
      exampleCap: 1,
      clipNorm: 1e6,
      serverLearningRate: 1,
      noiseMultiplier: 0,
    }
    const after = applyBuffer(start, buffer, start.shape, settings, () => 0)
    // Dense window [150, 200) of 1,224 dense weights; table rows 15–19.
    let moved = 0
    for (let j = 0; j < start.shape.denseSize; j++) {
      const inSlice = j >= 150 && j < 200
      const expected = inSlice ? trained.dense[j]! : start.dense[j]!
      expect(after.dense[j]).toBeCloseTo(expected, 3) // float16 on the wire
      if (inSlice && Math.abs(trained.dense[j]! - start.dense[j]!) > 1e-3) moved++
    }
    expect(moved).toBeGreaterThan(10) // training moved the window: the check means something
    for (let i = 0; i < start.table.length; i++) {
      const row = Math.floor(i / 8)
      const expected = row >= 15 && row < 20 ? trained.table[i]! : start.table[i]!
      expect(after.table[i]).toBeCloseTo(expected, 3)
    }
  })

  it('P11: clips the slice to the norm bound', async () => {
    const update = (await computeUpdate(global, sessions, {
      baseVersion: 1,
      slice: 0,
      layout,
      clipNorm: 0.01,
      training,
    }))!
    expect(update.clipped).toBe(true)
    expect(update.norm).toBeGreaterThan(0.01)
    expect(updateNorm(decodeUpdate(update.body).values)).toBeCloseTo(0.01, 4)
  })

  it('P8b/P11: a sketch update is clipped on what it does to the model, and lands there', async () => {
    const sketch = { ...layout, sliceRows: 4, tableSketch: true }
    const plan: RoundPlan = { baseVersion: 1, slice: 11, layout: sketch, clipNorm: 0.05, training }
    const update = (await computeUpdate(global, sessions, plan))!
    const decoded = decodeUpdate(update.body)
    expect(decoded.layout).toEqual(sketch)
    expect(update.clipped).toBe(true)
    const start = splitWeights(global)
    expect(contributionNorm(decoded.values, 11, sketch, config.nItems)).toBeCloseTo(0.05, 3)
    // What the server adds has exactly that norm: every row gets its signed bucket.
    const buffer = createBuffer(start.shape)
    accumulate(buffer, start.shape, decoded, 1, 0)
    const added = Math.sqrt(buffer.sums.reduce((sum, x) => sum + x * x, 0))
    expect(added).toBeCloseTo(0.05, 3)
    expect(Array.from(buffer.counts.subarray(start.shape.denseSize))).toEqual(
      new Array(config.nItems).fill(1),
    )
  })

  it('P8: sends the same number of bytes whatever the shopper did, with a fresh key each time', async () => {
    const plan = { baseVersion: 1, slice: 5, layout, clipNorm: 1, training }
    const a = (await computeUpdate(global, sessions, plan))!
    const b = (await computeUpdate(global, [Int32Array.of(1, 2)], plan))!
    expect(a.body.length).toBe(b.body.length)
    expect(Array.from(a.idempotencyKey)).not.toEqual(Array.from(b.idempotencyKey))
  })

  it('P28: carries the sessions’ items as a clipped popularity sketch seeded by the base version', async () => {
    const withPopularity = { ...layout, popularityBuckets: 16 }
    const plan = { baseVersion: 7, slice: 5, layout: withPopularity, clipNorm: 1, training }
    const update = (await computeUpdate(global, sessions, plan))!
    const decoded = decodeUpdate(update.body)
    expect(decoded.layout).toEqual(withPopularity)
    // Items 3, 9, 12, 30, 5, 6, 7: each once, in its cell for version 7, norm clipped to 1.
    const expected = sketchPopularity(sessions, 7, 16).values
    expect(Array.from(decoded.popularity!)).toEqual(
      Array.from(expected, (v) => decodeFloat16(encodeFloat16(v))),
    )
    expect(updateNorm(decoded.popularity!)).toBeCloseTo(1, 2)
    // Seeded by the base version, not the slice: another version puts the items elsewhere.
    expect(Array.from(sketchPopularity(sessions, 5, 16).values)).not.toEqual(Array.from(expected))
    // The same size for a device that viewed two items.
    const small = (await computeUpdate(global, [Int32Array.of(1, 2)], plan))!
    expect(small.body.length).toBe(update.body.length)
  })

  it('P28: sketches only the sessions it is told to report; none gives an empty sketch', async () => {
    const withPopularity = { ...layout, popularityBuckets: 16 }
    const plan = (popularitySessions: Int32Array[]): RoundPlan => ({
      baseVersion: 7,
      slice: 5,
      layout: withPopularity,
      clipNorm: 1,
      training,
      popularitySessions,
    })
    const only = decodeUpdate((await computeUpdate(global, sessions, plan([sessions[1]!])))!.body)
    expect(Array.from(only.popularity!)).toEqual(
      Array.from(sketchPopularity([sessions[1]!], 7, 16).values, (v) =>
        decodeFloat16(encodeFloat16(v)),
      ),
    )
    const none = decodeUpdate((await computeUpdate(global, sessions, plan([])))!.body)
    expect(Array.from(none.popularity!)).toEqual(new Array(16).fill(0))
  })

  it('P28: a session is reported once: later updates carry only newer sessions', () => {
    const recent = [3, 5, 8].map((id) => ({ id, items: Int32Array.of(id, id + 1) }))
    expect(sessionsToReport(recent, null)).toEqual({
      sessions: recent.map((s) => s.items),
      through: 8,
    })
    expect(sessionsToReport(recent, 5)).toEqual({ sessions: [recent[2]!.items], through: 8 })
    expect(sessionsToReport(recent, 8)).toEqual({ sessions: [], through: null })
  })

  it('has nothing to send without a prefix case', async () => {
    expect(
      await computeUpdate(global, [Int32Array.of(4)], {
        baseVersion: 1,
        slice: 0,
        layout,
        clipNorm: 1,
      }),
    ).toBeNull()
  })

  it('P7: each update draws its own negatives: two devices with the same session differ', async () => {
    const plan = (seed?: number): RoundPlan => ({
      baseVersion: 1,
      slice: 0,
      layout,
      clipNorm: 1e6,
      training: { epochs: 1, learningRate: 0.5, seed },
    })
    const values = async (seed?: number) =>
      Array.from(decodeUpdate((await computeUpdate(global, sessions, plan(seed)))!.body).values)
    // A fixed seed (as tests pass) repeats the run exactly; none gives each update its own.
    expect(await values(5)).toEqual(await values(5))
    expect(await values()).not.toEqual(await values())
  })
})
