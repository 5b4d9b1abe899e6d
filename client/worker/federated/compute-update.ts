// The device's half of a federated round (PROTOCOL.md P7–P11): train a copy of the *global*
// weights on the shopper's sessions (never the personalised copy), take the difference, cut out
// the slice the server assigned, clip it to the norm bound, encode it. Nothing here looks at
// which items the shopper saw except the training itself and, where the layout asks for one,
// the popularity sketch of P28 (each item once, clipped); the slice comes with the token.
import { contributionNorm, extractSlice, splitWeights } from '../../../shared/federation-layout'
import { sketchPopularity } from '../../../shared/popularity-sketch'
import {
  encodeUpdate,
  MAX_EXAMPLES,
  type DeviceScore,
  type UpdateLayout,
} from '../../../shared/update-codec'
import type { WeightsFile } from '../../../shared/weights-codec'
import { expandPrefixes } from '../model/prefix-cases'
import { exportModelWeights, importModelWeights } from '../model/model-weights'
import { scoreCases } from './score-cases'
import { createUpdateTrainer, type LocalTrainerOptions } from './train-local'

/** What the manifest's `federation` block and the upload token tell a device. */
export interface RoundPlan {
  baseVersion: number
  slice: number
  layout: UpdateLayout
  clipNorm: number
  /** Local training for the update; `trainable: 'all'` unless the manifest says otherwise. */
  training?: LocalTrainerOptions
  /**
   * P28: the sessions whose items the popularity sketch carries (default: those trained on). The
   * worker passes only sessions no earlier update reported (`sessionsToReport`).
   */
  popularitySessions?: readonly Int32Array[]
}

/**
 * P28: of the device's recent sessions (oldest first, with their stored ids), those newer than
 * the last one reported, and the id to record as reported once the update is queued (null:
 * nothing new, keep the old mark).
 */
export function sessionsToReport(
  recent: readonly { id: number; items: Int32Array }[],
  reportedThrough: number | null,
): { sessions: Int32Array[]; through: number | null } {
  const fresh = recent.filter((s) => reportedThrough === null || s.id > reportedThrough)
  return {
    sessions: fresh.map((s) => s.items),
    through: fresh.length > 0 ? Math.max(...fresh.map((s) => s.id)) : null,
  }
}

export interface ComputedUpdate {
  /** The encoded body (shared/update-codec.ts), ready for the outbox. */
  body: Uint8Array
  idempotencyKey: Uint8Array
  examples: number
  /** P11's norm before clipping (the slice's L2 norm); the body's is min(this, clipNorm). */
  norm: number
  clipped: boolean
  /** How the base version ranked these sessions' next items before training (P27). */
  score: DeviceScore
}

/**
 * Trains a fresh copy of `global` on `sessions` (model rows, oldest first) and returns the
 * encoded update for `plan`, or null when there is nothing to learn from (no prefix case) or
 * the run diverged (its weights were rolled back, so the difference is zero).
 */
export async function computeUpdate(
  global: WeightsFile,
  sessions: readonly Int32Array[],
  plan: RoundPlan,
): Promise<ComputedUpdate | null> {
  const model = importModelWeights(global)
  try {
    // Scored first: after training on them the cases would no longer be unseen (P27).
    const score = await scoreCases(model, sessions)
    const trainer = createUpdateTrainer(model, plan.training)
    const result = await trainer.train(sessions)
    if (!result.changed) return null
    const trained = splitWeights(await exportModelWeights(model))
    const start = splitWeights(global)
    const delta = {
      dense: subtract(trained.dense, start.dense),
      table: subtract(trained.table, start.table),
    }
    const values = extractSlice(delta, plan.slice, plan.layout, start.shape)
    const norm = contributionNorm(values, plan.slice, plan.layout, start.shape.nItems)
    const clipped = norm > plan.clipNorm
    if (clipped) {
      const scale = plan.clipNorm / norm
      for (let i = 0; i < values.length; i++) values[i] = values[i]! * scale
    }
    const idempotencyKey = globalThis.crypto.getRandomValues(new Uint8Array(16))
    const examples = Math.min(
      expandPrefixes(sessions as Int32Array[], { maxPrefixLen: model.config.maxLen }).length,
      MAX_EXAMPLES,
    )
    const buckets = plan.layout.popularityBuckets ?? 0
    const body = encodeUpdate({
      baseVersion: plan.baseVersion,
      examples,
      slice: plan.slice,
      layout: plan.layout,
      idempotencyKey,
      values,
      // P28: the same sessions the update trained on, seeded by the version it trained from.
      ...(buckets > 0
        ? {
            popularity: sketchPopularity(
              plan.popularitySessions ?? sessions,
              plan.baseVersion,
              buckets,
            ).values,
          }
        : {}),
      score,
    })
    return { body, idempotencyKey, examples, norm, clipped, score }
  } finally {
    model.dispose()
  }
}

function subtract(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length)
  for (let i = 0; i < a.length; i++) out[i] = a[i]! - b[i]!
  return out
}
