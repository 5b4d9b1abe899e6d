// Dataset → trained GRU, the path shared by `npm run train` and `npm run bench:quality`:
// carve a validation split from the end of training, fit with per-epoch validation, choose the
// repeat and co-visitation bonuses on the same split, and return the best-validated model with a
// JSON-ready report.
import * as tf from '@tensorflow/tfjs-core'
import {
  createGruModel,
  DEFAULT_GRU_CONFIG,
  withBonuses,
  type GruModel,
  type GruModelConfig,
} from '../model/gru-model'
import { CO_VISIT_BONUS_SPAN } from '../model/co-visit-bonus'
import { coVisitationLists } from './artifacts/co-visitation'
import { countItems, splitValidation } from './data/examples'
import type { SessionDataset } from './data/types'
import { evaluateScorer } from '../model/eval/evaluate'
import {
  DEFAULT_FIT_OPTIONS,
  fitGruModel,
  type FitOptions,
  type FitProgress,
  type FitReport,
} from './fit'
import { createGruScorer } from '../model/eval/gru-scorer'
import type { LocalRateChoice } from './local-rate'
import { createProgressLine, formatDuration } from './progress'

export interface TrainSettings {
  model: Omit<GruModelConfig, 'nItems'>
  fit: Omit<FitOptions, 'validate' | 'onProgress'>
  /** Share of training sessions (the most recent) held out for model selection. */
  validationFraction: number
  /** Cases of the validation split scored after each epoch (the first N, deterministic). */
  validationCases: number
}

export const DEFAULT_TRAIN_SETTINGS: TrainSettings = {
  model: DEFAULT_GRU_CONFIG,
  fit: DEFAULT_FIT_OPTIONS,
  validationFraction: 0.05,
  validationCases: 15_000,
}

export interface TrainReport {
  dataset: string
  backend: string
  settings: TrainSettings
  fitSessions: number
  validationSessions: number
  parameters: number
  fit: FitReport
  validationRecall20ByEpoch: Array<number | undefined>
  /** The repeat bonus chosen on the validation split, with each candidate's scores. */
  repeatBonus?: BonusChoice
  /** The co-visitation bonus chosen next on the same split, the repeat bonus in place. */
  coVisitBonus?: BonusChoice
  /** With --tune: the on-device fine-tuning rate chosen on the same split (local-rate.ts). */
  localTraining?: LocalRateChoice
}

/** Repeat bonuses tried after training: logits are scale·cosine, 12 by default. */
export const REPEAT_BONUSES = [0, 0.5, 1, 2, 3, 4] as const
/** Co-visitation bonuses tried after the repeat bonus (the most co-visited item earns all of it). */
export const CO_VISIT_BONUSES = [0, 0.25, 0.5, 1] as const

export interface BonusChoice {
  chosen: number
  trials: Array<{ bonus: number; recall20: number; mrr20: number }>
}

/**
 * The scoring bonuses (GruModelConfig.repeatBonus, then coVisitBonus with the chosen repeat
 * bonus in place) that give the best Recall@20 + MRR@20 on the validation cases (the smaller on
 * a tie), and the model with them (its variables shared). The co-visitation lists are the fit
 * split's, cut as the pools cut them.
 */
export async function chooseBonuses(
  model: GruModel,
  dataset: SessionDataset,
  settings: Pick<TrainSettings, 'validationFraction' | 'validationCases'>,
  log: (line: string) => void = (line) => console.error(line),
): Promise<{ model: GruModel; repeatBonus: BonusChoice; coVisitBonus: BonusChoice }> {
  const { fit, validation } = splitValidation(dataset.train, settings.validationFraction)
  const trainCounts = countItems(fit, dataset.nItems)
  const coVisitation = coVisitationLists(fit, dataset.nItems, CO_VISIT_BONUS_SPAN)
  const choose = async (
    name: string,
    bonuses: readonly number[],
    withBonus: (bonus: number) => GruModel,
  ): Promise<BonusChoice> => {
    const trials: BonusChoice['trials'] = []
    for (const bonus of bonuses) {
      const scorer = createGruScorer(withBonus(bonus), 'GRU', { coVisitation })
      try {
        const { metrics } = await evaluateScorer(scorer, validation, {
          nItems: dataset.nItems,
          trainCounts,
          maxCases: settings.validationCases,
          maxPrefixLen: model.config.maxLen,
        })
        trials.push({ bonus, recall20: metrics['recall@20']!, mrr20: metrics['mrr@20']! })
      } finally {
        scorer.dispose?.()
      }
    }
    const score = (t: (typeof trials)[number]) => t.recall20 + t.mrr20
    const best = trials.reduce((a, b) => (score(b) > score(a) ? b : a))
    const shown = trials.map((t) => `${t.bonus}: ${(100 * t.recall20).toFixed(2)} / ${(100 * t.mrr20).toFixed(2)}`) // prettier-ignore
    log(`${name} ${best.bonus} (validation Recall@20 / MRR@20 by bonus: ${shown.join(', ')})`)
    return { chosen: best.bonus, trials }
  }
  const repeatBonus = await choose('repeat bonus', REPEAT_BONUSES, (bonus) =>
    withBonuses(model, { repeatBonus: bonus, coVisitBonus: 0 }),
  )
  const coVisitBonus = await choose('co-visitation bonus', CO_VISIT_BONUSES, (bonus) =>
    withBonuses(model, { repeatBonus: repeatBonus.chosen, coVisitBonus: bonus }),
  )
  return {
    model: withBonuses(model, {
      repeatBonus: repeatBonus.chosen,
      coVisitBonus: coVisitBonus.chosen,
    }),
    repeatBonus,
    coVisitBonus,
  }
}

export async function trainOnDataset(
  dataset: SessionDataset,
  settings: TrainSettings,
  log: (line: string) => void = (line) => console.error(line),
): Promise<{ model: GruModel; report: TrainReport }> {
  const config: GruModelConfig = { ...settings.model, nItems: dataset.nItems }
  const { fit, validation } = splitValidation(dataset.train, settings.validationFraction)
  const trainCounts = countItems(fit, dataset.nItems)
  const model = createGruModel(config, settings.fit.seed)
  const progress = createProgressLine()
  log(
    `training on ${fit.length} sessions (${validation.length} held out for validation), ` +
      `${dataset.nItems} items, ${model.parameterCount()} parameters, backend ${tf.getBackend()}`,
  )
  let lastRecall: number | undefined
  let last: FitProgress | undefined
  const validate =
    validation.length > 0
      ? async (epoch: number) => {
          const scorer = createGruScorer(model)
          try {
            const result = await evaluateScorer(scorer, validation, {
              nItems: dataset.nItems,
              trainCounts,
              maxCases: settings.validationCases,
              maxPrefixLen: config.maxLen,
            })
            lastRecall = result.metrics['recall@20']!
            progress.done(
              `epoch ${epoch}: loss ${last?.loss.toFixed(4)}, ${Math.round(last?.examplesPerSec ?? 0)} ex/s, ` +
                `validation Recall@20 ${(lastRecall * 100).toFixed(2)} ` +
                `MRR@20 ${(result.metrics['mrr@20']! * 100).toFixed(2)} on ${result.cases} cases`,
            )
            return lastRecall
          } finally {
            scorer.dispose?.()
          }
        }
      : undefined
  const fitReport = await fitGruModel(model, fit, {
    ...settings.fit,
    validate,
    onProgress: (p) => {
      last = p
      progress.update(
        `epoch ${p.epoch}/${p.epochs} step ${p.step}/${p.steps} · ${Math.round(p.examplesPerSec)} ex/s · ` +
          `loss ${p.loss.toFixed(4)} · val R@20 ${lastRecall === undefined ? '–' : (lastRecall * 100).toFixed(2)} · ` +
          `epoch ETA ${formatDuration(p.etaSec)}`,
      )
    },
  })
  log(`best epoch ${fitReport.bestEpoch} after ${formatDuration(fitReport.trainSeconds)}`)
  const chosen =
    settings.model.repeatBonus === undefined && validation.length > 0
      ? await chooseBonuses(model, dataset, settings, log)
      : undefined
  return {
    model: chosen?.model ?? model,
    report: {
      dataset: dataset.name,
      backend: tf.getBackend(),
      settings,
      fitSessions: fit.length,
      validationSessions: validation.length,
      parameters: model.parameterCount(),
      fit: fitReport,
      validationRecall20ByEpoch: fitReport.epochs.map((e) => e.validation),
      ...(chosen ? { repeatBonus: chosen.repeatBonus, coVisitBonus: chosen.coVisitBonus } : {}),
    },
  }
}
