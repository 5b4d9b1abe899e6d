// How every benchmark runs: its flags read into a typed options object (options.ts), its run
// function, and one writer for its results files. Each file carries what produced it (the npm
// command line), when, on which machine, and how busy the machine was before and after (its
// cores may be shared: a load above 1 slows every figure alike).
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { describeCommand, describeMachine } from '../train/progress'

export interface RunStamp {
  command: string
  date: string
  machine: string
  loadAverage: { before: number[]; after: number[] }
}

export interface BenchRun {
  /** command, date, machine and load average as of now. */
  stamp(): RunStamp
  /** Writes `body` (after the stamp's fields) as JSON to `file`, creating its folder. */
  write(file: string, body: object): Promise<void>
  /** For a file that collects runs: `{ ...header, runs }` with this run's stamped row appended. */
  append(file: string, header: object, row: object): Promise<void>
}

export interface Benchmark<O> {
  /** The npm script, as the results files quote it (`bench:dpf`). */
  script: string
  /** The command line to a typed, validated options object; throws on misuse (options.ts). */
  parse(argv: string[]): O
  run(options: O, run: BenchRun): Promise<void>
}

const loadAverage = () => os.loadavg().map((l) => Number(l.toFixed(2)))

export function startRun(script: string): BenchRun {
  const before = loadAverage()
  const date = new Date().toISOString()
  const stamp = (): RunStamp => ({
    command: describeCommand(script),
    date,
    machine: describeMachine(),
    loadAverage: { before, after: loadAverage() },
  })
  return {
    stamp,
    async write(file, body) {
      await mkdir(path.dirname(path.resolve(file)), { recursive: true })
      await writeFile(file, JSON.stringify({ ...stamp(), ...body }, null, 2) + '\n')
      console.log(`wrote ${file}`)
    },
    async append(file, header, row) {
      const runs = existsSync(file)
        ? (JSON.parse(await readFile(file, 'utf8')) as { runs: unknown[] }).runs
        : []
      await mkdir(path.dirname(path.resolve(file)), { recursive: true })
      const body = { ...header, runs: [...runs, { ...stamp(), ...row }] }
      await writeFile(file, JSON.stringify(body, null, 2) + '\n')
      console.log(`added a run to ${file}`)
    },
  }
}

/** The benchmark as a command: options from argv, then run; any error exits with status 1. */
export function runBenchmark<O>(benchmark: Benchmark<O>): void {
  let options: O
  try {
    options = benchmark.parse(process.argv.slice(2))
  } catch (error) {
    console.error(`${benchmark.script}: ${error instanceof Error ? error.message : String(error)}`)
    process.exit(2)
  }
  benchmark.run(options, startRun(benchmark.script)).catch((error: unknown) => {
    console.error(error)
    process.exit(1)
  })
}
