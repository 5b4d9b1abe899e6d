import { beforeAll, describe, expect, it } from 'vitest'
import { splitWeights } from '../../../shared/federation-layout'
import { fromFixed, type SparseLayout } from '../../../shared/sparse-update'
import type { WeightsFile } from '../../../shared/weights-codec'
import { setNodeBackend } from '../../../model/node-backend'
import { createGruModel, DEFAULT_GRU_CONFIG } from '../../../model/gru-model'
import { exportModelWeights } from '../../../model/model-weights'
import { computeSparseUpdate, type SparsePlan } from './compute-sparse-update'
import { createLocalTrainer } from '../../../model/train-local'

const config = { ...DEFAULT_GRU_CONFIG, nItems: 40, embedDim: 8, hiddenDim: 8, maxLen: 5 }
const layout: SparseLayout = { maxRows: 4, embedDim: 8, denseCoordinates: 50, negativeRows: 5 }
// Viewed, in order of last view: 3, 12, 9, 30, 5, 6, 7 (seven rows; the update carries four).
const sessions = [Int32Array.of(3, 9, 12, 9, 30), Int32Array.of(5, 6, 7)]
// Row 6 is a public negative the shopper also viewed.
const negativeRows = Int32Array.of(20, 6, 33, 1, 17)
const training = { epochs: 3, learningRate: 0.05, denseLearningRate: 0.01, seed: 4 }
const plan: SparsePlan = { slice: 3, layout, negativeRows, clipNorm: 1e6, training }
let global: WeightsFile

describe('a sparse update on the device (PROTOCOL.md P29)', () => {
  beforeAll(async () => {
    await setNodeBackend('cpu')
    const model = createGruModel(config, 2)
    global = await exportModelWeights(model)
    model.dispose()
  })

  it('carries exactly what training the whole model moves: recent rows, the window, the negatives', async () => {
    const update = (await computeSparseUpdate(global, sessions, plan))!
    const c = update.contribution
    expect(update.viewed).toBe(7)
    // The four most recently viewed rows, oldest first.
    expect(Array.from(c.rows)).toEqual([30, 5, 6, 7])

    // The same training on the full table, with the same negatives drawn in the same order:
    // the device's copy of just the rows it needs changes nothing about the result.
    const full = createGruModel(config, 2)
    await createLocalTrainer(full, {
      ...training,
      trainable: 'all',
      optimizer: 'sgd',
      inBatchNegatives: false,
      negativeRows: negativeRows.filter((row) => row !== 6),
    }).train(sessions)
    const trained = splitWeights(await exportModelWeights(full))
    full.dispose()
    const start = splitWeights(global)
    const d = 8
    const change = (row: number, j: number) =>
      trained.table[row * d + j]! - start.table[row * d + j]!
    c.rows.forEach((row, k) => {
      for (let j = 0; j < d; j++)
        expect(fromFixed(c.rowValues[k * d + j]!)).toBeCloseTo(change(row, j), 4)
    })
    // Rows the update leaves out did move in training (3 was viewed): they are simply not sent.
    expect(Math.abs(change(3, 0)) + Math.abs(change(3, 1))).toBeGreaterThan(0)
    // Rows neither viewed nor negatives never move.
    for (let j = 0; j < d; j++) expect(change(2, j)).toBe(0)

    // The window of slice 3: [(3 · 50) mod P, … + 50).
    const P = start.shape.denseSize
    expect(c.denseStart).toBe(150 % P)
    for (let k = 0; k < 50; k++) {
      const at = (c.denseStart + k) % P
      expect(fromFixed(c.dense[k]!)).toBeCloseTo(trained.dense[at]! - start.dense[at]!, 4)
    }
    const moved = c.dense.some((v) => v !== 0)
    expect(moved).toBe(true)

    // Negatives in the manifest's order; the viewed one (6) is zero here, sent with the rows.
    negativeRows.forEach((row, k) => {
      for (let j = 0; j < d; j++) {
        const expected = row === 6 ? 0 : change(row, j)
        expect(fromFixed(c.negatives[k * d + j]!)).toBeCloseTo(expected, 4)
      }
    })
    expect(c.negatives.subarray(0, d).some((v) => v !== 0)).toBe(true)
  })

  it('clips what it sends to the norm bound', async () => {
    const update = (await computeSparseUpdate(global, sessions, { ...plan, clipNorm: 0.01 }))!
    expect(update.clipped).toBe(true)
    expect(update.norm).toBeGreaterThan(0.01)
    const c = update.contribution
    let squares = 0
    for (const values of [c.rowValues, c.dense, c.negatives])
      for (const v of values) squares += fromFixed(v) ** 2
    expect(Math.sqrt(squares)).toBeCloseTo(0.01, 3)
  })

  it('sends nothing for a shopper with nothing to learn from, and refuses a wrong negative set', async () => {
    expect(await computeSparseUpdate(global, [Int32Array.of(4)], plan)).toBeNull()
    await expect(
      computeSparseUpdate(global, sessions, { ...plan, negativeRows: Int32Array.of(1, 2) }),
    ).rejects.toThrow(/5 public negatives, got 2/)
    await expect(
      computeSparseUpdate(global, sessions, {
        ...plan,
        negativeRows: Int32Array.of(1, 2, 3, 2, 4),
      }),
    ).rejects.toThrow(/distinct public negatives/)
    await expect(
      computeSparseUpdate(global, sessions, {
        ...plan,
        negativeRows: Int32Array.of(1, 2, 3, 4, 40),
      }),
    ).rejects.toThrow(/public negatives in \[0, 40\), got 40/)
    await expect(computeSparseUpdate(global, [Int32Array.of(4, 40)], plan)).rejects.toThrow(
      /item indices in \[0, 40\), got 40/,
    )
  })
})
