// The one contract between a recommender and the evaluator: full-catalogue scores for a batch of
// session prefixes. Baselines, the GRU and anything later implement it, so their numbers come
// from the same protocol code.

export interface SessionScorer {
  readonly name: string
  /**
   * Scores of every item for each prefix, row-major [prefixes.length, nItems]. Higher is better.
   * Implementations may reuse the returned buffer: it is only valid until the next call.
   */
  scoreBatch(prefixes: readonly Int32Array[]): Float32Array | Promise<Float32Array>
  dispose?(): void
}
