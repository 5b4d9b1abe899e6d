// Fixed-window counters with a fixed maximum number of keys (PROTOCOL.md P21). The map keeps keys
// in the order their windows started (a key whose window restarts moves to the end), so the first
// key is always the one whose window ends first: stale ones are dropped from the front and, when
// the map is full, the front one is evicted. Each call does at most three map operations besides
// its own: no scans, whatever the number of keys.

export interface RateLimiter {
  /** Counts a call for `key`: false when it is past the limit of its current window. */
  take(key: string): boolean
  /** Whether `key` has a window that has not ended (counts nothing). */
  has(key: string): boolean
  /** Keys held now: never more than `maxKeys`. */
  readonly size: number
}

export interface RateLimiterOptions {
  /** Calls allowed per key and window (Infinity: only remember keys). */
  limit: number
  windowMs?: number
  /**
   * At most this many keys are held; the one whose window ends first makes room. Its count is
   * forgotten early only when more than `maxKeys` keys had a window in the last `windowMs`.
   */
  maxKeys: number
  now: () => number
}

/** Stale windows dropped from the front per call: keeps up with one new key per call, and more. */
const PRUNE_PER_CALL = 2

export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const { limit, windowMs = 60_000, maxKeys, now } = options
  if (!(Number.isInteger(maxKeys) && maxKeys >= 1)) {
    throw new RangeError(`expected maxKeys to be a positive integer, got ${maxKeys}`)
  }
  const windows = new Map<string, { start: number; count: number }>()
  const live = (w: { start: number } | undefined, t: number) =>
    w !== undefined && t - w.start < windowMs

  return {
    take(key) {
      const t = now()
      for (let i = 0; i < PRUNE_PER_CALL; i++) {
        const first = windows.entries().next()
        if (first.done || live(first.value[1], t)) break
        windows.delete(first.value[0])
      }
      let w = windows.get(key)
      if (!live(w, t)) {
        windows.delete(key) // a restarted window goes to the end: the order stays by start time
        if (windows.size >= maxKeys) windows.delete(windows.keys().next().value!)
        w = { start: t, count: 0 }
        windows.set(key, w)
      }
      return ++w!.count <= limit
    },
    has(key) {
      return live(windows.get(key), now())
    },
    get size() {
      return windows.size
    },
  }
}
