// Differentiable building blocks whose stock gradients are missing, slow, or slow on WASM.
// Each works unchanged on the cpu, wasm, webgl and webgpu backends. Gradients may only read
// tensors passed to `save`: the engine disposes every other forward intermediate first.
import * as tf from '@tensorflow/tfjs-core'

/** tf.customGrad passes the inputs, then the save function, as one rest list. */
type CustomArgs = Array<tf.Tensor | tf.GradSaveFunc>

/**
 * Rows of `table` at `ids`. `tf.gather`'s gradient is missing on WASM and loops once per
 * table row on CPU; this one scatters the incoming rows with `scatterND`, which sums
 * duplicate ids, so its cost follows the batch, not the catalogue.
 */
export function gatherRows(table: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  const gather = tf.customGrad((...args: CustomArgs) => {
    const [t, save] = args as [tf.Tensor, tf.GradSaveFunc]
    const value = tf.gather(t, ids) as tf.Tensor2D // [k, d]
    save([ids])
    const gradFunc = (dy: tf.Tensor, [savedIds]: tf.Tensor[]) =>
      tf.scatterND(tf.expandDims(savedIds!, 1), dy, t.shape)
    return { value, gradFunc }
  })
  return gather(table) as tf.Tensor2D
}

/**
 * `a · b` for 2-D tensors. On WASM a matMul with transposeA/B leaves XNNPACK's fast path
 * (≈ 10× slower) and the stock gradient uses exactly those flags, so the gradients here
 * transpose explicitly.
 */
export function matMul(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  const product = tf.customGrad((...args: CustomArgs) => {
    const [x, y, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc]
    const value = tf.matMul(x as tf.Tensor2D, y as tf.Tensor2D)
    save([x, y])
    const gradFunc = (dy: tf.Tensor, [xs, ys]: tf.Tensor[]) => [
      tf.matMul(dy as tf.Tensor2D, tf.transpose(ys!) as tf.Tensor2D),
      tf.matMul(tf.transpose(xs!) as tf.Tensor2D, dy as tf.Tensor2D),
    ]
    return { value, gradFunc }
  })
  return product(a, b) as tf.Tensor2D
}

/** Divides each row (last axis) by its L2 norm. */
export function normalizeRows<T extends tf.Tensor>(x: T, epsilon = 1e-12): T {
  return tf.mul(x, tf.rsqrt(tf.add(tf.sum(tf.square(x), -1, true), epsilon)))
}

/**
 * Mean softmax cross-entropy of `logits` [batch, classes] against integer `targets` [batch].
 * Written with its own gradient (softmax − one-hot) so that nothing gathers from the logits
 * differentiably, and so that the [batch, classes] block is walked as few times as possible:
 * it dominates a full-catalogue step.
 */
export function softmaxCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  const [batch, classes] = logits.shape
  const loss = tf.customGrad((...args: CustomArgs) => {
    const [z, save] = args as [tf.Tensor, tf.GradSaveFunc]
    const probs = tf.softmax(z) // [batch, classes]
    const flat = tf.add(
      tf.mul(tf.range(0, batch, 1, 'int32'), tf.scalar(classes, 'int32')),
      targets,
    )
    const targetProb = tf.gather(tf.reshape(probs, [-1]), flat) // [batch]
    const value = tf.neg(tf.mean(tf.log(tf.maximum(targetProb, 1e-30)))) as tf.Scalar
    // Intermediates die with the forward pass unless saved.
    save([probs, targets])
    // tfjs-backend-wasm 4.22's OneHot ignores a float32 dtype and writes int32 bits (the
    // "1" reads back as 1e-45), so build it as int32 and cast.
    const gradFunc = (dy: tf.Tensor, [p, t]: tf.Tensor[]) =>
      tf.mul(
        tf.sub(p!, tf.cast(tf.oneHot(t as tf.Tensor1D, classes), 'float32')),
        tf.div(dy, batch),
      )
    return { value, gradFunc }
  })
  return loss(logits) as tf.Scalar
}
