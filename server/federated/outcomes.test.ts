// Outcome reports through the two servers, served (PROTOCOL.md P30c): devices close a day's
// counts into reports with the worker's own code (experiment-reports.ts) and send them with its
// sender, the helper's body to a real helper and the leader's to a real leader over HTTP; the
// leader batches them with the helper. With the noise off the totals the operator reads must
// equal the devices' reports summed, exactly; no server keeps a per-device row past its batch.
import Database from 'better-sqlite3'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  emptyOutcomeState,
  rollPeriod,
  type OutcomeState,
} from '../../client/worker/experiment-outcomes'
import { buildReports } from '../../client/worker/experiment-reports'
import { sendReports, type ReportsSent } from '../../client/worker/federated/report-sender'
import { placeDevice, type Experiment } from '../../shared/experiments'
import { helperRoute } from '../../shared/helper-url'
import { createNobleCipher } from '../../shared/noble-cipher'
import {
  emptyOutcomeCounts,
  EXPLORE_BUCKETS,
  exploreBucket,
  type ExploreCounts,
  outcomeCell,
  outcomePeriod,
} from '../../shared/outcome-counts'
import {
  buildOutcomeReport,
  EXPLORE_CLIPS,
  exploreOffset,
  OUTCOME_CLIPS,
  reportCells,
  sumShares,
} from '../../shared/outcome-report'
import { digestHex, experimentDigest } from '../../shared/outcome-transport'
import type { ExplorationTotals, ModelManifest } from '../../shared/protocol'
import { createRandom } from '../../shared/random'
import { setNodeBackend } from '../../model/node-backend'
import { writeTestRelease } from '../../test/fixtures/exported-release'
import { serverGroup, startTestHelper, type TestHelper } from '../../test/fixtures/listen'
import { createApp } from '../app'
import { resolveFederationConfig } from '../config'
import { openSqliteStore } from '../storage/sqlite-store'
import type { FederationStore } from '../storage/store'
import { issueClientId } from './clients'
import { PENDING_OUTCOMES, releaseOutcomes } from './outcome-release'
import { createFederation, type Federation } from './service'

const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-outcomes-'))
const TOKEN = 'a-pairing-secret-for-the-outcomes-test-0123'
const ADMIN = 'the-outcomes-test-admin-token-0123456789'
const MIN_BATCH = 5
let store: FederationStore
let federation: Federation
let helper: TestHelper
let origin = ''
const servers = serverGroup()
const crypto = { randomBytes: (n: number) => new Uint8Array(randomBytes(n)), cipher: createNobleCipher() } // prettier-ignore

const holdout = {
  id: 'holdout',
  key: 'spring-2027',
  arms: [
    { name: 'model', share: 1, lists: 'model' as const },
    { name: 'pools', share: 1, lists: 'pools' as const },
  ],
}
const today = outcomePeriod(Date.now())

/** A device that counted yesterday: lists and clicks in its arm and group, seeded. */
function deviceState(n: number, experiment: Experiment = holdout): OutcomeState {
  const random = createRandom(n + 1)
  const { arm, group } = placeDevice(experiment, `device-id-${n}`)
  const counts = emptyOutcomeCounts()
  counts[outcomeCell('similar', 'lists')] = 1 + Math.floor(random() * 30) // clipped at 20
  counts[outcomeCell('similar', 'clicks')] = Math.floor(random() * 4)
  counts[outcomeCell('for-you', 'lists')] = 2
  if (random() < 0.5) counts[outcomeCell('similar', 'purchases')] = 1
  if (random() < 0.5) counts[outcomeCell('similar', 'revenue')] = Math.round(2000 * random())
  // Its arm explored (P30f): impressions of two new items' buckets (clipped at 4), a click on one.
  const explored: ExploreCounts = [
    [exploreBucket('new-1'), 1 + Math.floor(random() * 6), random() < 0.5 ? 1 : 0],
    [exploreBucket(`new-${n % 3}`), 1, 0],
  ]
  return {
    ...emptyOutcomeState(),
    period: today - 1,
    counters: [
      {
        experiment: experiment.id,
        key: experiment.key,
        arms: experiment.arms.map((a) => a.name),
        arm: experiment.arms[arm]!.name,
        group,
        counts,
        ...(arm === 0 ? { explored } : {}),
      },
    ],
  }
}

/** The day ends: the worker's roll, then the model part's reports (as the round runs them). */
function closeDay(state: OutcomeState, day: number, keys: typeof crypto): boolean {
  const rolled = rollPeriod(state, day)
  return buildReports(state, keys) || rolled
}

/** The report the device's counts make, in the clear: what the totals must add up. */
function plainReport(state: OutcomeState): Uint32Array {
  const counter = state.counters[0]!
  return buildOutcomeReport(2, counter.arms.indexOf(counter.arm), counter.group, counter.counts, counter.explored) // prettier-ignore
}

async function tokenFor(client: string): Promise<string> {
  const response = await fetch(`${origin}/v1/token`, {
    method: 'POST',
    body: JSON.stringify({ siteKey: 'demo-shop', client: issueClientId(federation.deps, client) }),
  })
  expect(response.status).toBe(200)
  return ((await response.json()) as { token: string }).token
}

/** The worker's sender over real HTTP, for one device's waiting reports. */
async function send(state: OutcomeState, client: string, toHelper = true): Promise<ReportsSent> {
  const manifest = (await (
    await fetch(`${origin}/artifacts/manifest.json`)
  ).json()) as ModelManifest
  const shares = helperRoute(manifest.federation!.helper, 'shares', new URL(origin))
  return sendReports({
    // A device that sends the helper nothing: its leader body can never be summed.
    fetch: (url, init) =>
      !toHelper && String(url) === shares.href
        ? Promise.resolve(new Response(null, { status: 202 }))
        : fetch(url, init),
    manifestUrl: new URL('/artifacts/manifest.json', origin),
    helperShares: shares,
    token: () => tokenFor(client),
    reports: async () => state.reports,
    forget: async (key) => void (state.reports = state.reports.filter((r) => r.key !== key)),
  })
}

async function outcomes() {
  const response = await fetch(`${origin}/v1/admin/outcomes`, {
    headers: { authorization: `Bearer ${ADMIN}` },
  })
  expect(response.status).toBe(200)
  return (await response.json()) as {
    experiments: Array<{
      id: string
      digest: string
      arms: string[]
      running: boolean
      batches: Array<{ reports: number; sigma: number; totals: string }>
    }>
  }
}

const totalsOf = (base64: string) => {
  const bytes = Buffer.from(base64, 'base64')
  return new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4)
}

beforeAll(async () => {
  await setNodeBackend('cpu')
  const artifacts = path.join(dir, 'artifacts')
  await writeTestRelease(8, artifacts)
  helper = await startTestHelper(dir, { token: TOKEN, minBatch: MIN_BATCH, answerWaitMs: 50, outcomeSigma: 0 }) // prettier-ignore
  store = openSqliteStore(path.join(dir, 'leader.db'))
  federation = await createFederation(
    store,
    resolveFederationConfig({
      artifactsDir: artifacts,
      adminToken: ADMIN,
      promotion: 'auto',
      settings: { outcomes: { minBatch: MIN_BATCH, sigma: 0 } },
      helper: { url: helper.origin, token: TOKEN },
    }),
  )
  origin = await servers.serve(createApp({ distDir: dir, federation: federation.deps }).fetch)
  const put = await fetch(`${origin}/v1/admin/experiments`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'pocketrec-experiments', experiments: [holdout] }),
  })
  expect(put.status).toBe(201)
}, 60_000)

afterAll(async () => {
  await servers.close()
  await federation?.close()
  await store?.close()
  await helper?.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('outcome reports through the two servers (P30c)', () => {
  it('the totals equal the devices’ reports summed, exactly with the noise off', async () => {
    const devices = Array.from({ length: 12 }, (_, n) => deviceState(n))
    const expected = sumShares(devices.map(plainReport), reportCells(2))
    for (const [n, state] of devices.entries()) {
      expect(closeDay(state, today, crypto)).toBe(true)
      expect(state.counters).toEqual([])
      expect(state.reports).toHaveLength(1)
      expect(await send(state, `device-${n}`)).toEqual({ sent: 1, dropped: 0, kept: 0 })
      expect(state.reports).toEqual([])
    }
    // A device that reached the leader alone: left out by the helper, consumed unsummed.
    const lone = deviceState(99)
    closeDay(lone, today, crypto)
    expect(await send(lone, 'device-lone', false)).toMatchObject({ sent: 1 })

    const released = await federation.outcomesNow()
    expect(released).toMatchObject([{ status: 'released', reports: 12, leftOut: 1 }])
    const [experiment] = (await outcomes()).experiments
    expect(experiment).toMatchObject({
      id: 'holdout',
      arms: ['model', 'pools'],
      running: true,
      digest: digestHex(experimentDigest(holdout)),
    })
    expect(experiment!.batches).toHaveLength(1)
    expect(experiment!.batches[0]).toMatchObject({ reports: 12, sigma: 0 })
    expect(Array.from(totalsOf(experiment!.batches[0]!.totals))).toEqual(Array.from(expected))
    // Both arms took part, and the clips held (a device's lists at most 20).
    expect(expected.some((v) => v > 0)).toBe(true)
    // Exploration's counts per bucket, public: exactly the devices' sections (P30f).
    const exploration = await fetch(`${origin}/v1/exploration`)
    expect(exploration.headers.get('access-control-allow-origin')).toBe('*')
    const totals = (await exploration.json()) as ExplorationTotals
    const section = (start: number) => Array.from(expected.subarray(start, start + EXPLORE_BUCKETS))
    expect(totals).toMatchObject({ buckets: EXPLORE_BUCKETS, batches: 1, reports: 12, noise: { shown: 0, clicked: 0 } }) // prettier-ignore
    expect(totals.shown).toEqual(section(exploreOffset(2)))
    expect(totals.clicked).toEqual(section(exploreOffset(2) + EXPLORE_BUCKETS))
    expect(totals.shown[exploreBucket('new-1')]).toBeGreaterThan(0)
    expect(totals.shown.every((n, b) => n <= 4 * 12 && totals.clicked[b]! <= 12)).toBe(true)
    // Nothing waits any more: a second check releases nothing.
    expect(await federation.outcomesNow()).toEqual([])
  })

  it('keeps no per-device row: consumed bodies are gone on both servers', async () => {
    const leader = new Database(path.join(dir, 'leader.db'), { readonly: true })
    const rows = leader
      .prepare('SELECT length(body) AS bytes, consumed_by FROM outcome_reports')
      .all() as Array<{ bytes: number; consumed_by: string | null }>
    leader.close()
    expect(rows).toHaveLength(13)
    expect(rows.every((r) => r.bytes === 0 && r.consumed_by !== null)).toBe(true)
    expect(await helper.helper.store.counts()).toMatchObject({ waiting: 0, consumed: 12 })
  })

  it('every report has the same size, whatever the device counted', () => {
    const a = deviceState(1)
    const b = { ...deviceState(2), counters: [{ ...deviceState(2).counters[0]!, counts: emptyOutcomeCounts().map(() => 1) }] } // prettier-ignore
    closeDay(a, today, crypto)
    closeDay(b, today, crypto)
    expect(a.reports[0]!.leader.length).toBe(b.reports[0]!.leader.length)
    expect(a.reports[0]!.helper.length).toBe(b.reports[0]!.helper.length)
  })

  it('takes one report per client and period, and refuses reports it cannot use', async () => {
    const client = 'device-twice'
    const token = await tokenFor(client)
    const post = (body: Uint8Array) =>
      fetch(`${origin}/v1/outcomes`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
        body: body as Uint8Array<ArrayBuffer>,
      })
    const first = deviceState(3)
    closeDay(first, today, crypto)
    expect((await post(first.reports[0]!.leader)).status).toBe(202)
    // The same report again (a retry): a duplicate, stored once.
    expect((await post(first.reports[0]!.leader)).status).toBe(200)
    // Another report of the same period from the same client.
    const second = deviceState(4)
    closeDay(second, today, crypto)
    const again = await post(second.reports[0]!.leader)
    expect(again.status).toBe(409)
    expect(await again.json()).toMatchObject({ error: 'E_CLIENT_LIMIT' })
    // An experiment that is not running.
    const other = deviceState(5, { ...holdout, key: 'another-key' })
    closeDay(other, today, crypto)
    const unknown = await post(other.reports[0]!.leader)
    expect(await unknown.json()).toMatchObject({ error: 'E_EXPERIMENT_UNKNOWN' })
    // The helper's body to the leader, a truncated body, a period too old.
    for (const body of [
      first.reports[0]!.helper,
      first.reports[0]!.leader.subarray(0, 100),
      (() => {
        const old = deviceState(6)
        old.period = today - 30
        closeDay(old, today, crypto)
        return old.reports[0]!.leader
      })(),
    ]) {
      const response = await post(body)
      expect(response.status).toBe(400)
      expect(await response.json()).toMatchObject({ error: 'E_OUTCOME_FORMAT' })
    }
    const noToken = await fetch(`${origin}/v1/outcomes`, { method: 'POST', body: first.reports[0]!.leader as Uint8Array<ArrayBuffer> }) // prettier-ignore
    expect(noToken.status).toBe(401)
  })

  it('refuses a batch below the helper’s floor and keeps the reports waiting', async () => {
    // One report waits (the first of the test above); the leader's floor is met by none.
    expect(await federation.outcomesNow()).toEqual([])
    expect([...(await store.outcomeWaiting()).values()]).toEqual([1])
  })

  it('with the leader’s half of the noise on, the totals are within the stated noise', async () => {
    const devices = Array.from({ length: 40 }, (_, n) => deviceState(200 + n))
    const expected = sumShares(devices.map(plainReport), reportCells(2))
    for (const [n, state] of devices.entries()) {
      closeDay(state, today, crypto)
      expect(await send(state, `noisy-${n}`)).toMatchObject({ sent: 1 })
    }
    const [released] = await releaseOutcomes({
      store,
      settings: { ...federation.deps.settings, outcomes: { minBatch: MIN_BATCH, sigma: 1 } },
      now: Date.now,
    })
    // The report left waiting above reached the leader alone: the helper leaves it out.
    expect(released).toMatchObject({ status: 'released', reports: 40, leftOut: 1 })
    const batch = (await outcomes()).experiments[0]!.batches[1]!
    // The helper's half is off here: the total's σ is the mean of the two halves' variances.
    expect(batch.sigma).toBeCloseTo(Math.SQRT1_2, 12)
    const totals = totalsOf(batch.totals)
    const stated = batch.sigma * OUTCOME_CLIPS.lists
    const errors: number[] = []
    // The lists cells: N(0, (σ·20)²) each.
    for (let i = 0; i < exploreOffset(2); i++) {
      if (Math.floor(i / 32) % 5 === 0) errors.push(totals[i]! - expected[i]!)
    }
    const rms = Math.sqrt(errors.reduce((a, e) => a + e * e, 0) / errors.length)
    expect(rms).toBeGreaterThan(0.8 * stated)
    expect(rms).toBeLessThan(1.25 * stated)
    // Exploration's impressions per bucket (P30f): N(0, (σ·4)²) each.
    const shown = Array.from({ length: EXPLORE_BUCKETS }, (_, b) => {
      const i = exploreOffset(2) + b
      return totals[i]! - expected[i]!
    })
    const shownRms = Math.sqrt(shown.reduce((a, e) => a + e * e, 0) / shown.length)
    expect(shownRms / (batch.sigma * EXPLORE_CLIPS.shown)).toBeGreaterThan(0.85)
    expect(shownRms / (batch.sigma * EXPLORE_CLIPS.shown)).toBeLessThan(1.15)
  })

  it('a leader killed between the helper’s answer and its commit asks the same batch again, summed once', async () => {
    const devices = Array.from({ length: 6 }, (_, n) => deviceState(400 + n))
    const expected = sumShares(devices.map(plainReport), reportCells(2))
    for (const [n, state] of devices.entries()) {
      closeDay(state, today, crypto)
      expect(await send(state, `crash-${n}`)).toMatchObject({ sent: 1 })
    }
    const settings = { ...federation.deps.settings, outcomes: { minBatch: MIN_BATCH, sigma: 0 } }
    // The store fails the commit as a kill would: the claim stays, nothing is consumed.
    const crashing = Object.create(store) as FederationStore
    crashing.commitOutcomeBatch = async () => {
      throw new Error('killed')
    }
    await expect(releaseOutcomes({ store: crashing, settings, now: Date.now })).rejects.toThrow('killed') // prettier-ignore
    expect([...(await store.outcomeWaiting()).values()]).toEqual([6])
    const claimed = JSON.parse((await store.setting(PENDING_OUTCOMES))!) as { id: string }
    // Restarted: the recorded batch is asked again; the helper answers it from its record.
    const [again] = await releaseOutcomes({ store, settings, now: Date.now })
    expect(again).toMatchObject({ status: 'released', batch: claimed.id, reports: 6 })
    const batches = (await outcomes()).experiments[0]!.batches
    expect(batches.filter((b) => b.reports === 6)).toHaveLength(1)
    expect(Array.from(totalsOf(batches.at(-1)!.totals))).toEqual(Array.from(expected))
    expect(await store.outcomeWaiting()).toEqual(new Map())
    expect(await store.setting(PENDING_OUTCOMES)).toBe('')
  })
})
