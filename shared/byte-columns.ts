// Little-endian columns for the compact artifacts (compact-artifacts.ts): numbers, typed columns
// and string tables written one after another, read back with every length checked against the
// bytes left, so a truncated or hostile file is refused with a message, never read past its end.
// A column's values sit together (all lengths, then all bytes) because brotli and gzip find
// repeats within a column far better than across interleaved fields.

/**
 * Thrown by ByteReader on bytes that do not hold what the layout says; the decoders catch it and
 * answer a Validation (like shared/artifacts.ts's guards), so it never reaches a caller.
 */
export class LayoutError {
  constructor(readonly message: string) {}
}

export class ByteWriter {
  private chunks: Uint8Array[] = []
  private size = 0

  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes)
    this.size += bytes.byteLength
  }

  private typed(width: 1 | 2 | 4 | 8, values: ArrayLike<number>, float = false): void {
    const view = new DataView(new ArrayBuffer(values.length * width))
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!
      if (width === 1) view.setUint8(i, v)
      else if (width === 2) view.setUint16(i * 2, v, true)
      else if (width === 4) view.setUint32(i * 4, v, true)
      else if (float) view.setFloat64(i * 8, v, true)
    }
    this.push(new Uint8Array(view.buffer))
  }

  ascii(text: string): void {
    this.push(Uint8Array.from(text, (c) => c.charCodeAt(0)))
  }
  u8(value: number): void {
    this.typed(1, [value])
  }
  u32(value: number): void {
    this.typed(4, [value])
  }
  u8s(values: ArrayLike<number>): void {
    this.typed(1, values)
  }
  u16s(values: ArrayLike<number>): void {
    this.typed(2, values)
  }
  u32s(values: ArrayLike<number>): void {
    this.typed(4, values)
  }
  f64s(values: ArrayLike<number>): void {
    this.typed(8, values, true)
  }
  /** Unsigned integers in 2 bytes each when all fit, else 4: a width byte, then the column. */
  uints(values: ArrayLike<number>): void {
    let max = 0
    for (let i = 0; i < values.length; i++) max = Math.max(max, values[i]!)
    const width = max <= 0xffff ? 2 : 4
    this.u8(width)
    if (width === 2) this.u16s(values)
    else this.u32s(values)
  }
  /**
   * A count, then the strings as UTF-8 joined by newlines (mode 0) or, when one holds a newline,
   * every string's byte length (2 bytes each) before all the bytes (mode 1). Text compresses
   * better without a column of lengths beside it.
   */
  strings(list: readonly string[]): void {
    const encoder = new TextEncoder()
    this.u32(list.length)
    if (!list.some((s) => s.includes('\n'))) {
      const joined = encoder.encode(list.join('\n'))
      this.u8(0)
      this.u32(joined.byteLength)
      this.push(joined)
      return
    }
    const encoded = list.map((s) => encoder.encode(s))
    const long = encoded.findIndex((bytes) => bytes.byteLength > 0xffff)
    if (long >= 0) throw new RangeError(`expected strings under 64 KB, got ${list[long]!.length}`)
    this.u8(1)
    this.u16s(encoded.map((bytes) => bytes.byteLength))
    for (const bytes of encoded) this.push(bytes)
  }
  /**
   * Strings as words (split on single spaces, so any string comes back): a count, the distinct
   * words (`strings`), each string's word count, then each word's place in the table (`uints`).
   * Product names share most of their words (brands, colours, materials, nouns): DIGINETICA's
   * 43,097 demo names are 135 KB after brotli this way, 176 KB as text (BENCHMARKS.md).
   */
  words(list: readonly string[]): void {
    const table = new Map<string, number>()
    const counts: number[] = []
    const places: number[] = []
    for (const text of list) {
      const words = text.split(' ')
      counts.push(words.length)
      for (const word of words) {
        let place = table.get(word)
        if (place === undefined) table.set(word, (place = table.size))
        places.push(place)
      }
    }
    this.u32(list.length)
    this.strings([...table.keys()])
    this.uints(counts)
    this.uints(places)
  }
  /** A count, then the list (as `uints`). */
  list(values: readonly number[]): void {
    this.u32(values.length)
    this.uints(values)
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size)
    let at = 0
    for (const chunk of this.chunks) {
      out.set(chunk, at)
      at += chunk.byteLength
    }
    return out
  }
}

export class ByteReader {
  private at = 0
  private readonly view: DataView

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }

  /** Claims `length` bytes for `what`, or fails naming it and what was left. */
  private take(length: number, what: string): number {
    const left = this.bytes.byteLength - this.at
    if (!(length >= 0 && length <= left)) {
      throw new LayoutError(`expected ${length} bytes of ${what} at byte ${this.at}, got ${left}`)
    }
    const start = this.at
    this.at += length
    return start
  }

  ascii(length: number, what: string): string {
    const start = this.take(length, what)
    return String.fromCharCode(...this.bytes.subarray(start, start + length))
  }
  u8(what: string): number {
    return this.view.getUint8(this.take(1, what))
  }
  u32(what: string): number {
    return this.view.getUint32(this.take(4, what), true)
  }
  /** A count no larger than `max` (a hostile count must not allocate without bound). */
  count(what: string, max: number): number {
    const n = this.u32(what)
    if (n > max) throw new LayoutError(`expected at most ${max} ${what}, got ${n}`)
    return n
  }
  u8s(n: number, what: string): Uint8Array {
    const start = this.take(n, what)
    return this.bytes.slice(start, start + n)
  }
  u16s(n: number, what: string): Uint16Array {
    const start = this.take(n * 2, what)
    const out = new Uint16Array(n)
    for (let i = 0; i < n; i++) out[i] = this.view.getUint16(start + i * 2, true)
    return out
  }
  u32s(n: number, what: string): Uint32Array {
    const start = this.take(n * 4, what)
    const out = new Uint32Array(n)
    for (let i = 0; i < n; i++) out[i] = this.view.getUint32(start + i * 4, true)
    return out
  }
  f64s(n: number, what: string): Float64Array {
    const start = this.take(n * 8, what)
    const out = new Float64Array(n)
    for (let i = 0; i < n; i++) out[i] = this.view.getFloat64(start + i * 8, true)
    return out
  }
  uints(n: number, what: string): Uint16Array | Uint32Array {
    const width = this.u8(`${what} width`)
    if (width === 2) return this.u16s(n, what)
    if (width === 4) return this.u32s(n, what)
    throw new LayoutError(`expected ${what} width 2 or 4, got ${width}`)
  }
  strings(what: string, max: number): string[] {
    const n = this.count(what, max)
    const mode = this.u8(`${what} mode`)
    const decoder = new TextDecoder('utf-8', { fatal: true })
    const text = (start: number, length: number, where: string) => {
      try {
        return decoder.decode(this.bytes.subarray(start, start + length))
      } catch {
        throw new LayoutError(`expected UTF-8 in ${where}`)
      }
    }
    if (mode === 0) {
      const length = this.u32(`${what} length`)
      const joined = text(this.take(length, what), length, what)
      const out = n === 0 ? [] : joined.split('\n')
      if (out.length !== n) throw new LayoutError(`expected ${n} ${what}, got ${out.length}`)
      return out
    }
    if (mode !== 1) throw new LayoutError(`expected ${what} mode 0 or 1, got ${mode}`)
    const lengths = this.u16s(n, `${what} lengths`)
    const out: string[] = new Array<string>(n)
    for (let i = 0; i < n; i++) {
      out[i] = text(this.take(lengths[i]!, `${what}[${i}]`), lengths[i]!, `${what}[${i}]`)
    }
    return out
  }
  list(what: string, max: number): number[] {
    return Array.from(this.uints(this.count(what, max), what))
  }
  /** What `ByteWriter.words` wrote: `n` strings, every word's place checked against the table. */
  words(what: string, n: number): string[] {
    const count = this.u32(`${what} count`)
    if (count !== n) throw new LayoutError(`expected ${n} ${what}, got ${count}`)
    const table = this.strings(`${what} words`, this.bytes.byteLength)
    const counts = this.uints(n, `${what} word counts`)
    let total = 0
    for (let i = 0; i < n; i++) total += counts[i]!
    const places = this.uints(total, `${what} word places`)
    const out: string[] = new Array<string>(n)
    let at = 0
    for (let i = 0; i < n; i++) {
      const words: string[] = new Array<string>(counts[i]!)
      for (let k = 0; k < words.length; k++, at++) {
        const word = table[places[at]!]
        if (word === undefined) {
          throw new LayoutError(
            `expected ${what} word places below ${table.length}, got ${places[at]}`,
          )
        }
        words[k] = word
      }
      out[i] = words.join(' ')
    }
    return out
  }

  /** Fails when bytes are left over: a file longer than its layout is not this layout. */
  end(what: string): void {
    const left = this.bytes.byteLength - this.at
    if (left !== 0)
      throw new LayoutError(`expected the ${what} to end at byte ${this.at}, got ${left} more`)
  }
}
