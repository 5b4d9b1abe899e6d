// tfjs-core registers no gradients on its own, and pulling in `register_all_gradients` would
// ship ~90 configs to every shopper. These are exactly the ones the session model's training
// step differentiates through; a missing one fails loudly in gru-model.test.ts.
import { registerGradient, type GradConfig } from '@tensorflow/tfjs-core'
import { addGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Add_grad'
import { batchMatMulGradConfig } from '@tensorflow/tfjs-core/dist/gradients/BatchMatMul_grad'
import { broadcastToGradConfig } from '@tensorflow/tfjs-core/dist/gradients/BroadcastTo_grad'
import { castGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Cast_grad'
import { concatGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Concat_grad'
import { divGradConfig } from '@tensorflow/tfjs-core/dist/gradients/RealDiv_grad'
import { expandDimsGradConfig } from '@tensorflow/tfjs-core/dist/gradients/ExpandDims_grad'
import { identityGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Identity_grad'
import { maximumGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Maximum_grad'
import { multiplyGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Multiply_grad'
import { negGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Neg_grad'
import { packGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Pack_grad'
import { reshapeGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Reshape_grad'
import { rsqrtGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Rsqrt_grad'
import { sigmoidGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Sigmoid_grad'
import { sliceGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Slice_grad'
import { splitVGradConfig } from '@tensorflow/tfjs-core/dist/gradients/SplitV_grad'
import { sqrtGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Sqrt_grad'
import { squareGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Square_grad'
import { subGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Sub_grad'
import { sumGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Sum_grad'
import { tanhGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Tanh_grad'
import { tileGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Tile_grad'
import { transposeGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Transpose_grad'
import { unpackGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Unpack_grad'

const TRAINING_GRADIENTS: GradConfig[] = [
  addGradConfig,
  batchMatMulGradConfig,
  broadcastToGradConfig,
  castGradConfig,
  concatGradConfig,
  divGradConfig,
  expandDimsGradConfig,
  identityGradConfig,
  maximumGradConfig,
  multiplyGradConfig,
  negGradConfig,
  packGradConfig,
  reshapeGradConfig,
  rsqrtGradConfig,
  sigmoidGradConfig,
  sliceGradConfig,
  splitVGradConfig,
  sqrtGradConfig,
  squareGradConfig,
  subGradConfig,
  sumGradConfig,
  tanhGradConfig,
  tileGradConfig,
  transposeGradConfig,
  unpackGradConfig,
]

let registered = false

/** Registers the gradients training needs; safe to call more than once. */
export function registerTrainingGradients(): void {
  if (registered) return
  for (const config of TRAINING_GRADIENTS) registerGradient(config)
  registered = true
}
