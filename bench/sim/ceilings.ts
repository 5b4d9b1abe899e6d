// What the simulation compares federated versions with: the pre-trained model trained on,
// centrally, for one epoch over the sessions N devices hold (--ceiling), and the helpers both
// channels of `npm run sim` share to pick devices and describe scores.
import { exportModelWeights, importModelWeights } from '../../model/model-weights'
import type { WeightsFile } from '../../shared/weights-codec'
import type { GroupReport } from '../../model/eval/evaluate'
import { DEFAULT_FIT_OPTIONS, fitGruModel } from '../../train/fit'

export interface CeilingRow {
  devices: number
  examples: number
  recall20: number
  mrr20: number
  byTarget: GroupReport[]
  seconds: number
  /** With --ceiling-parts: the central item table on the pre-trained rest, and the reverse. */
  parts?: {
    tableOnly: { recall20: number; mrr20: number }
    restOnly: { recall20: number; mrr20: number }
  }
}

/** `base` with the tensors `take` names replaced by those of `from`. */
function mixWeights(
  base: WeightsFile,
  from: WeightsFile,
  take: (name: string) => boolean,
): WeightsFile {
  const byName = new Map(from.tensors.map((t) => [t.name, t]))
  return { ...base, tensors: base.tensors.map((t) => (take(t.name) ? byName.get(t.name)! : t)) }
}

/** The sessions `count` devices hold: evenly spread over the later sessions, in time order. */
export function deviceSessions(later: Int32Array[], count: number): Int32Array[] {
  const n = Math.min(count, later.length)
  const stride = n > 0 ? later.length / n : 0
  return Array.from({ length: n }, (_, i) => later[Math.floor(i * stride)]!)
}

export function describeGroups(groups: GroupReport[]): string {
  return groups.map((g) => `${g.name} ${g.recall20.toFixed(2)} (${g.cases})`).join(', ')
}

export interface VersionRow {
  version: number
  devices: number
  recall20: number
  mrr20: number
  epsilon: number
  /** Recall@20 and MRR@20 over the cases whose target the pre-training sessions hold, or not. */
  byTarget: GroupReport[]
  /** P28: share (%) of the scored sessions' next items in the served popular and trending pools. */
  pools?: PoolCoverage
}

export interface PoolCoverage {
  popular: number
  trending: number
  /** Devices whose popularity reports the version's totals hold. */
  reports: number
  /** Whose pools the version serves: the trainer's (v1's) or rebuilt from reports. */
  source: 'trainer' | 'reports'
}

export type Evaluate = (file: WeightsFile) => Promise<{
  recall20: number
  mrr20: number
  byTarget: GroupReport[]
}>

/**
 * --ceiling: the pre-trained model trained on, centrally, for one epoch over the sessions N
 * devices hold, for each N of `spec` (default: the run's device count; `none`: no ceiling).
 */
export async function computeCeilings(
  spec: string | undefined,
  deviceCount: number,
  global: WeightsFile,
  later: Int32Array[],
  evaluate: Evaluate,
  parts: boolean,
  log: (line: string) => void,
): Promise<CeilingRow[]> {
  const ceilings: CeilingRow[] = []
  const ceilingCounts =
    spec === 'none' || (spec === undefined && deviceCount === 0)
      ? []
      : (spec ?? String(deviceCount)).split(',').map((n) => Number(n))
  for (const count of ceilingCounts) {
    if (!Number.isInteger(count) || count < 1)
      throw new Error(`--ceiling: expected device counts ≥ 1, got ${spec}`)
    const t0 = performance.now()
    const held = deviceSessions(later, count)
    const model = importModelWeights(global)
    const fit = await fitGruModel(model, held, { ...DEFAULT_FIT_OPTIONS, epochs: 1 })
    const central = await exportModelWeights(model)
    const result = await evaluate(central)
    model.dispose()
    const row: CeilingRow = {
      devices: held.length,
      examples: fit.examples,
      recall20: result.recall20,
      mrr20: result.mrr20,
      byTarget: result.byTarget,
      seconds: (performance.now() - t0) / 1000,
    }
    log(
      `ceiling: the pre-trained model + one central epoch on ${row.devices} devices' sessions ` +
        `(${row.examples} examples): Recall@20 ${row.recall20.toFixed(2)}, MRR@20 ${row.mrr20.toFixed(2)}; by target: ${describeGroups(row.byTarget)}`,
    )
    if (parts) {
      const isTable = (name: string) => name === 'item_embedding'
      const score = async (file: WeightsFile) => {
        const { recall20, mrr20 } = await evaluate(file)
        return { recall20, mrr20 }
      }
      row.parts = {
        tableOnly: await score(mixWeights(global, central, isTable)),
        restOnly: await score(mixWeights(global, central, (name) => !isTable(name))),
      }
      log(
        `  its item table on the pre-trained rest: Recall@20 ${row.parts.tableOnly.recall20.toFixed(2)}; ` +
          `its other weights on the pre-trained table: ${row.parts.restOnly.recall20.toFixed(2)}`,
      )
    }
    ceilings.push(row)
  }
  return ceilings
}
