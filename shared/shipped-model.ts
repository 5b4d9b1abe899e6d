// How the model travels to devices, in one place for the trainer's export, the server's releases
// and bench:quality's row for exactly that form: the item table (nItems · dim, nearly all of the
// bytes) product-quantised at 30 codes a 100-value row (slices of 4 and 3 values, 256 centroids
// each in int8 with a scale per slice), every other tensor int6 with a scale per row. For
// DIGINETICA that is 1,400,244 bytes where float16 throughout was 8.8 MB. The code count is the
// most that keeps the first visit under 2 MB, checked on the trainer's validation split
// (BENCHMARKS.md, "What the shipped model loses": 30 codes lose 0.27 Recall@20 to float32 there,
// 28 lose 0.38); int8 centroids instead of float16 and int6 instead of int8 for the other tensors
// were measured lossless there and make the room for it (51,184 bytes). The server aggregates on
// its own float32 master weights (P18), so a release's rounding never eats an update.
import { TABLE_NAME } from './federation-layout'
import type { EncodeWeightsOptions } from './weights-codec'

export const SHIPPED_MODEL_ENCODING: EncodeWeightsOptions = {
  dtype: (tensor) => (tensor.name === TABLE_NAME ? 'pq8' : 'int6'),
  pq: { codesPerValue: 0.3 },
}
