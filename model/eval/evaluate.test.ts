import { describe, expect, it } from 'vitest'
import { evaluateScorer, formatReportRow, formatReportTable } from './evaluate'
import type { SessionScorer } from './scorer'

/** Scores item i as `row[i]` for every prefix and records the prefixes it was asked about. */
function createFixedScorer(row: number[]): SessionScorer & { seen: number[][] } {
  const seen: number[][] = []
  return {
    name: 'fixed',
    seen,
    scoreBatch(prefixes) {
      const out = new Float32Array(prefixes.length * row.length)
      prefixes.forEach((prefix, b) => {
        seen.push(Array.from(prefix))
        out.set(row, b * row.length)
      })
      return out
    },
  }
}

const sessions = [Int32Array.from([0, 1, 2]), Int32Array.from([3]), Int32Array.from([2, 3, 0])]
const trainCounts = Int32Array.from([4, 3, 2, 1])

describe('evaluateScorer', () => {
  it('scores every prefix of every session against its next item', async () => {
    const scorer = createFixedScorer([0.4, 0.3, 0.2, 0.1])
    const report = await evaluateScorer(scorer, sessions, { nItems: 4, trainCounts })
    expect(scorer.seen).toEqual([[0], [0, 1], [2], [2, 3]])
    // Targets 1, 2, 3, 0 have ranks 2, 3, 4, 1.
    expect(report.cases).toBe(4)
    expect(report.scorer).toBe('fixed')
    expect(report.metrics['recall@5']).toBe(1)
    expect(report.metrics['mrr@5']).toBeCloseTo((1 / 2 + 1 / 3 + 1 / 4 + 1) / 4, 12)
    expect(report['coverage@20']).toBe(1)
    // 1 % of 4 items rounds up to one popular item, the most clicked: one slot in four.
    expect(report['popShare@20']).toBe(0.25)
    expect(report.msPerCase).toBeGreaterThanOrEqual(0)
  })

  it('reports Recall@20 and MRR@20 over the cases whose target each group holds', async () => {
    // 25 items, item i ranked i + 1: targets 22 and 24 miss the top 20, target 3 is 4th.
    const row = Array.from({ length: 25 }, (_, i) => 25 - i)
    const three = [Int32Array.from([0, 22]), Int32Array.from([0, 3]), Int32Array.from([0, 24])]
    const report = await evaluateScorer(createFixedScorer(row), three, {
      nItems: 25,
      trainCounts: new Int32Array(25),
      targetGroups: [
        { name: 'even', holds: (item) => item % 2 === 0 },
        { name: 'below 10', holds: (item) => item < 10 },
        { name: 'none', holds: () => false },
      ],
    })
    expect(report.metrics['recall@20']).toBeCloseTo(1 / 3, 12)
    expect(report.groups).toEqual([
      { name: 'even', cases: 2, recall20: 0, mrr20: 0 },
      { name: 'below 10', cases: 1, recall20: 100, mrr20: 25 },
      { name: 'none', cases: 0, recall20: 0, mrr20: 0 },
    ])
  })

  it('gives the same report whatever the batch size', async () => {
    const options = { nItems: 4, trainCounts, ks: [1, 2] }
    const whole = await evaluateScorer(createFixedScorer([0, 3, 1, 2]), sessions, options)
    const split = await evaluateScorer(createFixedScorer([0, 3, 1, 2]), sessions, {
      ...options,
      batchSize: 3,
    })
    expect({ ...split, msPerCase: 0 }).toEqual({ ...whole, msPerCase: 0 })
  })

  it('keeps the first maxCases cases and cuts prefixes to maxPrefixLen', async () => {
    const scorer = createFixedScorer([1, 1, 1, 1])
    const report = await evaluateScorer(scorer, sessions, {
      nItems: 4,
      trainCounts,
      maxCases: 3,
      maxPrefixLen: 1,
    })
    expect(report.cases).toBe(3)
    expect(scorer.seen).toEqual([[0], [1], [2]])
  })

  it('reports progress after every batch', async () => {
    const progress: [number, number][] = []
    await evaluateScorer(createFixedScorer([1, 2, 3, 4]), sessions, {
      nItems: 4,
      trainCounts,
      batchSize: 3,
      onProgress: (done, total) => progress.push([done, total]),
    })
    expect(progress).toEqual([
      [3, 4],
      [4, 4],
    ])
  })

  it('awaits scorers that return a promise', async () => {
    const scorer: SessionScorer = {
      name: 'async',
      scoreBatch: async (prefixes) => new Float32Array(prefixes.length * 4).fill(1),
    }
    const report = await evaluateScorer(scorer, sessions, { nItems: 4, trainCounts })
    expect(report.metrics['recall@20']).toBe(1)
    expect(report.metrics['mrr@20']).toBe(0.25)
  })

  it('rejects a scorer that returns the wrong number of scores', async () => {
    const scorer: SessionScorer = { name: 'short', scoreBatch: () => new Float32Array(3) }
    await expect(evaluateScorer(scorer, sessions, { nItems: 4, trainCounts })).rejects.toThrow(
      'expected 4×4 = 16 scores from short, got 3',
    )
  })

  it('rejects item indices outside the catalogue', async () => {
    const bad = [Int32Array.from([0, 4])]
    await expect(
      evaluateScorer(createFixedScorer([1, 1, 1, 1]), bad, { nItems: 4, trainCounts }),
    ).rejects.toThrow('expected item indices below 4, got 4 in session 0')
  })

  it('issue 16: scores every case of the split, an unknown target or an all-unknown prefix a miss', async () => {
    // Items -1 and -2 were never seen in training (SessionDataset.testAsPublished).
    const published = [Int32Array.from([0, -1, 1]), Int32Array.from([-2, -1, 2]), Int32Array.from([3, 0])] // prettier-ignore
    const scorer = createFixedScorer([0.4, 0.3, 0.2, 0.1])
    const report = await evaluateScorer(scorer, published, { nItems: 4, trainCounts })
    // Five cases, as the split counts them: 0→-1, [0,-1]→1, -2→-1, [-2,-1]→2, 3→0.
    expect(report.cases).toBe(5)
    expect([report.unknownTargets, report.unknownPrefixes]).toEqual([2, 2])
    // Unknown items leave the prefixes; prefixes of nothing else are never scored.
    expect(scorer.seen).toEqual([[0], [0], [3]])
    // Hits: [0]→1 at rank 2 and 3→0 at rank 1; the other three are misses.
    expect(report.metrics['recall@5']).toBeCloseTo(2 / 5, 12)
    expect(report.metrics['mrr@5']).toBeCloseTo((1 / 2 + 1) / 5, 12)
    // Without the unknown clicks (the old protocol) the same sessions gave 2 cases, both hits.
    const known = published.map((s) => s.filter((i) => i >= 0)).filter((s) => s.length >= 2)
    const old = await evaluateScorer(createFixedScorer([0.4, 0.3, 0.2, 0.1]), known, { nItems: 4, trainCounts }) // prettier-ignore
    expect([old.cases, old.metrics['recall@5']]).toEqual([2, 1])
  })
})

describe('formatReportTable', () => {
  it('prints metrics as percentages with two decimals under a header', async () => {
    const report = await evaluateScorer(createFixedScorer([0.4, 0.3, 0.2, 0.1]), sessions, {
      nItems: 4,
      trainCounts,
      ks: [1],
    })
    const table = formatReportTable([report]).split('\n')
    expect(table[0]).toBe(
      '| scorer | cases | recall@1 % | mrr@1 % | ndcg@1 % | map@1 % | coverage@20 % | popShare@20 % | ms/case |',
    )
    expect(table[2]).toBe(formatReportRow(report))
    // map@1: the list is always 0, 1, 2, 3; the cases go on to {1, 2}, {2}, {3, 0}, {0}: 0, 0, ½, 1.
    expect(table[2]).toMatch(
      /^\| fixed \| 4 \| 25\.00 \| 25\.00 \| 25\.00 \| 37\.50 \| 100\.00 \| 25\.00 \| /,
    )
  })
})
