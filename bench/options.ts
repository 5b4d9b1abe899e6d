// A benchmark's command line, declared once: each flag with its type, default and check, read
// strictly into a typed options object (camelCase keys, `--kebab-case` flags). A wrong value is
// a clear error before anything runs; an unknown flag too.
import { parseArgs } from 'node:util'

export interface Flag<T> {
  readonly kind: 'string' | 'boolean'
  readonly describe: string
  read(raw: string | boolean | undefined, flag: string): T
}

export type Flags = Record<string, Flag<unknown>>
export type Options<F extends Flags> = { [K in keyof F]: F[K] extends Flag<infer T> ? T : never }

function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
}

function numberFlag(
  integer: boolean,
  fallback: number | undefined,
  check: (n: number) => boolean,
  describe: string,
): Flag<number> {
  return {
    kind: 'string',
    describe,
    read(raw, flag) {
      if (raw === undefined) {
        if (fallback === undefined) throw new Error(`--${flag}: required (${describe})`)
        return fallback
      }
      const n = Number(raw)
      if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(n)) {
        throw new Error(`--${flag}: expected a number (${describe}), got ${JSON.stringify(raw)}`)
      }
      if ((integer && !Number.isInteger(n)) || !check(n)) {
        throw new Error(`--${flag}: ${JSON.stringify(raw)} is not ${describe}`)
      }
      return n
    },
  }
}

/** An integer ≥ `min` (default 1). */
export function int(fallback?: number, min = 1): Flag<number> {
  return numberFlag(true, fallback, (n) => n >= min, `an integer ≥ ${min}`)
}

/** A finite number inside `[min, max]`. */
export function num(fallback?: number, min = -Infinity, max = Infinity): Flag<number> {
  return numberFlag(false, fallback, (n) => n >= min && n <= max, `a number in [${min}, ${max}]`)
}

/** Like `int`, or undefined when absent (the benchmark's own default applies). */
export const optionalInt = (min = 1) => optional(int(0, min))

/** Like `num`, or undefined when absent. */
export const optionalNum = (min = -Infinity, max = Infinity) => optional(num(0, min, max))

/** Comma-separated integers ≥ `min`: `--probes 1024,2048`. */
export const intList = (fallback: readonly number[], min = 1) =>
  commaSeparated(int(0, min), fallback)

/** Comma-separated numbers in `[min, max]`: `--sigmas 0,1`. */
export const numList = (fallback: readonly number[], min = -Infinity, max = Infinity) =>
  commaSeparated(num(0, min, max), fallback)

/** Comma-separated choices: `--backends wasm,cpu`. */
export const list = <C extends string>(choices: readonly C[], fallback: readonly C[]) =>
  commaSeparated(choice(choices, choices[0]!), fallback)

function optional<T>(inner: Flag<T>): Flag<T | undefined> {
  return {
    kind: inner.kind,
    describe: inner.describe,
    read: (raw, flag) => (raw === undefined ? undefined : inner.read(raw, flag)),
  }
}

function commaSeparated<T>(one: Flag<T>, fallback: readonly T[]): Flag<T[]> {
  return {
    kind: 'string',
    describe: `comma-separated, each ${one.describe}`,
    read: (raw, flag) =>
      raw === undefined
        ? [...fallback]
        : String(raw)
            .split(',')
            .map((part) => one.read(part.trim(), flag)),
  }
}

export function text(fallback: string): Flag<string>
export function text(): Flag<string | undefined>
export function text(fallback?: string): Flag<string | undefined> {
  return {
    kind: 'string',
    describe: 'text',
    read: (raw) => (typeof raw === 'string' ? raw : fallback),
  }
}

export function choice<C extends string>(choices: readonly C[], fallback: C): Flag<C> {
  return {
    kind: 'string',
    describe: `one of ${choices.join(', ')}`,
    read(raw, flag) {
      if (raw === undefined) return fallback
      const found = choices.find((c) => c === raw)
      if (found === undefined) {
        throw new Error(`--${flag}: expected one of ${choices.join(', ')}, got ${String(raw)}`)
      }
      return found
    },
  }
}

/** A switch: present is true. */
export function on(): Flag<boolean> {
  return { kind: 'boolean', describe: 'a switch', read: (raw) => raw === true }
}

/** Parses `argv` (default: this process's arguments) against `flags`; throws on any misuse. */
export function readOptions<F extends Flags>(
  flags: F,
  argv: string[] = process.argv.slice(2),
): Options<F> {
  const config = Object.fromEntries(
    Object.entries(flags).map(([key, f]) => [flagName(key), { type: f.kind }]),
  )
  const { values } = parseArgs({ args: argv, options: config, strict: true })
  const options: Record<string, unknown> = {}
  for (const [key, f] of Object.entries(flags)) {
    const flag = flagName(key)
    options[key] = f.read(values[flag as keyof typeof values] as string | boolean | undefined, flag)
  }
  return options as Options<F>
}
