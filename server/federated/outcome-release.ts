// The leader's half of a batch of outcome reports (PROTOCOL.md P30c), run in the job thread: when
// an experiment has `minBatch` reports waiting, the batch is recorded in the store (claimed by
// compare-and-set, so replicas never record two, and a leader killed mid-batch asks the very same
// batch again: the helper answers it once), the helper is asked for its share of the sums with
// its half of the noise, the leader adds its own share of exactly the reports the helper
// included with its half, and the totals are stored as one look at the experiment, the reports
// consumed. Neither server ever holds a report in the clear; the store keeps no per-device row
// past its batch (a consumed report keeps its key, client and period, not its body). After a
// batch, exploration's counts are summed over every batch for GET /v1/exploration (P30f).
import { randomUUID } from 'node:crypto'
import { EXPLORE_BUCKETS, OUTCOME_METRICS } from '../../shared/outcome-counts'
import {
  addHalfNoise,
  combineSums,
  EXPLORE_CELLS,
  EXPLORE_CLIPS,
  exploreOffset,
  reportCells,
  sumShares,
} from '../../shared/outcome-report'
import { outcomeShare, readOutcomeHeader } from '../../shared/outcome-transport'
import type { ExplorationTotals } from '../../shared/protocol'
import { SCENARIOS } from '../../shared/artifacts'
import { EXPERIMENT_GROUPS } from '../../shared/experiments'
import { decodeAggregateAnswer } from '../../shared/share-sums'
import type { FederationStore, OutcomeBatchRecord, StoredOutcomeReport } from '../storage/store'
import { cryptoUniform } from '../secure-random'
import type { FedBuffSettings } from './fedbuff'
import { createNodeCipher } from './node-cipher'
import { askHelper, type HelperLink } from './secure-release'

/** The store setting that holds the outcome batch under way (PendingOutcomes as JSON), or empty. */
export const PENDING_OUTCOMES = 'outcomes.pendingBatch'
/** The store setting that holds exploration's totals over every batch (ExplorationTotals, JSON). */
export const EXPLORATION_TOTALS = 'outcomes.exploration'
/** Reports per batch at most: a batch request names each by key (about 35 bytes of JSON). */
export const MAX_OUTCOME_BATCH = 20_000

interface PendingOutcomes {
  id: string
  experiment: string
  arms: number
  /** Leader keys of the reports, in the request's order. */
  keys: string[]
}

export interface OutcomeBatchResult {
  experiment: string
  batch: string
  /** Reports in the totals. */
  reports: number
  /** Reports the helper left out (consumed unsummed), or refused as too few. */
  leftOut: number
  status: 'released' | 'too-small'
}

export interface OutcomeReleaseDeps {
  store: FederationStore
  settings: FedBuffSettings
  now: () => number
  /** The noise's uniform draws (a CSPRNG's unless a test fixes them). */
  uniform?: () => number
}

/** Arms of a report of `cells` cells. */
export const armsOfCells = (cells: number) =>
  (cells - EXPLORE_CELLS) / (SCENARIOS.length * OUTCOME_METRICS.length * EXPERIMENT_GROUPS)

/**
 * One batch for each experiment with enough reports waiting (the batch recorded before a crash
 * first). Without a helper nothing is released (no reports are taken either).
 */
export async function releaseOutcomes(deps: OutcomeReleaseDeps): Promise<OutcomeBatchResult[]> {
  const secure = deps.settings.secure
  if (!secure) return []
  const link: HelperLink = { url: secure.helperLink, token: secure.helperToken }
  const results: OutcomeBatchResult[] = []
  let expected = await deps.store.setting(PENDING_OUTCOMES)
  const pending = readPending(expected)
  if (pending && expected) {
    const result = await runBatch(deps, link, pending, expected)
    if (result) results.push(result)
    expected = ''
  }
  // Another replica's batch under way: that replica (or the next check) runs it.
  if (expected) return results
  for (const [experiment, waiting] of await deps.store.outcomeWaiting()) {
    if (waiting < deps.settings.outcomes.minBatch) continue
    const reports = await deps.store.waitingOutcomes(experiment, MAX_OUTCOME_BATCH)
    const batch: PendingOutcomes = {
      id: `outcomes-${randomUUID()}`,
      experiment,
      arms: armsOfCells(readOutcomeHeader(reports[0]!.body).cells),
      keys: reports.map((r) => r.key),
    }
    const claim = JSON.stringify(batch)
    if (!(await deps.store.replaceSetting(PENDING_OUTCOMES, expected, claim))) break
    expected = ''
    const result = await runBatch(deps, link, batch, claim, reports)
    if (result) results.push(result)
  }
  if (
    results.some((r) => r.status === 'released') ||
    !(await deps.store.setting(EXPLORATION_TOTALS))
  ) {
    const totals = sumExploration(await deps.store.outcomeBatches())
    await deps.store.putSetting(EXPLORATION_TOTALS, JSON.stringify(totals))
  }
  return results
}

/**
 * Exploration's counts over `batches`: each batch's section added per bucket (P30f). A batch of
 * a layout without one (made before it) adds nothing.
 */
export function sumExploration(batches: readonly OutcomeBatchRecord[]): ExplorationTotals {
  const shown = new Array<number>(EXPLORE_BUCKETS).fill(0)
  const clicked = new Array<number>(EXPLORE_BUCKETS).fill(0)
  let summed = 0
  let reports = 0
  let variance = 0
  for (const batch of batches) {
    const arms = armsOfCells(batch.totals.byteLength / 4)
    if (!(Number.isInteger(arms) && arms >= 1)) continue
    const { buffer, byteOffset } = batch.totals
    const cells = new DataView(buffer, byteOffset + 4 * exploreOffset(arms), 4 * EXPLORE_CELLS)
    for (let b = 0; b < EXPLORE_BUCKETS; b++) {
      shown[b]! += cells.getInt32(4 * b, true)
      clicked[b]! += cells.getInt32(4 * (EXPLORE_BUCKETS + b), true)
    }
    summed++
    reports += batch.reports
    variance += batch.sigma ** 2
  }
  const sd = Math.sqrt(variance)
  const noise = { shown: sd * EXPLORE_CLIPS.shown, clicked: sd * EXPLORE_CLIPS.clicked }
  return { buckets: EXPLORE_BUCKETS, batches: summed, reports, shown, clicked, noise }
}

async function runBatch(
  deps: OutcomeReleaseDeps,
  link: HelperLink,
  batch: PendingOutcomes,
  claim: string,
  known?: readonly StoredOutcomeReport[],
): Promise<OutcomeBatchResult | null> {
  const { store } = deps
  const forget = async () => void (await store.replaceSetting(PENDING_OUTCOMES, claim, ''))
  const byKey = new Map(
    (known ?? (await store.waitingOutcomes(batch.experiment, MAX_OUTCOME_BATCH))).map((r) => [
      r.key,
      r,
    ]),
  )
  // A batch recorded before a crash that another replica committed since: nothing left to do.
  if (!batch.keys.every((key) => byKey.has(key))) {
    await forget()
    return null
  }
  const helperKey = (key: string) => key.slice(key.lastIndexOf(':') + 1)
  const request = JSON.stringify({
    batch: batch.id,
    experiment: batch.experiment,
    arms: batch.arms,
    reports: batch.keys.map(helperKey),
  })
  const answered = await askHelper(link, 'aggregate-outcomes', request)
  if ('refused' in answered) {
    const { code, message, left } = answered.refused
    if (code !== 'E_BATCH_SMALL') throw new Error(message)
    // Reports the helper can never sum (a device that sent it nothing) would head every next
    // batch: they are consumed unsummed, and the rest wait for more.
    await store.discardOutcomes(left.flatMap((i) => batch.keys[i] ?? []))
    await forget()
    return {
      experiment: batch.experiment,
      batch: batch.id,
      reports: 0,
      leftOut: left.length,
      status: 'too-small',
    }
  }
  const answer = decodeAggregateAnswer(answered.answer)
  const cells = reportCells(batch.arms)
  if (answer.batch !== batch.id)
    throw new Error(`expected the helper's answer for batch ${batch.id}, got ${answer.batch}`)
  if (answer.sums.length !== 4 * cells || answer.sigma === undefined)
    throw new Error(`expected the helper's sums of ${cells} cells and its noise multiplier`)
  const out = new Set<number>()
  for (const [index] of answer.excluded) {
    if (!(index >= 0 && index < batch.keys.length) || out.has(index))
      throw new Error(`expected exclusions of distinct reports of the batch, got index ${index}`)
    out.add(index)
  }
  const cipher = createNodeCipher()
  const summed = batch.keys.filter((_, i) => !out.has(i))
  const discarded = batch.keys.filter((_, i) => out.has(i))
  const leader = sumShares(
    summed.map((key) => outcomeShare(byKey.get(key)!.body, 0, cells, cipher)),
    cells,
  )
  const sigma = deps.settings.outcomes.sigma
  addHalfNoise(leader, batch.arms, sigma, deps.uniform ?? cryptoUniform)
  const helper = new Uint32Array(answer.sums.slice().buffer)
  const totals = combineSums(leader, helper)
  const outcome = await store.commitOutcomeBatch(
    {
      id: batch.id,
      experiment: batch.experiment,
      createdAtMs: deps.now(),
      reports: summed.length,
      // Each half has variance (σ·clip)²/2: the total's is the mean of the two σ², times clip².
      sigma: Math.sqrt((sigma ** 2 + answer.sigma ** 2) / 2),
      totals: new Uint8Array(totals.buffer),
    },
    summed,
    discarded,
  )
  await forget()
  if (outcome === 'conflict') return null
  return {
    experiment: batch.experiment,
    batch: batch.id,
    reports: summed.length,
    leftOut: discarded.length,
    status: 'released',
  }
}

function readPending(value: string | null): PendingOutcomes | null {
  if (!value) return null
  const parsed = JSON.parse(value) as Partial<PendingOutcomes>
  return typeof parsed.id === 'string' &&
    typeof parsed.experiment === 'string' &&
    Number.isInteger(parsed.arms) &&
    Array.isArray(parsed.keys) &&
    parsed.keys.every((k) => typeof k === 'string')
    ? (parsed as PendingOutcomes)
    : null
}
