// Scenario 2 of bench:server: intake while the server publishes (through a helper process)
// and evaluates candidates, at 1, 8 and 64 concurrent clients: the latency of every request.
import { catalogueFrom } from '../../test/fixtures/read-artifact'
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import type { SessionDataset } from '../../train/data/types'
import type { ShareFactory } from '../../test/fixtures/share-uploads'
import { startServerProcess } from '../../test/fixtures/server-process'
import { percentile } from '../stats'
import {
  HELPER_TOKEN,
  newClientId,
  SCORE,
  startReplica,
  stopReplicas,
  upload,
  uploadToHelper,
} from './fleet'

/** One kind of request at one concurrency, while the server publishes and evaluates. */
export interface JobsRow {
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
export interface JobsWindow {
  concurrency: number
  seconds: number
  accepted: number
  /** Versions published (candidates) during the window. */
  publishes: number
  /** Versions that gained a validation score during the window. */
  evaluations: number
}

/**
 * Scenario 2: one SQLite replica (not pinned: it may use both cores, as the load generator does)
 * publishing from a buffer of 200 and scoring every candidate on 5,000 held-out cases, while
 * clients at each concurrency ask for a token and upload, and one client polls the status.
 */
export async function benchIntakeDuringJobs(options: {
  factory: ShareFactory
  work: string
  artifactsDir: string
  secret: string
  dataset: SessionDataset
  seconds: number
}): Promise<{ rows: JobsRow[]; windows: JobsWindow[] }> {
  const { work, artifactsDir, secret, dataset, seconds, factory } = options
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
    const catalogue = catalogueFrom(await readFile(path.join(artifactsDir, manifest.catalogue.url)))
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
    const load = { origin, helper, secret, factory, seconds, versions }
    for (const concurrency of [1, 8, 64]) {
      const measured = await loadWindow(load, concurrency)
      rows.push(...measured.rows)
      windows.push(measured.window)
      const w = measured.window
      console.error(
        `${concurrency} clients: ${w.accepted} accepted, ${w.publishes} publishes, ` +
          `${w.evaluations} evaluations; max ms ` +
          measured.rows.map((r) => `${r.request} ${r.maxMs.toFixed(0)}`).join(', '),
      )
    }
    return { rows, windows }
  } finally {
    await stopReplicas([replica, { origin: helper, process: helperProcess.child }])
  }
}

interface Load {
  origin: string
  helper: string
  secret: string
  factory: ShareFactory
  seconds: number
  versions: () => Promise<Array<{ version: number; metrics: Record<string, number> }>>
}

/**
 * One concurrency's window: `concurrency` devices ask for a token, send the helper's body, then
 * the leader's, for `seconds`, while one client polls the status; what was published meanwhile.
 */
async function loadWindow(
  { origin, helper, secret, factory, seconds, versions }: Load,
  concurrency: number,
): Promise<{ rows: JobsRow[]; window: JobsWindow }> {
  let clients = 0
  const rows: JobsRow[] = []
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
      const client = newClientId(secret, `jobs-${concurrency}-${clients++}`)
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
  const window: JobsWindow = {
    concurrency,
    seconds: elapsed,
    accepted,
    publishes: after.length - before.length,
    evaluations: [...scored(after)].filter((v) => !scoredBefore.has(v)).length,
  }
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
  return { rows, window }
}
