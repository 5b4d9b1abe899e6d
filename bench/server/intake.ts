// Scenario 1 of bench:server: accepted leader uploads per second and their latency, for one
// SQLite replica pinned to one core and for one and three replicas sharing PostgreSQL, with
// publishing off.
import path from 'node:path'
import type { ShareFactory } from '../../test/fixtures/share-uploads'
import { ensurePostgres, POSTGRES_URL } from '../../test/fixtures/postgres'
import { percentile } from '../stats'
import {
  HELPER_TOKEN,
  issueToken,
  newClientId,
  SCORE,
  startReplica,
  stopReplicas,
  upload,
  type Replica,
} from './fleet'

export interface IntakeRow {
  setup: string
  replicas: number
  uploads: number
  accepted: number
  seconds: number
  updatesPerSecond: number
  p50Ms: number
  p99Ms: number
}

export async function benchIntake(options: {
  factory: ShareFactory
  work: string
  artifactsDir: string
  secret: string
  uploads: number
  concurrency: number
  /** PostgreSQL schemas made here, for the caller to drop. */
  schemas: string[]
}): Promise<IntakeRow[]> {
  const { work, artifactsDir, secret, uploads, concurrency, schemas, factory } = options
  const federation = {
    artifactsDir,
    secret,
    // The publisher checks once an hour: no release during the bench, so no helper is reached.
    settings: { bufferSize: 1000, minBuffer: 1000, maxWaitMs: 1e12 },
    helper: { url: 'http://127.0.0.1:9', token: HELPER_TOKEN },
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

  const rows: IntakeRow[] = []
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
        const issued = await issueToken(origin, newClientId(secret, `${s.replicas}-${i}`))
        prepared.push({
          origin,
          token: issued.token,
          body: factory.pair({ baseVersion: issued.version, slice: issued.slice }, SCORE).leader,
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
            const response = await upload(p.origin, p.token, p.body)
            await response.arrayBuffer()
            latencies.push(performance.now() - t0)
            if (response.status === 202) accepted++
          }
        }),
      )
      const seconds = (performance.now() - started) / 1000
      const row: IntakeRow = {
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
  return rows
}
