// How the model travels to devices, in one place for the trainer's export, the server's releases
// and bench:quality's row for exactly that form: the item table (nItems · dim, nearly all of the
// bytes) product-quantised at 4 values a byte, every other tensor int8 with a scale per row. For
// DIGINETICA that is 1,233,644 bytes where float16 throughout was 8.8 MB (BENCHMARKS.md, "The first
// visit"); the other tensors in int8 rather than float16 save 97,504 bytes for 0.01 Recall@20 on
// validation. The server aggregates on its own float32 master weights (P18), so a release's
// rounding never eats an update.
import { TABLE_NAME } from './federation-layout'
import type { EncodeWeightsOptions } from './weights-codec'

export const SHIPPED_MODEL_ENCODING: EncodeWeightsOptions = {
  dtype: (tensor) => (tensor.name === TABLE_NAME ? 'pq8' : 'int8'),
}
