// Replicas as real processes (server/cli/serve.ts) on one PostgreSQL schema, paired with one
// helper (its own PostgreSQL schema) that they share (P29c): three replicas taking the same
// updates publish v2 once, each update consumed once, and the very model one replica does (the
// channel's sums are exact in fixed point, so bit for bit); a replica killed with SIGKILL while
// the buffer fills loses no accepted update and counts none twice after restart.
import { serve, type ServerType } from '@hono/node-server'
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { splitWeights } from '../../shared/federation-layout'
import type { ModelManifest } from '../../shared/protocol'
import { decodeWeights } from '../../shared/weights-codec'
import { dropSchemas, ensurePostgres, POSTGRES_URL } from '../../test/fixtures/postgres'
import { writeTestRelease } from '../../test/fixtures/exported-release'
import { shareFactoryFor, type ShareFactory } from '../../test/fixtures/share-uploads'
import { setNodeBackend } from '../../model/node-backend'
import { createHelper, type Helper } from '../helper/service'
import { issueClientId } from './clients'
import { startServerProcess } from '../../test/fixtures/server-process'

const UPDATES = 12
const PAIRING = 'the-replicas-test-pairing-secret-0123456789'
let work: string
let artifactsDir: string
const secret = randomBytes(32).toString('hex')
const schemas: string[] = []
const running = new Set<ChildProcess>()
const helpers: Array<{ helper: Helper; server: ServerType }> = []
/** One factory per device: each of the 12 updates has values of its own. */
let factories: ShareFactory[] = []

interface Replica {
  origin: string
  child: ChildProcess
}

/** The helper a scenario's replicas share: its own PostgreSQL schema, served over HTTP. */
async function startHelper(schema: string): Promise<string> {
  schemas.push(schema)
  const helper = await createHelper({
    store: { kind: 'postgres', connectionString: POSTGRES_URL, schema },
    leaderToken: PAIRING,
    // Not the whole buffer: a second batch of already consumed bodies, or of a part of the
    // buffer, would be summed and published rather than refused as too small.
    settings: { minBatch: 1 },
    answerWaitMs: 100,
  })
  const server = serve({ fetch: helper.app.fetch, port: 0, hostname: '127.0.0.1' })
  await new Promise((resolve) => server.once('listening', resolve))
  helpers.push({ helper, server })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function startReplica(schema: string, helperOrigin: string): Promise<Replica> {
  const options = {
    port: 0,
    distDir: work,
    federation: {
      postgresUrl: POSTGRES_URL,
      schema,
      artifactsDir,
      secret,
      settings: { bufferSize: UPDATES, minBuffer: UPDATES },
      rateLimits: { perClientPerMinute: 1000 },
      publishEveryMs: 100,
      // Each replica makes v2 current at once: the test compares what they publish.
      promotion: 'auto',
      helper: { url: helperOrigin, token: PAIRING },
    },
  }
  const replica = await startServerProcess(options)
  running.add(replica.child)
  replica.child.once('exit', () => running.delete(replica.child))
  return replica
}

interface Prepared {
  token: string
  leader: Uint8Array
  helper: Uint8Array
}

/** The same 12 updates for every scenario: clients, keys and values fixed; slices from the token. */
async function prepareUpload(origin: string, i: number): Promise<Prepared> {
  const response = await fetch(`${origin}/v1/token`, {
    method: 'POST',
    // Ids as POST /v1/client issues them: every replica shares the secret that verifies them.
    body: JSON.stringify({
      siteKey: 'demo-shop',
      client: issueClientId(
        { site: 'demo-shop', secret: Buffer.from(secret, 'hex') },
        `replica-client-${i}`,
      ),
    }),
  })
  expect(response.status, await response.clone().text()).toBe(200)
  const issued = (await response.json()) as { token: string; slice: number; version: number }
  const pair = factories[i]!.pair({
    baseVersion: 1,
    slice: issued.slice,
    idempotencyKey: new Uint8Array(16).fill(i + 1),
  })
  return { token: issued.token, leader: pair.leader, helper: pair.helper }
}

/** As a device sends it: the helper's body first, then the leader's upload; the leader's status. */
async function upload(origin: string, helperOrigin: string, prepared: Prepared): Promise<number> {
  const toHelper = await fetch(`${helperOrigin}/v1/shares`, {
    method: 'POST',
    body: prepared.helper as Uint8Array<ArrayBuffer>,
  })
  await toHelper.arrayBuffer()
  expect([200, 202]).toContain(toHelper.status)
  const response = await fetch(`${origin}/v1/updates`, {
    method: 'POST',
    headers: { authorization: `Bearer ${prepared.token}` },
    body: prepared.leader as Uint8Array<ArrayBuffer>,
  })
  const answer = await response.text()
  // A refusal or a failure says why in the test's output.
  if (response.status !== 202 && response.status !== 200)
    console.error(`upload to ${origin}: ${response.status} ${answer}`)
  return response.status
}

/** Waits for v2 and returns its model, its record, and the leader's and the helper's counters. */
async function publishedV2(origin: string, helperOrigin: string) {
  let manifest: ModelManifest | undefined
  for (let i = 0; i < 300; i++) {
    manifest = (await (await fetch(`${origin}/artifacts/manifest.json`)).json()) as ModelManifest
    if (manifest.version === 'v2') break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  expect(manifest?.version).toBe('v2')
  const bytes = new Uint8Array(
    await (await fetch(`${origin}/artifacts/${manifest!.model.url}`)).arrayBuffer(),
  )
  // A replica that published may still be recording its batch's end: let the loops settle.
  await new Promise((resolve) => setTimeout(resolve, 500))
  const status = (await (await fetch(`${origin}/v1/federation`)).json()) as {
    version: number
    accepted: number
    buffered: number
  }
  const helper = (await (await fetch(`${helperOrigin}/v1/helper`)).json()) as {
    waiting: number
    consumed: number
    batches: number
  }
  return {
    model: manifest!.model.sha256,
    weights: splitWeights(decodeWeights(bytes)),
    status,
    helper,
  }
}

/** Every update summed once, in one batch, into one v2: what each scenario must end with. */
function expectOnce(published: Awaited<ReturnType<typeof publishedV2>>) {
  expect(published.status).toMatchObject({ version: 2, accepted: UPDATES, buffered: 0 })
  expect(published.helper).toEqual({ waiting: 0, consumed: UPDATES, batches: 1 })
}

describe('replicas on one PostgreSQL', () => {
  let single: Awaited<ReturnType<typeof publishedV2>>

  beforeAll(async () => {
    await ensurePostgres()
    await setNodeBackend('cpu')
    work = await mkdtemp(path.join(tmpdir(), 'pocketrec-replicas-'))
    artifactsDir = path.join(work, 'artifacts')
    await writeTestRelease(8, artifactsDir)

    // The reference: one replica takes the 12 updates and publishes v2.
    const schema = `replicas_${process.pid}_one`
    schemas.push(schema)
    const helperOrigin = await startHelper(`${schema}_helper`)
    const replica = await startReplica(schema, helperOrigin)
    const v1 = (await (
      await fetch(`${replica.origin}/artifacts/manifest.json`)
    ).json()) as ModelManifest
    const model = decodeWeights(
      new Uint8Array(
        await (await fetch(`${replica.origin}/artifacts/${v1.model.url}`)).arrayBuffer(),
      ),
    )
    const { shape } = splitWeights(model)
    factories = Array.from({ length: UPDATES }, (_, i) =>
      shareFactoryFor(v1.federation!, shape, 1000 + i),
    )
    for (let i = 0; i < UPDATES; i++) {
      const prepared = await prepareUpload(replica.origin, i)
      expect(await upload(replica.origin, helperOrigin, prepared)).toBe(202)
    }
    single = await publishedV2(replica.origin, helperOrigin)
    expectOnce(single)
    // The release moved the model: a comparison with it is not one of two untouched copies.
    expect(single.model).not.toBe(v1.model.sha256)
    replica.child.kill('SIGTERM')
  }, 120_000)

  afterAll(async () => {
    for (const child of running) child.kill('SIGKILL')
    for (const { helper, server } of helpers) {
      await new Promise((resolve) => server.close(resolve))
      await helper.close()
    }
    await dropSchemas(schemas).catch(() => {})
    if (work) await rm(work, { recursive: true, force: true })
  })

  it('three replicas, the updates spread across them, publish the model one replica does, once', async () => {
    const schema = `replicas_${process.pid}_three`
    schemas.push(schema)
    const helperOrigin = await startHelper(`${schema}_helper`)
    const first = await startReplica(schema, helperOrigin) // seeds the store
    const replicas = [
      first,
      await startReplica(schema, helperOrigin),
      await startReplica(schema, helperOrigin),
    ]
    await Promise.all(
      Array.from({ length: UPDATES }, async (_, i) => {
        const origin = replicas[i % 3]!.origin
        expect(await upload(origin, helperOrigin, await prepareUpload(origin, i))).toBe(202)
      }),
    )
    const three = await publishedV2(replicas[2]!.origin, helperOrigin)
    // One v2 only, from all twelve updates, each consumed by the helper once, in one batch: no
    // replica published twice or counted one twice.
    expectOnce(three)
    // Fixed-point sums do not depend on the order: the same model, bit for bit.
    expect(three.model).toBe(single.model)
    for (const r of replicas) {
      const status = (await (await fetch(`${r.origin}/v1/federation`)).json()) as object
      expect(status).toMatchObject({ version: 2, accepted: UPDATES, buffered: 0 })
    }
    for (const r of replicas) r.child.kill('SIGTERM')
  }, 120_000)

  it('a replica killed with SIGKILL mid-round loses no accepted update and counts none twice', async () => {
    const schema = `replicas_${process.pid}_killed`
    schemas.push(schema)
    const helperOrigin = await startHelper(`${schema}_helper`)
    let replica = await startReplica(schema, helperOrigin)
    const prepared = []
    for (let i = 0; i < UPDATES; i++) prepared.push(await prepareUpload(replica.origin, i))
    for (let i = 0; i < 6; i++)
      expect(await upload(replica.origin, helperOrigin, prepared[i]!)).toBe(202)
    replica.child.kill('SIGKILL')
    await new Promise((resolve) => replica.child.once('exit', resolve))

    replica = await startReplica(schema, helperOrigin)
    // Devices retry what they never heard back about: the same bodies, counted once.
    for (let i = 4; i < 6; i++)
      expect(await upload(replica.origin, helperOrigin, prepared[i]!)).toBe(200)
    for (let i = 6; i < UPDATES; i++)
      expect(await upload(replica.origin, helperOrigin, prepared[i]!)).toBe(202)
    const after = await publishedV2(replica.origin, helperOrigin)
    expectOnce(after)
    expect(after.model).toBe(single.model)
    replica.child.kill('SIGTERM')
  }, 120_000)
})
