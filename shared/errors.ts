// Errors raised at the boundaries of shared code. Callers branch on `code` (stable strings), not on
// the message, which is for people and may be reworded.

export type WeightsErrorCode =
  /** The input is neither a Uint8Array nor an ArrayBuffer. */
  | 'E_WEIGHTS_INPUT'
  /** The first four bytes are not the `PRW1` magic. */
  | 'E_WEIGHTS_MAGIC'
  /** The file was written by a codec version this build cannot read. */
  | 'E_WEIGHTS_VERSION'
  /** Too short for its prelude, or its header length runs past the end. */
  | 'E_WEIGHTS_TRUNCATED'
  /** The CRC-32 in the last four bytes does not match the contents. */
  | 'E_WEIGHTS_CHECKSUM'
  /** The header is not UTF-8 JSON. */
  | 'E_WEIGHTS_JSON'
  /** A header field is missing or ill-typed, or reserved bytes are not zero. */
  | 'E_WEIGHTS_HEADER'
  /** Two tensors share a name. */
  | 'E_WEIGHTS_DUPLICATE'
  /** A dimension is negative or fractional, or the shape disagrees with the data. */
  | 'E_WEIGHTS_SHAPE'
  /** A storage dtype this codec does not know. */
  | 'E_WEIGHTS_DTYPE'
  /** An int8 tensor's scales have the wrong count or a negative value. */
  | 'E_WEIGHTS_SCALE'
  /** A data region is misaligned, out of the data section, or overlaps another. */
  | 'E_WEIGHTS_RANGE'
  /** A NaN or infinite weight (or one float16 cannot hold). */
  | 'E_WEIGHTS_NONFINITE'

/** Anything wrong with a weights file, on encode or decode. */
export class WeightsFormatError extends Error {
  // Set explicitly: minifiers rename classes, and `name` must survive a bundle.
  override readonly name = 'WeightsFormatError'
  readonly code: WeightsErrorCode

  constructor(code: WeightsErrorCode, message: string) {
    super(message)
    this.code = code
  }
}
