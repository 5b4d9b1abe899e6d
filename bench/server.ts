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
// The scenarios' code: bench/server/ (fleet.ts: the processes and what devices send).
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import os from 'node:os'
import path from 'node:path'
import { createGruModel, DEFAULT_GRU_CONFIG } from '../model/gru-model'
import { exportModelWeights } from '../model/model-weights'
import { setNodeBackend } from '../model/node-backend'
import { splitWeights } from '../shared/federation-layout'
import { leaderUploadBytes } from '../shared/leader-upload'
import { decodeWeights } from '../shared/weights-codec'
import { dropSchemas } from '../test/fixtures/postgres'
import { exportArtifacts } from '../train/artifacts/export-artifacts'
import { loadDataset } from '../train/data/load-dataset'
import { sharedDataDir } from '../train/data/paths'
import { runBenchmark, type BenchRun } from './harness'
import { int, intList, list, readOptions, text, type Options } from './options'
import { uploadsFor } from './server/fleet'
import { benchIntake, type IntakeRow } from './server/intake'
import { benchIntakeDuringJobs, type JobsRow, type JobsWindow } from './server/intake-during-jobs'
import { benchUpdates, splitInChromium } from './share-costs'

export const SERVER_FLAGS = {
  uploads: int(1500),
  concurrency: int(32),
  /** `intake`, `jobs` (intake while publishing and evaluating), `roles`: any of them. */
  scenarios: list(['intake', 'jobs', 'roles'] as const, ['intake', 'jobs', 'roles']),
  /** Updates measured per role at 43,097 and at 1,000,000 items. */
  roleRuns: intList([20, 3]),
  /** Seconds of load at each concurrency of the jobs scenario. */
  seconds: int(30),
  results: text(path.join('bench', 'results', 'server.json')),
}

export async function benchServer(
  options: Options<typeof SERVER_FLAGS>,
  run: BenchRun,
): Promise<void> {
  const scenarios = new Set(options.scenarios)
  const work = await mkdtemp(path.join(os.tmpdir(), 'pocketrec-bench-server-'))
  const schemas: string[] = []
  try {
    const { dataset, artifactsDir, factory } = await diginetica(work)
    const secret = randomBytes(32).toString('hex')
    const common = { work, artifactsDir, secret, factory }
    const { uploads, concurrency, seconds } = options
    const rows = scenarios.has('intake')
      ? await benchIntake({ ...common, uploads, concurrency, schemas })
      : []
    const [small = 20, large = 3] = options.roleRuns
    const roles = scenarios.has('roles')
      ? await benchRoles(dataset.nItems, small, large)
      : undefined
    const jobs = scenarios.has('jobs')
      ? await benchIntakeDuringJobs({ ...common, dataset, seconds })
      : { rows: [], windows: [] }
    printIntake(rows, leaderUploadBytes(factory.params), concurrency)
    printJobs(jobs)
    if (roles) printRoles(roles)
    await run.write(options.results, { concurrency, rows, intakeDuringJobs: jobs, roles })
  } finally {
    if (schemas.length) await dropSchemas(schemas).catch(() => {})
    await rm(work, { recursive: true, force: true })
  }
}

/** A DIGINETICA-sized release (the trained model if there is one, else a seeded one), and the
 * uploads devices would send for it. */
async function diginetica(work: string) {
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
  return { dataset, artifactsDir, factory: uploadsFor(splitWeights(model).shape) }
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

function printIntake(rows: IntakeRow[], uploadBytes: number, concurrency: number): void {
  if (rows.length === 0) return
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

function printJobs(jobs: { rows: JobsRow[]; windows: JobsWindow[] }): void {
  if (jobs.rows.length === 0) return
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

function printRoles(roles: Awaited<ReturnType<typeof benchRoles>>): void {
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

runBenchmark({
  script: 'bench:server',
  parse: (argv) => readOptions(SERVER_FLAGS, argv),
  run: benchServer,
})
