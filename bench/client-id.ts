// npm run bench:client-id: what a client id costs (PROTOCOL.md P21). The device's side is the
// worker's own solver (shared/proof-of-work.ts, noble SHA-256 in 30 ms slices) on random
// challenges at `--bits`, in Node and in a dedicated worker of headless Chromium: hashes/s and
// the time to an id, medians. The attacker's side is one core of this machine hashing the same
// 40-byte messages with node:crypto (createHash, and the one-shot crypto.hash), and natively
// with `openssl speed` when the openssl command is there. From the rates: the CPU-seconds to
// flood one release (K = 1,000 updates, one per id). Writes bench/results/client-id.json.
import { execFileSync } from 'node:child_process'
import { createHash, hash as oneShotHash } from 'node:crypto'
import path from 'node:path'
import { DEFAULT_CLIENT_IDS } from '../server/federated/defaults'
import { solveWork } from '../shared/proof-of-work'
import { chromiumSkipReason, openBrowser } from '../test/browser/harness'
import { runBenchmark, type BenchRun } from './harness'
import { int, text, readOptions, type Options } from './options'
import type { ClientIdBrowserResult } from './client-id-entry'
import { median } from './stats'

const RELEASE_UPDATES = 1000

interface DeviceRuns {
  where: string
  runs: Array<{ hashes: number; ms: number }>
}

/** Hashes/s of the whole run (Σ hashes / Σ time) and the median time to an id. */
function summarise({ where, runs }: DeviceRuns, bits: number) {
  const hashes = runs.reduce((n, r) => n + r.hashes, 0)
  const ms = runs.reduce((n, r) => n + r.ms, 0)
  const rate = hashes / (ms / 1000)
  return {
    where,
    runs: runs.length,
    hashesPerSecond: Math.round(rate),
    medianSolveMs: Math.round(median(runs.map((r) => r.ms))),
    // Attempts are geometric: the mean is 2^bits, the median ln 2 of it; the rate is steadier.
    expectedSolveMs: Math.round((1000 * 2 ** bits) / rate),
    perRun: runs.map((r) => ({ hashes: r.hashes, ms: Math.round(r.ms) })),
  }
}

async function solveInNode(bits: number, runs: number): Promise<DeviceRuns> {
  const results = []
  for (let i = 0; i < runs; i++) {
    const challenge = `${createHash('sha256').update(String(Math.random())).digest('hex')}.${bits}`
    const started = performance.now()
    const { hashes } = await solveWork(challenge, bits)
    results.push({ hashes, ms: performance.now() - started })
  }
  return { where: `Node ${process.version}, noble SHA-256 (the worker's solver)`, runs: results }
}

async function solveInChromium(bits: number, runs: number): Promise<DeviceRuns | string> {
  const skip = chromiumSkipReason()
  if (skip) return skip
  const browser = await openBrowser(path.resolve('bench/client-id-entry.ts'))
  try {
    const result = await browser.result<ClientIdBrowserResult>(
      `/?bits=${bits}&runs=${runs}`,
      600_000,
    )
    const version = /Chrome\/[\d.]+/.exec(result.userAgent)?.[0] ?? result.userAgent
    return { where: `headless Chromium (${version}), dedicated worker`, runs: result.runs }
  } finally {
    await browser.close()
  }
}

/** The attacker's hashes/s on this core: the work message hashed `repeats` times for ~`ms`. */
function attackerRate(
  name: string,
  hashOnce: (message: Buffer) => void,
  ms: number,
  repeats: number,
) {
  const message = Buffer.alloc(40)
  createHash('sha256').update('attacker').digest().copy(message)
  const rates: number[] = []
  let nonce = 0
  for (let r = 0; r < repeats; r++) {
    const started = performance.now()
    let count = 0
    while (performance.now() - started < ms) {
      for (let i = 0; i < 4096; i++, nonce++) {
        message.writeUInt32BE(nonce >>> 0, 36)
        hashOnce(message)
      }
      count += 4096
    }
    rates.push(count / ((performance.now() - started) / 1000))
  }
  return { name, hashesPerSecond: Math.round(median(rates)), repeats: rates.map(Math.round) }
}

/** `openssl speed` on 40-byte inputs: a native, single-threaded figure, or why there is none. */
function opensslRate(seconds: number, repeats: number) {
  const rates: number[] = []
  let version: string
  try {
    version = execFileSync('openssl', ['version'], { encoding: 'utf8' }).trim()
    for (let r = 0; r < repeats; r++) {
      const out = execFileSync(
        'openssl',
        ['speed', '-evp', 'sha256', '-bytes', '40', '-seconds', String(seconds)],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
      )
      const kBytes = /^sha256\s+([\d.]+)k\s*$/m.exec(out)?.[1]
      if (!kBytes) throw new Error(`could not read openssl speed's output: ${out}`)
      rates.push((Number(kBytes) * 1000) / 40)
    }
  } catch (error) {
    return { name: 'openssl speed -evp sha256 -bytes 40', skipped: String(error) }
  }
  return {
    name: `openssl speed -evp sha256 -bytes 40 (${version})`,
    hashesPerSecond: Math.round(median(rates)),
    repeats: rates.map(Math.round),
  }
}

export const CLIENT_ID_FLAGS = {
  bits: int(DEFAULT_CLIENT_IDS.bits),
  runs: int(15),
  results: text('bench/results/client-id.json'),
}

export async function benchClientId(
  options: Options<typeof CLIENT_ID_FLAGS>,
  run: BenchRun,
): Promise<void> {
  const { bits, runs } = options
  console.log(`client ids at ${bits} bits: 2^${bits} = ${2 ** bits} hashes on average`)

  const device = [summarise(await solveInNode(bits, runs), bits)]
  const chromium = await solveInChromium(bits, runs)
  if (typeof chromium === 'string') console.log(`Chromium skipped: ${chromium}`)
  else device.push(summarise(chromium, bits))
  for (const d of device) {
    console.log(
      `device, ${d.where}: ${d.hashesPerSecond.toLocaleString('en')} hashes/s; ` +
        `median ${d.medianSolveMs} ms to an id over ${d.runs} runs (expected ${d.expectedSolveMs} ms)`,
    )
  }

  const attacker = [
    attackerRate('node:crypto createHash', (m) => createHash('sha256').update(m).digest(), 2000, 5),
    attackerRate('node:crypto hash (one-shot)', (m) => oneShotHash('sha256', m, 'buffer'), 2000, 5),
    opensslRate(2, 3),
  ]
  const flood = attacker.flatMap((a) => {
    if (!('hashesPerSecond' in a) || a.hashesPerSecond === undefined) return []
    const rate = a.hashesPerSecond
    return [
      {
        ...a,
        hashesPerSecond: rate,
        secondsPerId: Number((2 ** bits / rate).toFixed(3)),
        cpuSecondsPerRelease: Math.round((RELEASE_UPDATES * 2 ** bits) / rate),
      },
    ]
  })
  for (const a of attacker) {
    if (!('hashesPerSecond' in a)) console.log(`attacker, ${a.name}: skipped (${a.skipped})`)
  }
  for (const a of flood) {
    console.log(
      `attacker, ${a.name}: ${a.hashesPerSecond.toLocaleString('en')} hashes/s on one core; ` +
        `${a.secondsPerId} s an id, ${a.cpuSecondsPerRelease} CPU-s for the ${RELEASE_UPDATES} ids of one release`,
    )
  }

  await run.write(options.results, {
    bits,
    releaseUpdates: RELEASE_UPDATES,
    device,
    attacker: flood,
    skipped: [
      ...(typeof chromium === 'string' ? [{ name: 'Chromium', reason: chromium }] : []),
      ...attacker.filter((a) => !('hashesPerSecond' in a)),
    ],
  })
}

runBenchmark({
  script: 'bench:client-id',
  parse: (argv) => readOptions(CLIENT_ID_FLAGS, argv),
  run: benchClientId,
})
