// How the model travels to devices, in one place for the trainer's export, the server's releases
// and bench:quality's row for exactly that form: the item table (nItems · dim, nearly all of the
// bytes) product-quantised at 4 values a byte, every other tensor float16. For DIGINETICA that is
// about 1.2 MB where float16 throughout was 8.8 MB (BENCHMARKS.md, "The first visit").
import { TABLE_NAME } from './federation-layout'
import type { EncodeWeightsOptions } from './weights-codec'

export const SHIPPED_MODEL_ENCODING: EncodeWeightsOptions = {
  dtype: (tensor) => (tensor.name === TABLE_NAME ? 'pq8' : 'float16'),
}
