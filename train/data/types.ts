// Session logs as the trainer, the evaluator and the baselines see them. Item ids are dense
// internal indices 0..nItems-1 (the order of first appearance in the training sessions); the
// original ids of the source file are kept in `itemIds` for reports.

export interface SessionDataset {
  /** Folder name, e.g. `diginetica-srgnn`. */
  name: string
  nItems: number
  /** Original id of each internal index: `itemIds[i]` is the file's id of item i. */
  itemIds: Int32Array
  /** Training sessions in file order (time order for every layout we read). */
  train: Int32Array[]
  /** Test sessions, only items seen in training, each of length ≥ 2. */
  test: Int32Array[]
  /** What the loader removed from the test file: clicks on items unseen in training, then
   * sessions left shorter than 2. Absent when the loader does not report it. */
  dropped?: { testClicks: number; testSessions: number }
  /**
   * The test split as published, for the evaluation protocol (issue 16): every session of at
   * least 2 clicks, an item unseen in training kept as a negative id (−1, −2, … one per distinct
   * unknown item), so that every case of the split is scored and an unknown target is a miss
   * (model/eval/evaluate.ts). Absent (a dataset built by hand): `test` is the split.
   */
  testAsPublished?: Int32Array[]
}
