// What a device counts for the operator's experiments (issue 15, P30b), before any report is made
// of it (outcome-report.ts): per scenario the lists, clicks, adds, purchases and revenue of a UTC
// day, and the exploring arm's impressions of and clicks on explored items per bucket of item
// ids (P30f). Apart from the report, which the model part builds: the worker's entry counts.
import { SCENARIOS } from './artifacts'
import type { Scenario } from './protocol'

export const OUTCOME_METRICS = ['lists', 'clicks', 'adds', 'purchases', 'revenue'] as const
export type OutcomeMetric = (typeof OUTCOME_METRICS)[number]

/** A device reports its counts once per period: a UTC day. */
export const OUTCOME_PERIOD_MS = 86_400_000

/** The period of a moment: its UTC day number. */
export const outcomePeriod = (ms: number) => Math.floor(ms / OUTCOME_PERIOD_MS)

const M = OUTCOME_METRICS.length

/** A device's counts in one experiment: [scenario][metric], flattened (S × M). */
export type OutcomeCounts = number[]

export const emptyOutcomeCounts = (): OutcomeCounts =>
  new Array<number>(SCENARIOS.length * M).fill(0)

export function outcomeCell(scenario: Scenario, metric: OutcomeMetric): number {
  return SCENARIOS.indexOf(scenario) * M + OUTCOME_METRICS.indexOf(metric)
}

/**
 * Buckets of exploration's counts: item ids hashed (exploreBucket). A release has 200 new items:
 * each shares its bucket with another one time in six.
 */
export const EXPLORE_BUCKETS = 1024

/** A device's exploration counts of a day, sparse: [bucket, impressions, clicks]. */
export type ExploreCounts = Array<[number, number, number]>

/** An item id's bucket: FNV-1a over its UTF-16 code units, modulo EXPLORE_BUCKETS. */
export function exploreBucket(productId: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < productId.length; i++)
    hash = Math.imul(hash ^ productId.charCodeAt(i), 0x01000193)
  return (hash >>> 0) % EXPLORE_BUCKETS
}

/** Counts one impression of, or one click on, an explored item. */
export function countExplored(
  counts: ExploreCounts,
  productId: string,
  what: 'shown' | 'clicked',
): void {
  const bucket = exploreBucket(productId)
  let entry = counts.find(([b]) => b === bucket)
  if (!entry) counts.push((entry = [bucket, 0, 0]))
  entry[what === 'shown' ? 1 : 2] += 1
}
