// npm run bench:server: the aggregation server under load, each replica a real process.
// 1. Intake: accepted updates per second and latency percentiles at the real upload size (the
//    leader's upload of the two-server channel for DIGINETICA, P29c), for one SQLite replica
//    pinned to one core, and for one and three replicas sharing PostgreSQL. Publishing is off.
// 2. Intake while publishing and evaluating: one SQLite replica paired with a helper process,
//    `evaluated` promotion, a validation set and a small buffer, so that versions are published
//    (the helper verifying and summing each batch) and scored during the load; latency of every
//    token, helper upload, leader upload and status request at 1, 8 and 64 concurrent clients.
// 3. Each role's work per update (bench/share-costs.ts, also `npm run bench:dpf`'s): checking a
//    body's keys (median, p99) and adding it in a release's batch, at DIGINETICA's 43,097 items
//    and at 1,000,000, one core each, so updates/s/core per role; and the device's key
//    generation and split in a dedicated worker of headless Chromium.
// The load generator runs in this process on the same machine. Writes bench/results/server.json.
import type { ChildProcess } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import type { Catalogue } from '../shared/protocol'
import { decodeWeights } from '../shared/weights-codec'
import { DEFAULT_SPARSE } from '../server/federated/defaults'
import { splitWeights } from '../shared/federation-layout'
import { leaderUploadBytes } from '../shared/leader-upload'
import { helperRoute } from '../shared/helper-url'
import type { SparseShape } from '../shared/sparse-update'
import { shareFactory, type ShareFactory } from '../test/fixtures/share-uploads'
import { benchUpdates, splitInChromium } from './share-costs'
import { issueClientId } from '../server/federated/clients'
import { exportArtifacts } from '../train/artifacts/export-artifacts'
import { loadDataset } from '../train/data/load-dataset'
import { sharedDataDir } from '../train/data/paths'
import type { SessionDataset } from '../train/data/types'
import { createGruModel, DEFAULT_GRU_CONFIG } from '../model/gru-model'
import { exportModelWeights } from '../model/model-weights'
import { setNodeBackend } from '../model/node-backend'
import { describeCommand, describeMachine } from '../train/progress'
import { dropSchemas, ensurePostgres, POSTGRES_URL } from '../test/fixtures/postgres'
import { startServerProcess } from '../test/fixtures/server-process'
import { percentile } from './stats'

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

/** One kind of request at one concurrency, while the server publishes and evaluates. */
interface JobsRow {
  concurrency: number
  request: 'token' | 'helper upload' | 'upload' | 'status probe'
  requests: number
  /** Answers other than 200/202, and requests that got none (connection reset). */
  failed: number
  p50Ms: number
  p99Ms: number
  maxMs: number
}

/** What the server did during one concurrency's window, from /v1/admin/versions. */
interface JobsWindow {
  concurrency: number
  seconds: number
  accepted: number
  /** Versions published (candidates) during the window. */
  publishes: number
  /** Versions that gained a validation score during the window. */
  evaluations: number
}

async function startReplica(options: object, pinToOneCore: boolean): Promise<Replica> {
  const { origin, child } = await startServerProcess(options, { pin: pinToOneCore })
  return { origin, process: child }
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

/** The pairing secret of the bench's helper (and of the replicas that never reach one). */
const HELPER_TOKEN = randomBytes(24).toString('hex')

/** The channel's layout for the DIGINETICA model (defaultSecureChannel's). */
function uploadsFor(shape: SparseShape): ShareFactory {
  const { maxRows, denseCoordinates, negativeRows } = DEFAULT_SPARSE.layout
  return shareFactory(
    {
      maxRows,
      embedDim: shape.embedDim,
      denseCoordinates: Math.min(denseCoordinates, shape.denseSize),
      negativeRows,
    },
    shape,
  )
}

/**
 * The one place the bench makes a device's client id: the id POST /v1/client would issue after
 * the proof of work (P21), minted with the replicas' secret. It is also a valid id for a server
 * from before issued ids (any 8–64 [A-Za-z0-9_-]), so the bench runs against older code too.
 */
function newClientId(secret: string, label: string): string {
  return issueClientId({ site: 'demo-shop', secret: Buffer.from(secret, 'hex') }, `bench-${label}`)
}

async function issueToken(origin: string, client: string) {
  const response = await fetch(`${origin}/v1/token`, {
    method: 'POST',
    body: JSON.stringify({ siteKey: 'demo-shop', client }),
  })
  const issued = (await response.json()) as { token: string; slice: number; version: number }
  return { status: response.status, ...issued }
}

const upload = (origin: string, token: string, body: Uint8Array) =>
  fetch(`${origin}/v1/updates`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
    body: body as Uint8Array<ArrayBuffer>,
  })

const uploadToHelper = (helper: string, body: Uint8Array) =>
  fetch(helperRoute(helper, 'shares'), { method: 'POST', body: body as Uint8Array<ArrayBuffer> })

/** The score a device reports with its upload (P27). */
const SCORE = { cases: 10, hits20: 5, reciprocalRank20: 1.5 }

/** The uploads of the DIGINETICA model, made once the model is known. */
let factory: ShareFactory
let uploadBytes = 0

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      uploads: { type: 'string', default: '1500' },
      concurrency: { type: 'string', default: '32' },
      /** `intake`, `jobs` (intake while publishing and evaluating), `roles`: any of them. */
      scenarios: { type: 'string', default: 'intake,jobs,roles' },
      /** Updates measured per role at 43,097 and at 1,000,000 items. */
      'role-runs': { type: 'string', default: '20,3' },
      /** Seconds of load at each concurrency of the jobs scenario. */
      seconds: { type: 'string', default: '30' },
      results: { type: 'string', default: path.join('bench', 'results', 'server.json') },
    },
    strict: true,
  })
  const count = Number(values.uploads)
  const concurrency = Number(values.concurrency)
  const scenarios = new Set(values.scenarios!.split(','))
  const work = await mkdtemp(path.join(os.tmpdir(), 'pocketrec-bench-server-'))
  const rows: Row[] = []
  const jobs: { rows: JobsRow[]; windows: JobsWindow[] } = { rows: [], windows: [] }
  let roles: Awaited<ReturnType<typeof benchRoles>> | undefined
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
    const secret = randomBytes(32).toString('hex')
    factory = uploadsFor(splitWeights(model).shape)
    uploadBytes = leaderUploadBytes(factory.params)
    if (scenarios.has('intake')) {
      rows.push(
        ...(await benchIntake({
          work,
          artifactsDir,
          secret,
          uploads: count,
          concurrency,
          schemas,
        })),
      )
    }
    if (scenarios.has('roles')) {
      const [small, large] = values['role-runs']!.split(',').map(Number)
      roles = await benchRoles(dataset.nItems, small!, large!)
    }
    if (scenarios.has('jobs')) {
      const seconds = Number(values.seconds)
      Object.assign(
        jobs,
        await benchIntakeDuringJobs({ work, artifactsDir, secret, dataset, seconds }),
      )
    }
  } finally {
    if (schemas.length) await dropSchemas(schemas).catch(() => {})
    await rm(work, { recursive: true, force: true })
  }
  if (rows.length > 0) {
    const table = [
      '| setup | replicas | accepted / sent | updates/s | p50 ms | p99 ms |',
      '| --- | ---: | ---: | ---: | ---: | ---: |',
      ...rows.map(
        (r) =>
          `| ${r.setup} | ${r.replicas} | ${r.accepted} / ${r.uploads} | ${r.updatesPerSecond.toFixed(0)} | ${r.p50Ms.toFixed(1)} | ${r.p99Ms.toFixed(1)} |`,
      ),
    ].join('\n')
    console.log(`\nleader upload ${uploadBytes} B, ${concurrency} concurrent clients\n\n${table}`)
  }
  if (jobs.rows.length > 0) {
    const table = [
      '| clients | request | requests | failed | p50 ms | p99 ms | max ms |',
      '| ---: | --- | ---: | ---: | ---: | ---: | ---: |',
      ...jobs.rows.map(
        (r) =>
          `| ${r.concurrency} | ${r.request} | ${r.requests} | ${r.failed} | ${r.p50Ms.toFixed(1)} | ${r.p99Ms.toFixed(1)} | ${r.maxMs.toFixed(1)} |`,
      ),
    ].join('\n')
    const windows = jobs.windows
      .map(
        (w) =>
          `${w.concurrency} clients: ${w.seconds.toFixed(1)} s, ${w.accepted} accepted, ` +
          `${w.publishes} publishes, ${w.evaluations} evaluations`,
      )
      .join('\n')
    console.log(`\nintake while publishing and evaluating\n\n${table}\n\n${windows}`)
  }
  if (roles) {
    const table = [
      '| items | role | check median ms | check p99 ms | add ms/update (one batch) | updates/s/core |',
      '| ---: | --- | ---: | ---: | ---: | ---: |',
      ...roles.updates.flatMap((u) =>
        (['leader', 'helper'] as const).map(
          (role) =>
            `| ${u.nItems.toLocaleString('en')} | ${role} | ${u[role].checkMedianMs} | ${u[role].checkP99Ms} | ${u[role].addMsPerUpdate} | ${u[role].updatesPerSecondPerCore} |`,
        ),
      ),
    ].join('\n')
    const chromium =
      'skipped' in roles.chromium
        ? `key generation in Chromium skipped: ${roles.chromium.skipped}`
        : `a device's split (48 DPF key pairs and the shares) in a ${roles.chromium.where} worker: ` +
          `${roles.chromium.medianMs} ms median over ${roles.chromium.runs}, bodies ` +
          `${roles.chromium.bodyBytes.leader} and ${roles.chromium.bodyBytes.helper} B`
    console.log(`\neach role's work per update, one core\n\n${table}\n\n${chromium}`)
  }
  const out = path.resolve(values.results!)
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
        intakeDuringJobs: jobs,
        roles,
      },
      null,
      2,
    ) + '\n',
  )
  console.log(`\nwritten ${path.relative(process.cwd(), out)}`)
}

/** Scenario 3: each role's work per update, and the device's split in Chromium. */
async function benchRoles(nItems: number, runsSmall: number, runsLarge: number) {
  const updates = [benchUpdates(nItems, runsSmall), benchUpdates(1_000_000, runsLarge)]
  for (const u of updates)
    console.error(
      `${u.nItems} items: leader ${u.leader.updatesPerSecondPerCore}, helper ${u.helper.updatesPerSecondPerCore} updates/s/core`,
    )
  return { updates, chromium: await splitInChromium(nItems, runsSmall) }
}

async function benchIntake(options: {
  work: string
  artifactsDir: string
  secret: string
  uploads: number
  concurrency: number
  /** PostgreSQL schemas made here, for the caller to drop. */
  schemas: string[]
}): Promise<Row[]> {
  const { work, artifactsDir, secret, uploads, concurrency, schemas } = options
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

  const rows: Row[] = []
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
  return rows
}

/**
 * Scenario 2: one SQLite replica (not pinned: it may use both cores, as the load generator does)
 * publishing from a buffer of 200 and scoring every candidate on 5,000 held-out cases, while
 * clients at each concurrency ask for a token and upload, and one client polls the status.
 */
async function benchIntakeDuringJobs(options: {
  work: string
  artifactsDir: string
  secret: string
  dataset: SessionDataset
  seconds: number
}): Promise<{ rows: JobsRow[]; windows: JobsWindow[] }> {
  const { work, artifactsDir, secret, dataset, seconds } = options
  const adminToken = randomBytes(18).toString('hex')
  // The helper as another operator runs it: its own process and store.
  const helperProcess = await startServerProcess(
    {
      port: 0,
      store: { kind: 'sqlite', file: path.join(work, 'helper.db') },
      leaderToken: HELPER_TOKEN,
      settings: { minBatch: 200 },
    },
    { role: 'helper' },
  )
  const helper = helperProcess.origin
  const replica = await startReplica(
    {
      port: 0,
      distDir: work,
      federation: {
        artifactsDir,
        secret,
        adminToken,
        sqliteFile: path.join(work, 'jobs.db'),
        promotion: 'evaluated',
        // Each publish (the helper verifying and summing 200 bodies) is followed by one
        // evaluation of 5,000 cases.
        settings: { bufferSize: 200, minBuffer: 200, maxWaitMs: 1e12 },
        helper: { url: helper, token: HELPER_TOKEN },
        rateLimits: { perClientPerMinute: 1e9, perSitePerMinute: 1e9 },
        publishEveryMs: 500,
      },
    },
    false,
  )
  const { origin } = replica
  const admin = (route: string, init: RequestInit = {}) =>
    fetch(`${origin}/v1/admin/${route}`, {
      ...init,
      headers: { authorization: `Bearer ${adminToken}` },
    })
  try {
    // The operator's validation set: held-out (test) sessions as the catalogue's product ids.
    const manifest = (await (await fetch(`${origin}/artifacts/manifest.json`)).json()) as {
      catalogue: { url: string }
    }
    const catalogue = JSON.parse(
      await readFile(path.join(artifactsDir, manifest.catalogue.url), 'utf8'),
    ) as Catalogue
    const sessions = dataset.test
      .slice(0, 5_000)
      .map((s) => Array.from(s, (i) => catalogue.items[i]!.id))
    const stored = await admin('validation', {
      method: 'PUT',
      body: JSON.stringify({ type: 'pocketrec-validation', sessions }),
    })
    if (stored.status !== 201) throw new Error(`validation set: ${await stored.text()}`)

    const versions = async () => {
      const listed = (await (await admin('versions')).json()) as {
        versions: Array<{ version: number; metrics: Record<string, number> }>
      }
      return listed.versions
    }
    const rows: JobsRow[] = []
    const windows: JobsWindow[] = []
    let clients = 0
    for (const concurrency of [1, 8, 64]) {
      const latencies: Record<JobsRow['request'], number[]> = {
        token: [],
        'helper upload': [],
        upload: [],
        'status probe': [],
      }
      const failed = { token: 0, 'helper upload': 0, upload: 0, 'status probe': 0 }
      const timed = async (kind: JobsRow['request'], request: () => Promise<Response>) => {
        const t0 = performance.now()
        let answer = { status: 0, body: new ArrayBuffer(0) }
        try {
          const response = await request()
          answer = { status: response.status, body: await response.arrayBuffer() }
        } catch {
          // A connection reset: a server blocked past its keep-alive timeout closes connections
          // that already carry a request. Counted as failed, with the time it took to fail.
        }
        latencies[kind].push(performance.now() - t0)
        if (answer.status !== 200 && answer.status !== 202) failed[kind]++
        return answer
      }
      const before = await versions()
      let accepted = 0
      const started = performance.now()
      const deadline = started + seconds * 1000
      const device = async () => {
        while (performance.now() < deadline) {
          const client = newClientId(secret, `jobs-${clients++}`)
          const issued = await timed('token', () =>
            fetch(`${origin}/v1/token`, {
              method: 'POST',
              body: JSON.stringify({ siteKey: 'demo-shop', client }),
            }),
          )
          if (issued.status !== 200) continue
          const { token, slice, version } = JSON.parse(new TextDecoder().decode(issued.body))
          const pair = factory.pair({ baseVersion: version, slice }, SCORE)
          // The worker's order: the helper's body first, then the leader's (P29c).
          const held = await timed('helper upload', () => uploadToHelper(helper, pair.helper))
          if (held.status !== 202) continue
          const sent = await timed('upload', () => upload(origin, token, pair.leader))
          if (sent.status === 202) accepted++
        }
      }
      const probe = async () => {
        while (performance.now() < deadline) {
          await timed('status probe', () => fetch(`${origin}/v1/federation`))
          await new Promise((resolve) => setTimeout(resolve, 100))
        }
      }
      await Promise.all([probe(), ...Array.from({ length: concurrency }, device)])
      const elapsed = (performance.now() - started) / 1000
      const after = await versions()
      const scored = (list: typeof before) =>
        new Set(list.filter((v) => v.metrics.validationCases !== undefined).map((v) => v.version))
      const scoredBefore = scored(before)
      windows.push({
        concurrency,
        seconds: elapsed,
        accepted,
        publishes: after.length - before.length,
        evaluations: [...scored(after)].filter((v) => !scoredBefore.has(v)).length,
      })
      for (const request of ['token', 'helper upload', 'upload', 'status probe'] as const) {
        const xs = latencies[request]
        rows.push({
          concurrency,
          request,
          requests: xs.length,
          failed: failed[request],
          p50Ms: percentile(xs, 50),
          p99Ms: percentile(xs, 99),
          maxMs: Math.max(...xs),
        })
      }
      const w = windows.at(-1)!
      console.error(
        `${concurrency} clients: ${w.accepted} accepted, ${w.publishes} publishes, ` +
          `${w.evaluations} evaluations; max ms ` +
          rows
            .slice(-4)
            .map((r) => `${r.request} ${r.maxMs.toFixed(0)}`)
            .join(', '),
      )
    }
    return { rows, windows }
  } finally {
    await stopReplicas([replica, { origin: helper, process: helperProcess.child }])
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? `${error.name}: ${error.message}` : error)
  process.exit(1)
})
