// Public surface of the isomorphic code shared by client, server and trainer.

export type { WeightsErrorCode } from './errors'
export type { EncodeWeightsOptions, NamedTensor, WeightDType, WeightsFile } from './weights-codec'

export { WeightsFormatError } from './errors'
export {
  WEIGHTS_CODEC_VERSION,
  computeCrc32,
  decodeFloat16,
  decodeWeights,
  encodeFloat16,
  encodeWeights,
  isWeightsFile,
  quantisationError,
} from './weights-codec'
