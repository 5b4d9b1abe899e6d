// Cuckoo buckets for the viewed rows of a sparse update (PROTOCOL.md P29, issue 12): where a DPF
// key per row would make each server expand every key over the whole catalogue (maxRows × nItems
// leaves per update), the catalogue is covered by B public buckets, each row belonging to the
// `hashes` buckets its hashes name, and a device places each viewed row in one of its buckets,
// at most one row per bucket (cuckoo hashing). It then sends one key per bucket, over that
// bucket's rows only: the servers expand about hashes × nItems leaves per update, whatever B.
// Every bucket gets a key (a zero one where no row sits), so the keys say nothing of how many
// rows the shopper viewed, nor which.

export interface BucketParams {
  nItems: number
  /** B: keys per update. Must exceed the rows an update carries (1.5× places nearly always). */
  buckets: number
  /** How many buckets each row belongs to (3: cuckoo hashing stays reliable up to ~90 % load). */
  hashes: number
  /** Public; fixed per model, so that servers build the layout once. */
  seed: number
}

/** The public layout: each bucket's rows, ascending; a key for bucket b indexes into rows[b]. */
export interface BucketLayout {
  params: BucketParams
  /** Concatenated rows of all buckets, bucket after bucket. */
  rows: Int32Array
  /** Bucket b's rows are rows[offsets[b] … offsets[b + 1]). */
  offsets: Int32Array
  /** The DPF domain every bucket's key spans: 2^domainBits ≥ the largest bucket. */
  domainBits: number
}

/** The distinct buckets `row` belongs to. */
export function bucketsOf(row: number, params: BucketParams): number[] {
  const out: number[] = []
  for (let i = 0; i < params.hashes; i++) {
    const b = rowHash(params.seed * 31 + i, row) % params.buckets
    if (!out.includes(b)) out.push(b)
  }
  return out
}

export function buildBucketLayout(params: BucketParams): BucketLayout {
  const { nItems, buckets, hashes } = params
  if (!(Number.isInteger(buckets) && buckets >= 1 && Number.isInteger(hashes) && hashes >= 1))
    throw new RangeError(`expected buckets and hashes ≥ 1, got ${buckets} and ${hashes}`)
  const sizes = new Int32Array(buckets)
  const member = new Array<number[]>(nItems)
  for (let row = 0; row < nItems; row++) {
    member[row] = bucketsOf(row, params)
    for (const b of member[row]!) sizes[b]!++
  }
  const offsets = new Int32Array(buckets + 1)
  for (let b = 0; b < buckets; b++) offsets[b + 1] = offsets[b]! + sizes[b]!
  const rows = new Int32Array(offsets[buckets]!)
  const fill = offsets.slice(0, buckets)
  // Rows ascending within each bucket, since they are visited in order.
  for (let row = 0; row < nItems; row++) for (const b of member[row]!) rows[fill[b]!++] = row
  let largest = 1
  for (let b = 0; b < buckets; b++) largest = Math.max(largest, sizes[b]!)
  return { params, rows, offsets, domainBits: Math.max(1, Math.ceil(Math.log2(largest))) }
}

/** Where `row` sits in bucket `b` (binary search), or −1. */
export function positionInBucket(layout: BucketLayout, b: number, row: number): number {
  let lo = layout.offsets[b]!
  let hi = layout.offsets[b + 1]! - 1
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1
    const at = layout.rows[mid]!
    if (at === row) return mid - layout.offsets[b]!
    if (at < row) lo = mid + 1
    else hi = mid - 1
  }
  return -1
}

/**
 * Cuckoo placement of `rows` (distinct) into buckets, one row per bucket: returns each bucket's
 * row or −1. A row that cannot be placed within `maxKicks` evictions is left out (reported in
 * `dropped`): the update then carries one row fewer, which costs accuracy, not privacy.
 */
export function placeRows(
  rows: ArrayLike<number>,
  params: BucketParams,
  random: () => number,
  maxKicks = 500,
): { bucketRow: Int32Array; dropped: number[] } {
  const bucketRow = new Int32Array(params.buckets).fill(-1)
  const dropped: number[] = []
  for (let k = 0; k < rows.length; k++) {
    let row = rows[k]!
    for (let kick = 0; ; kick++) {
      const options = bucketsOf(row, params)
      const free = options.find((b) => bucketRow[b] === -1)
      if (free !== undefined) {
        bucketRow[free] = row
        break
      }
      if (kick === maxKicks) {
        dropped.push(row)
        break
      }
      const b = options[Math.floor(random() * options.length)]!
      const evicted = bucketRow[b]!
      bucketRow[b] = row
      row = evicted
    }
  }
  return { bucketRow, dropped }
}

/**
 * A u32 hash of (seed, row): murmur3's finaliser, so that consecutive rows and seeds scatter.
 * (The slice layout's sketch hash, P8b, which fixed the buckets' bit patterns: kept as it was.)
 */
function rowHash(seed: number, row: number): number {
  return mix32((Math.imul(row, 0x9e3779b1) ^ mix32(seed >>> 0)) >>> 0)
}

function mix32(value: number): number {
  let x = value
  x ^= x >>> 16
  x = Math.imul(x, 0x85ebca6b)
  x ^= x >>> 13
  x = Math.imul(x, 0xc2b2ae35)
  x ^= x >>> 16
  return x >>> 0
}
