// Replicas as real processes (server/cli/serve.ts) on one PostgreSQL: three replicas taking the
// same updates produce the global model one replica does (noise off), and a replica killed with
// SIGKILL while the buffer fills loses no accepted update and counts none twice after restart.
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { splitWeights } from '../../shared/federation-layout'
import type { ModelManifest } from '../../shared/protocol'
import { createRandom } from '../../shared/random'
import { NO_SCORE, encodeUpdate, type UpdateLayout } from '../../shared/update-codec'
import { sketchPopularity } from '../../shared/popularity-sketch'
import { decodeWeights } from '../../shared/weights-codec'
import { dropSchemas, ensurePostgres, POSTGRES_URL } from '../../test/fixtures/postgres'
import { writeTestRelease } from '../../test/fixtures/exported-release'
import { setNodeBackend } from '../../train/node-backend'
import { issueClientId } from './clients'
import { startServerProcess } from '../../test/fixtures/server-process'

const UPDATES = 12
let work: string
let artifactsDir: string
const secret = randomBytes(32).toString('hex')
const schemas: string[] = []
const running = new Set<ChildProcess>()

interface Replica {
  origin: string
  child: ChildProcess
}

async function startReplica(schema: string): Promise<Replica> {
  const options = {
    port: 0,
    distDir: work,
    federation: {
      postgresUrl: POSTGRES_URL,
      schema,
      artifactsDir,
      secret,
      settings: { bufferSize: UPDATES, minBuffer: UPDATES, noiseMultiplier: 0, clipNorm: 10 },
      rateLimits: { perClientPerMinute: 1000 },
      publishEveryMs: 100,
      // Each replica makes v2 current at once: the test compares what they publish.
      promotion: 'auto',
    },
  }
  const replica = await startServerProcess(options)
  running.add(replica.child)
  replica.child.once('exit', () => running.delete(replica.child))
  return replica
}

/** The same 12 updates for every scenario: clients, keys and values fixed; slices from the token. */
async function prepareUpload(origin: string, i: number) {
  const issued = (await (
    await fetch(`${origin}/v1/token`, {
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
  ).json()) as {
    token: string
    slice: number
    version: number
    layout: UpdateLayout
  }
  const random = createRandom(1000 + i)
  const count = issued.layout.denseCoordinates + issued.layout.sliceRows * issued.layout.embedDim
  const body = encodeUpdate({
    baseVersion: 1,
    examples: 5 + i,
    slice: issued.slice,
    layout: issued.layout,
    idempotencyKey: new Uint8Array(16).fill(i + 1),
    values: Float32Array.from({ length: count }, () => (random() - 0.5) * 0.05),
    // P28: the default layout asks for the items' popularity sketch too.
    popularity: sketchPopularity([Int32Array.of(i % 5, 7)], 1, issued.layout.popularityBuckets ?? 0)
      .values,
    score: NO_SCORE,
  })
  return { token: issued.token, body }
}

async function upload(
  origin: string,
  prepared: { token: string; body: Uint8Array },
): Promise<number> {
  const response = await fetch(`${origin}/v1/updates`, {
    method: 'POST',
    headers: { authorization: `Bearer ${prepared.token}` },
    body: prepared.body as Uint8Array<ArrayBuffer>,
  })
  await response.arrayBuffer()
  return response.status
}

/** Waits for v2 and returns its weights and how many updates it consumed. */
async function publishedV2(origin: string) {
  let manifest: ModelManifest | undefined
  for (let i = 0; i < 200; i++) {
    manifest = (await (await fetch(`${origin}/artifacts/manifest.json`)).json()) as ModelManifest
    if (manifest.version === 'v2') break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  expect(manifest?.version).toBe('v2')
  const bytes = new Uint8Array(
    await (await fetch(`${origin}/artifacts/${manifest!.model.url}`)).arrayBuffer(),
  )
  const status = (await (await fetch(`${origin}/v1/federation`)).json()) as {
    accepted: number
    buffered: number
  }
  return { weights: splitWeights(decodeWeights(bytes)), status }
}

function maxDifference(a: Float32Array, b: Float32Array): number {
  let worst = 0
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!))
  return worst
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
    const replica = await startReplica(schema)
    for (let i = 0; i < UPDATES; i++) {
      expect(await upload(replica.origin, await prepareUpload(replica.origin, i))).toBe(202)
    }
    single = await publishedV2(replica.origin)
    replica.child.kill('SIGTERM')
  }, 120_000)

  afterAll(async () => {
    for (const child of running) child.kill('SIGKILL')
    await dropSchemas(schemas).catch(() => {})
    if (work) await rm(work, { recursive: true, force: true })
  })

  it('three replicas, the updates spread across them, publish the model one replica does', async () => {
    const schema = `replicas_${process.pid}_three`
    schemas.push(schema)
    const first = await startReplica(schema) // seeds the store
    const replicas = [first, await startReplica(schema), await startReplica(schema)]
    await Promise.all(
      Array.from({ length: UPDATES }, async (_, i) => {
        const origin = replicas[i % 3]!.origin
        expect(await upload(origin, await prepareUpload(origin, i))).toBe(202)
      }),
    )
    const three = await publishedV2(replicas[2]!.origin)
    expect(three.status).toMatchObject({ accepted: UPDATES, buffered: 0 })
    // Sums in another order round differently; float16 storage then rounds both.
    expect(maxDifference(three.weights.dense, single.weights.dense)).toBeLessThan(1e-3)
    expect(maxDifference(three.weights.table, single.weights.table)).toBeLessThan(1e-3)
    // One v2 only, from all twelve updates: no replica published twice or counted one twice.
    const versions = (await (await fetch(`${first.origin}/v1/federation`)).json()) as {
      version: number
    }
    expect(versions.version).toBe(2)
    for (const r of replicas) r.child.kill('SIGTERM')
  }, 120_000)

  it('a replica killed with SIGKILL mid-round loses no accepted update and counts none twice', async () => {
    const schema = `replicas_${process.pid}_killed`
    schemas.push(schema)
    let replica = await startReplica(schema)
    const prepared = []
    for (let i = 0; i < UPDATES; i++) prepared.push(await prepareUpload(replica.origin, i))
    for (let i = 0; i < 6; i++) expect(await upload(replica.origin, prepared[i]!)).toBe(202)
    replica.child.kill('SIGKILL')
    await new Promise((resolve) => replica.child.once('exit', resolve))

    replica = await startReplica(schema)
    // Devices retry what they never heard back about: the same bodies, counted once.
    for (let i = 4; i < 6; i++) expect(await upload(replica.origin, prepared[i]!)).toBe(200)
    for (let i = 6; i < UPDATES; i++) expect(await upload(replica.origin, prepared[i]!)).toBe(202)
    const after = await publishedV2(replica.origin)
    expect(after.status).toMatchObject({ accepted: UPDATES, buffered: 0 })
    expect(maxDifference(after.weights.dense, single.weights.dense)).toBeLessThan(1e-3)
    expect(maxDifference(after.weights.table, single.weights.table)).toBeLessThan(1e-3)
    replica.child.kill('SIGTERM')
  }, 120_000)
})
