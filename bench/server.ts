// npm run bench:server: the aggregation server's intake under load, each replica a real process.
// Accepted updates per second and latency percentiles at the real update size (the DIGINETICA
// layout with its popularity sketch, 64,872 bytes), for one SQLite replica pinned to one core, and for one and three
// replicas sharing PostgreSQL. Publishing is off (a huge buffer): this measures intake. The load
// generator runs in this process on the same two cores. Writes bench/results/server.json.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { encodeUpdate, updateByteLength } from '../shared/update-codec'
import { sketchPopularity } from '../shared/popularity-sketch'
import { decodeWeights } from '../shared/weights-codec'
import {
  DEFAULT_DENSE_COORDINATES,
  DEFAULT_SLICE_ROWS,
  popularityBucketsFor,
} from '../server/federated/defaults'
import { exportArtifacts } from '../train/artifacts/export-artifacts'
import { loadDataset } from '../train/data/load-dataset'
import { sharedDataDir } from '../train/data/paths'
import { createGruModel, DEFAULT_GRU_CONFIG } from '../client/worker/model/gru-model'
import { exportModelWeights } from '../client/worker/model/model-weights'
import { setNodeBackend } from '../train/node-backend'
import { describeCommand, describeMachine } from '../train/progress'
import { dropSchemas, ensurePostgres, POSTGRES_URL } from '../test/fixtures/postgres'

interface Replica {
  origin: string
  process: ChildProcess
}

interface Row {
  setup: string
  replicas: number
  uploads: number
  accepted: number
  seconds: number
  updatesPerSecond: number
  p50Ms: number
  p99Ms: number
}

const percentile = (xs: number[], p: number) => {
  const s = xs.slice().sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!
}

async function startReplica(options: object, pinToOneCore: boolean): Promise<Replica> {
  const args = ['scripts/run.mjs', 'server/cli/serve.ts']
  const hasTaskset = spawnSync('taskset', ['--version']).status === 0
  const [command, argv] =
    pinToOneCore && hasTaskset
      ? ['taskset', ['-c', '0', process.execPath, ...args]]
      : [process.execPath, args]
  const child = spawn(command, argv, {
    env: { ...process.env, POCKETREC_SERVER: JSON.stringify(options) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let err = ''
  child.stderr!.on('data', (d) => (err += d))
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      const match = /listening (\d+)/.exec(String(d))
      if (match) resolve(Number(match[1]))
    })
    child.once('exit', (code) => reject(new Error(`replica exited ${code}: ${err}`)))
  })
  return { origin: `http://127.0.0.1:${port}`, process: child }
}

async function stopReplicas(replicas: Replica[]): Promise<void> {
  await Promise.all(
    replicas.map(
      (r) =>
        new Promise<void>((resolve) => {
          r.process.once('exit', () => resolve())
          r.process.kill('SIGTERM')
        }),
    ),
  )
}

const modelLayout = {
  denseCoordinates: DEFAULT_DENSE_COORDINATES,
  sliceRows: DEFAULT_SLICE_ROWS,
  embedDim: 100,
}
/** The server's default for the DIGINETICA model: the values and a popularity sketch (P28). */
const layout = { ...modelLayout, popularityBuckets: popularityBucketsFor(modelLayout) }

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      uploads: { type: 'string', default: '1500' },
      concurrency: { type: 'string', default: '32' },
    },
    strict: true,
  })
  const uploads = Number(values.uploads)
  const concurrency = Number(values.concurrency)
  const work = await mkdtemp(path.join(os.tmpdir(), 'pocketrec-bench-server-'))
  const rows: Row[] = []
  const schemas: string[] = []
  try {
    // A DIGINETICA-sized release: the trained model if there is one, else a seeded one.
    await setNodeBackend('cpu')
    const dataset = await loadDataset(path.join(sharedDataDir(), 'diginetica-srgnn'))
    const trained = path.resolve('models/diginetica-srgnn/model.prw')
    const model = await readFile(trained)
      .then((bytes) => decodeWeights(bytes))
      .catch(async () => {
        const m = createGruModel({ ...DEFAULT_GRU_CONFIG, nItems: dataset.nItems }, 1)
        const w = await exportModelWeights(m)
        m.dispose()
        return w
      })
    const artifactsDir = path.join(work, 'artifacts')
    await exportArtifacts({ dataset, model, outDir: artifactsDir })
    const secret = randomBytes(32)
    const federation = {
      artifactsDir,
      secret: secret.toString('hex'),
      settings: { bufferSize: 1e9, minBuffer: 1e9, maxWaitMs: 1e12, clipNorm: 1 },
      // Sent as JSON to each replica, where Infinity would arrive as null.
      rateLimits: { perClientPerMinute: 1e9, perSitePerMinute: 1e9 },
      publishEveryMs: 3_600_000,
    }

    const setups: Array<{
      setup: string
      replicas: number
      pin: boolean
      store: (i: number) => object
    }> = [
      {
        setup: 'SQLite, one core',
        replicas: 1,
        pin: true,
        store: () => ({ sqliteFile: path.join(work, 'bench.db') }),
      },
    ]
    try {
      await ensurePostgres()
      for (const n of [1, 3]) {
        const schema = `bench_${process.pid}_${n}`
        schemas.push(schema)
        setups.push({
          setup: 'PostgreSQL',
          replicas: n,
          pin: false,
          store: () => ({ postgresUrl: POSTGRES_URL, schema }),
        })
      }
    } catch (error) {
      console.error(`no PostgreSQL rows: ${String(error)}`)
    }

    for (const s of setups) {
      const replicas: Replica[] = []
      // Start one replica first: it seeds the store; the others find it seeded.
      for (let i = 0; i < s.replicas; i++) {
        replicas.push(
          await startReplica(
            { port: 0, distDir: work, federation: { ...federation, ...s.store(i) } },
            s.pin,
          ),
        )
      }
      try {
        // Tokens and bodies are made before the clock starts: the bench times uploads only.
        const prepared: Array<{ origin: string; token: string; body: Uint8Array }> = []
        for (let i = 0; i < uploads; i++) {
          const origin = replicas[i % replicas.length]!.origin
          const issued = (await (
            await fetch(`${origin}/v1/token`, {
              method: 'POST',
              body: JSON.stringify({
                siteKey: 'demo-shop',
                client: `bench-${s.replicas}-${i}`.padEnd(8, '0'),
              }),
            })
          ).json()) as { token: string; slice: number; version: number }
          const values = Float32Array.from(
            { length: 16_384 + 150 * 100 },
            () => Math.random() - 0.5,
          )
          let norm = 0
          for (const v of values) norm += v * v
          const scale = 0.5 / Math.sqrt(norm)
          for (let k = 0; k < values.length; k++) values[k] = values[k]! * scale
          prepared.push({
            origin,
            token: issued.token,
            body: encodeUpdate({
              baseVersion: issued.version,
              examples: 10,
              slice: issued.slice,
              layout,
              idempotencyKey: randomBytes(16),
              values,
              popularity: sketchPopularity(
                [Int32Array.from({ length: 6 }, () => Math.floor(Math.random() * 43_097))],
                issued.version,
                layout.popularityBuckets,
              ).values,
              score: { cases: 10, hits20: 5, reciprocalRank20: 1.5 },
            }),
          })
        }
        const latencies: number[] = []
        let accepted = 0
        let next = 0
        const started = performance.now()
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            while (next < prepared.length) {
              const p = prepared[next++]!
              const t0 = performance.now()
              const response = await fetch(`${p.origin}/v1/updates`, {
                method: 'POST',
                headers: { authorization: `Bearer ${p.token}` },
                body: p.body as Uint8Array<ArrayBuffer>,
              })
              await response.arrayBuffer()
              latencies.push(performance.now() - t0)
              if (response.status === 202) accepted++
            }
          }),
        )
        const seconds = (performance.now() - started) / 1000
        const row: Row = {
          setup: s.setup,
          replicas: s.replicas,
          uploads,
          accepted,
          seconds,
          updatesPerSecond: accepted / seconds,
          p50Ms: percentile(latencies, 50),
          p99Ms: percentile(latencies, 99),
        }
        rows.push(row)
        console.error(
          `${s.setup}, ${s.replicas} replica(s): ${row.updatesPerSecond.toFixed(0)} updates/s, p99 ${row.p99Ms.toFixed(1)} ms`,
        )
      } finally {
        await stopReplicas(replicas)
      }
    }
  } finally {
    if (schemas.length) await dropSchemas(schemas).catch(() => {})
    await rm(work, { recursive: true, force: true })
  }
  const table = [
    '| setup | replicas | accepted / sent | updates/s | p50 ms | p99 ms |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.setup} | ${r.replicas} | ${r.accepted} / ${r.uploads} | ${r.updatesPerSecond.toFixed(0)} | ${r.p50Ms.toFixed(1)} | ${r.p99Ms.toFixed(1)} |`,
    ),
  ].join('\n')
  console.log(
    `\nupload body ${updateByteLength(layout)} B, ${concurrency} concurrent clients\n\n${table}`,
  )
  const out = path.resolve('bench', 'results', 'server.json')
  await mkdir(path.dirname(out), { recursive: true })
  await writeFile(
    out,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        machine: describeMachine(),
        command: describeCommand('bench:server'),
        concurrency,
        rows,
      },
      null,
      2,
    ) + '\n',
  )
  console.log(`\nwritten ${path.relative(process.cwd(), out)}`)
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? `${error.name}: ${error.message}` : error)
  process.exit(1)
})
