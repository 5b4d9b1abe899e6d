// One server's share of a release's sums on the wire (PROTOCOL.md P29c): what the helper answers
// the leader's aggregate request with. Little-endian int32 words after a fixed header. The public
// negatives' row ids are not sent: the helper sums them by position and the leader names them.
import type { SparseShape, SparseSums } from './sparse-update'

/** Magic of a share of sums: `PRS1`. */
const MAGIC = 0x31535250
const HEADER_WORDS = 6

if (new Uint8Array(Uint32Array.of(1).buffer)[0] !== 1)
  throw new Error('expected a little-endian host (share sums are int32 words in place)')

/** The bytes of `sums`, one server's share; `negatives` is the count of public negative rows. */
export function encodeShareSums(sums: SparseSums, shape: SparseShape): Uint8Array {
  const { nItems, embedDim: d, denseSize: P } = shape
  const negatives = sums.negatives.length / d
  expectSizes(sums, shape, negatives)
  const words = new Int32Array(HEADER_WORDS + nItems * (d + 1) + 2 * P + negatives * d)
  words.set([MAGIC, nItems, d, P, negatives, sums.contributions])
  let at = HEADER_WORDS
  for (const part of [sums.table, sums.counts, sums.dense, sums.denseCounts, sums.negatives]) {
    words.set(part, at)
    at += part.length
  }
  return new Uint8Array(words.buffer)
}

/**
 * A share of sums back from its bytes, for a model of `shape` whose release named
 * `negativeRows`; throws a RangeError naming what does not match.
 */
export function decodeShareSums(
  bytes: Uint8Array,
  shape: SparseShape,
  negativeRows: Int32Array,
): SparseSums {
  const { nItems, embedDim: d, denseSize: P } = shape
  const size = 4 * (HEADER_WORDS + nItems * (d + 1) + 2 * P + negativeRows.length * d)
  if (bytes.length !== size)
    throw new RangeError(`expected a share of sums of ${size} bytes, got ${bytes.length}`)
  const words = new Int32Array(bytes.slice().buffer)
  const header = [MAGIC, nItems, d, P, negativeRows.length]
  header.forEach((expected, i) => {
    if (words[i] !== expected)
      throw new RangeError(`expected header word ${i} to be ${expected}, got ${words[i]}`)
  })
  const contributions = words[5]!
  if (contributions < 0) throw new RangeError(`expected a contribution count, got ${contributions}`)
  let at = HEADER_WORDS
  const take = (n: number) => words.subarray(at, (at += n))
  return {
    table: take(nItems * d),
    counts: take(nItems),
    dense: take(P),
    denseCounts: take(P),
    negativeRows: negativeRows.slice(),
    negatives: take(negativeRows.length * d),
    contributions,
  }
}

function expectSizes(sums: SparseSums, shape: SparseShape, negatives: number): void {
  const { nItems, embedDim: d, denseSize: P } = shape
  const sizes: [string, number, number][] = [
    ['table', sums.table.length, nItems * d],
    ['counts', sums.counts.length, nItems],
    ['dense', sums.dense.length, P],
    ['denseCounts', sums.denseCounts.length, P],
    ['negatives', sums.negatives.length, negatives * d],
  ]
  for (const [name, got, expected] of sizes)
    if (got !== expected || !Number.isInteger(negatives))
      throw new RangeError(`expected ${expected} values in ${name}, got ${got}`)
}

/** Why the helper left a report out of a batch (PROTOCOL.md P29c). */
export type ExclusionReason =
  /** No body under this key reached the helper (or it expired there). */
  | 'missing'
  /** The body entered an earlier batch: no body is ever summed twice. */
  | 'consumed'
  /** The body is not a helper body of this layout (size, party, a malformed key). */
  | 'malformed'
  /** The two servers' digests differ: a key pair is not a point function, or the headers differ. */
  | 'digest'

/** The helper's answer to an aggregate request: who is in, who is out and why, its share. */
export interface AggregateAnswer {
  batch: string
  /** Indices into the request's reports, ascending, with their reasons. */
  excluded: [index: number, reason: ExclusionReason][]
  /** The helper's share of the included reports' sums (encodeShareSums; P30c: u32 per cell). */
  sums: Uint8Array
  /** P30c: the noise multiplier of the helper's half of the noise in `sums`. */
  sigma?: number
}

/** u32 length of a JSON head ({batch, excluded}), the head, then the share of sums. */
export function encodeAggregateAnswer(answer: AggregateAnswer): Uint8Array {
  const head = new TextEncoder().encode(
    JSON.stringify({ batch: answer.batch, excluded: answer.excluded, sigma: answer.sigma }),
  )
  const bytes = new Uint8Array(4 + head.length + answer.sums.length)
  new DataView(bytes.buffer).setUint32(0, head.length, true)
  bytes.set(head, 4)
  bytes.set(answer.sums, 4 + head.length)
  return bytes
}

const REASONS: ReadonlySet<string> = new Set(['missing', 'consumed', 'malformed', 'digest'])

/** The answer back from its bytes; throws a RangeError when they are not one. */
export function decodeAggregateAnswer(bytes: Uint8Array): AggregateAnswer {
  if (bytes.length < 4) throw new RangeError('expected an aggregate answer, got under 4 bytes')
  const headLength = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true)
  if (4 + headLength > bytes.length)
    throw new RangeError(`expected a head of ${headLength} bytes, got ${bytes.length - 4}`)
  let head: unknown
  try {
    head = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + headLength)))
  } catch {
    throw new RangeError('expected a JSON head in the aggregate answer')
  }
  const { batch, excluded, sigma } = (head ?? {}) as Partial<AggregateAnswer>
  const wellFormed =
    typeof batch === 'string' &&
    (sigma === undefined || (typeof sigma === 'number' && sigma >= 0)) &&
    Array.isArray(excluded) &&
    excluded.every(
      (e) =>
        Array.isArray(e) && e.length === 2 && Number.isInteger(e[0]) && REASONS.has(String(e[1])),
    )
  if (!wellFormed) throw new RangeError('expected {batch, excluded: [[index, reason]]} in the head')
  return {
    batch,
    excluded,
    sums: bytes.subarray(4 + headLength),
    ...(sigma === undefined ? {} : { sigma }),
  }
}
