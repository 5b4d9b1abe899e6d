// The SR-GNN/NARM next-item protocol: every prefix s[:k] (k = 1..L-1) of every test session is
// one case with target s[k], ranked against the whole catalogue. Scorers see batches of
// prefixes; ranking and top-20 lists are computed here so every scorer is measured alike.

import { expandPrefixes } from '../prefix-cases'
import {
  LIST_K,
  createMetricsAccumulator,
  popularMask,
  rankOfTarget,
  topKIndices,
  type MetricsResult,
} from './metrics'
import type { SessionScorer } from './scorer'

export interface EvaluateOptions {
  nItems: number
  /** Item counts in the training sessions; the top 1 % define popShare@20. */
  trainCounts: Int32Array
  ks?: readonly number[]
  batchSize?: number
  /** Prefixes longer than this are cut to their most recent items (the case count is unchanged). */
  maxPrefixLen?: number
  /** Deterministic subsample: the first N cases in session order, shortest prefix first. */
  maxCases?: number
  onProgress?: (done: number, total: number) => void
  /** Also report Recall@20 and MRR@20 over the cases whose target each group holds. */
  targetGroups?: readonly TargetGroup[]
}

export interface TargetGroup {
  name: string
  holds: (item: number) => boolean
}

export interface GroupReport {
  name: string
  cases: number
  /** Percentages, as in the report tables. */
  recall20: number
  mrr20: number
}

export interface EvalReport extends MetricsResult {
  scorer: string
  /** Cases whose target is an item unseen in training: misses, however the list looks. */
  unknownTargets: number
  /** Cases whose prefix holds no item seen in training: no list, misses. */
  unknownPrefixes: number
  /** Wall time per case, scoring plus ranking. */
  msPerCase: number
  groups?: GroupReport[]
}

/**
 * Runs the protocol over `sessions` (each of length ≥ 2 to yield a case) and reports metrics.
 * Negative ids are items unseen in training (SessionDataset.testAsPublished): every case counts,
 * a target among them is a miss, they are left out of prefixes, and a case whose prefix is
 * nothing but them is a miss with no list (issue 16).
 */
export async function evaluateScorer(
  scorer: SessionScorer,
  sessions: Int32Array[],
  options: EvaluateOptions,
): Promise<EvalReport> {
  const { nItems, trainCounts, onProgress } = options
  const batchSize = options.batchSize ?? 256
  const maxCases = options.maxCases ?? Infinity
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`expected a positive integer batchSize, got ${batchSize}`)
  }
  if (!(maxCases >= 0)) {
    throw new RangeError(`expected maxCases ≥ 0, got ${maxCases}`)
  }
  if (trainCounts.length !== nItems) {
    throw new RangeError(`expected trainCounts of length ${nItems}, got ${trainCounts.length}`)
  }
  checkItemRange(sessions, nItems)
  const cases = expandPrefixes(sessions)
    .slice(0, maxCases)
    .map((c) => {
      const known = c.prefix.some((i) => i < 0) ? c.prefix.filter((i) => i >= 0) : c.prefix
      const cut = options.maxPrefixLen ?? Infinity
      return { ...c, prefix: known.length > cut ? known.subarray(known.length - cut) : known }
    })
  const total = cases.length
  const accumulator = createMetricsAccumulator({
    ks: options.ks,
    nItems,
    popularItems: popularMask(trainCounts),
  })

  // The top-20 list (coverage, popularity share) or longer when a cut-off K is (MAP@K).
  const listLength = Math.max(LIST_K, ...(options.ks ?? []))
  const groups = (options.targetGroups ?? []).map((group) => ({
    group,
    cases: 0,
    hits: 0,
    reciprocal: 0,
  }))
  let unknownTargets = 0
  let unknownPrefixes = 0
  const started = performance.now()
  for (let first = 0; first < total; first += batchSize) {
    const end = Math.min(total, first + batchSize)
    const batch = cases.slice(first, end)
    const scored = batch.filter((c) => c.prefix.length > 0)
    const scores = scored.length > 0 ? await scorer.scoreBatch(scored.map((x) => x.prefix)) : new Float32Array(0) // prettier-ignore
    if (scores.length !== scored.length * nItems) {
      throw new RangeError(
        `expected ${scored.length}×${nItems} = ${scored.length * nItems} scores from ` +
          `${scorer.name}, got ${scores.length}`,
      )
    }
    let row = 0
    for (const c of batch) {
      if (c.target < 0) unknownTargets += 1
      if (c.prefix.length === 0) {
        unknownPrefixes += 1
        accumulator.addMiss()
        continue
      }
      const offset = row++ * nItems
      // An item unseen in training has no score: it is never on the list.
      const rank = c.target < 0 ? Infinity : rankOfTarget(scores, offset, nItems, c.target)
      accumulator.add(rank, topKIndices(scores, offset, nItems, listLength), c.rest)
      for (const g of groups) {
        if (c.target < 0 || !g.group.holds(c.target)) continue
        g.cases += 1
        if (rank <= LIST_K) {
          g.hits += 1
          g.reciprocal += 1 / rank
        }
      }
    }
    onProgress?.(end, total)
  }
  const elapsedMs = performance.now() - started
  return {
    scorer: scorer.name,
    ...accumulator.result(),
    unknownTargets,
    unknownPrefixes,
    msPerCase: total === 0 ? 0 : elapsedMs / total,
    ...(groups.length > 0 && {
      groups: groups.map((g) => ({
        name: g.group.name,
        cases: g.cases,
        recall20: g.cases === 0 ? 0 : (100 * g.hits) / g.cases,
        mrr20: g.cases === 0 ? 0 : (100 * g.reciprocal) / g.cases,
      })),
    }),
  }
}

// Checked once up front because scorers index typed arrays with these unchecked, where an
// out-of-range item reads as NaN or is silently dropped instead of failing.
function checkItemRange(sessions: Int32Array[], nItems: number): void {
  sessions.forEach((session, s) => {
    for (const item of session) {
      // Negative: an item unseen in training (testAsPublished), scored as a miss.
      if (!(item < nItems && Number.isInteger(item))) {
        throw new RangeError(`expected item indices below ${nItems}, got ${item} in session ${s}`)
      }
    }
  })
}

/** One markdown table row: metrics as percentages with 2 decimals, time in ms. */
export function formatReportRow(report: EvalReport): string {
  const percent = (x: number): string => (100 * x).toFixed(2)
  const cells = [
    report.scorer,
    String(report.cases),
    ...Object.values(report.metrics).map(percent),
    percent(report['coverage@20']),
    percent(report['popShare@20']),
    report.msPerCase.toFixed(3),
  ]
  return `| ${cells.join(' | ')} |`
}

/** A markdown table of reports that share cut-offs (the first report's metric names head it). */
export function formatReportTable(reports: readonly EvalReport[]): string {
  if (reports.length === 0) return ''
  const names = Object.keys(reports[0].metrics).map((name) => `${name} %`)
  const header = ['scorer', 'cases', ...names, 'coverage@20 %', 'popShare@20 %', 'ms/case']
  const lines = [
    `| ${header.join(' | ')} |`,
    `|${header.map((_, i) => (i < 1 ? ' --- ' : ' ---: ')).join('|')}|`,
    ...reports.map(formatReportRow),
  ]
  return lines.join('\n')
}
