// Issue 12's fault test for the leader (PROTOCOL.md P29c): the leader as `server/cli/serve.ts`
// runs it, paired with a helper process, is killed with SIGKILL in the worst moment of a release:
// the helper has committed the batch (its bodies consumed) and the leader has not yet received
// the answer. Restarted on its store, the leader asks for the batch it recorded, gets the
// helper's committed answer, and publishes: no accepted update lost, none counted twice, and
// the model the plaintext channel would publish, bit for bit.
import { SHIPPED_MODEL_ENCODING } from '../shared/shipped-model'
import Database from 'better-sqlite3'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { computeSparseUpdate } from '../client/worker/federated/compute-sparse-update'
import { computeShareUpload } from '../client/worker/federated/share-update'
import { issueClientId } from '../server/federated/clients'
import { joinWeights, splitWeights } from '../shared/federation-layout'
import { helperRoute } from '../shared/helper-url'
import type { ModelManifest } from '../shared/protocol'
import { addContribution, applySparseSums, createSparseSums } from '../shared/sparse-update'
import { decodeWeights, encodeWeights } from '../shared/weights-codec'
import { setNodeBackend } from '../model/node-backend'
import { writeTestRelease } from './fixtures/exported-release'
import { startServerProcess, type ServerProcess } from './fixtures/server-process'

const K = 8
const TOKEN = 'the-leader-crash-test-pairing-secret-012345'
const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-leader-crash-'))
const leaderFile = path.join(dir, 'leader.db')
let leader: ServerProcess | null = null
let helper: ServerProcess | null = null
let proxy: Server | null = null

beforeAll(async () => {
  await setNodeBackend('cpu')
  await writeTestRelease(8, path.join(dir, 'artifacts'))
}, 60_000)

afterAll(() => {
  leader?.child.kill('SIGKILL')
  helper?.child.kill('SIGKILL')
  proxy?.close()
  rmSync(dir, { recursive: true, force: true })
})

/**
 * The leader's way to the helper: forwards everything, except that the first answer to a batch
 * is swallowed and `onAnswer` runs instead (the test kills the leader there).
 */
async function startProxy(target: () => string, onAnswer: () => Promise<void>): Promise<string> {
  let swallowed = false
  proxy = createServer(async (request, response) => {
    const chunks: Buffer[] = []
    for await (const chunk of request) chunks.push(chunk as Buffer)
    const answer = await fetch(new URL(request.url!, target()), {
      method: request.method,
      headers: {
        authorization: request.headers.authorization ?? '',
        'content-type': 'application/json',
      },
      body: request.method === 'POST' ? Buffer.concat(chunks) : undefined,
    })
    const body = Buffer.from(await answer.arrayBuffer())
    if (request.url === '/v1/aggregate' && answer.status === 200 && !swallowed) {
      swallowed = true
      await onAnswer()
      response.destroy()
      return
    }
    response.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? '' })
    response.end(body)
  })
  proxy.listen(0, '127.0.0.1')
  await new Promise((resolve) => proxy!.once('listening', resolve))
  return `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`
}

const startLeader = (helperOrigin: string, link: string) =>
  startServerProcess({
    port: 0,
    distDir: dir,
    federation: {
      artifactsDir: path.join(dir, 'artifacts'),
      sqliteFile: leaderFile,
      adminTokenFile: path.join(dir, 'admin-token'),
      promotion: 'auto',
      publishEveryMs: 100,
      settings: { bufferSize: K, minBuffer: K },
      helper: { url: helperOrigin, link, token: TOKEN },
    },
  })

function leaderDb<T>(read: (db: Database.Database) => T): T {
  const db = new Database(leaderFile, { readonly: true })
  try {
    return read(db)
  } finally {
    db.close()
  }
}

const sessionsOf = (n: number) => [Int32Array.of(2 + n, 5 + 2 * n, 9), Int32Array.of(4, 11 + n)]

describe('the leader killed mid-release (issue 12)', () => {
  it('loses no accepted update and counts none twice', async () => {
    helper = await startServerProcess(
      {
        port: 0,
        store: { kind: 'sqlite', file: path.join(dir, 'helper.db') },
        leaderToken: TOKEN,
        settings: { minBatch: 4 },
      },
      { role: 'helper' },
    )
    const helperOrigin = helper.origin
    let killed!: () => void
    const leaderKilled = new Promise<void>((resolve) => (killed = resolve))
    const link = await startProxy(
      () => helperOrigin,
      async () => {
        const child = leader!.child
        leader = null
        const exited = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGKILL')
        await exited
        killed()
      },
    )
    leader = await startLeader(helperOrigin, link)
    const origin = leader.origin
    const secret = leaderDb((db) =>
      Buffer.from(
        (
          db.prepare("SELECT value FROM settings WHERE name = 'token-secret'").get() as {
            value: string
          }
        ).value,
        'hex',
      ),
    )
    const v1 = (await (await fetch(`${origin}/artifacts/manifest.json`)).json()) as ModelManifest
    const global = decodeWeights(
      new Uint8Array(await (await fetch(`${origin}/artifacts/${v1.model.url}`)).arrayBuffer()),
    )
    const secure = v1.federation!
    const plain = createSparseSums(splitWeights(global).shape, Int32Array.from(secure.negatives))
    for (let n = 0; n < K; n++) {
      const client = issueClientId({ site: 'demo-shop', secret }, `leader-crash-${n}`)
      const issued = (await (
        await fetch(`${origin}/v1/token`, {
          method: 'POST',
          body: JSON.stringify({ siteKey: 'demo-shop', client }),
        })
      ).json()) as { token: string; slice: number; version: number }
      const training = { learningRate: 0.05, epochs: 1, seed: 100 + n }
      const upload = (await computeShareUpload(global, sessionsOf(n), {
        baseVersion: 1,
        slice: issued.slice,
        federation: secure,
        training,
      }))!
      const contribution = (await computeSparseUpdate(global, sessionsOf(n), {
        slice: issued.slice,
        layout: secure.layout,
        negativeRows: Int32Array.from(secure.negatives),
        clipNorm: secure.clipNorm,
        training,
      }))!.contribution
      addContribution(plain, contribution, secure.layout.embedDim)
      const toHelper = await fetch(helperRoute(secure.helper, 'shares'), {
        method: 'POST',
        body: upload.helper as Uint8Array<ArrayBuffer>,
      })
      expect(toHelper.status).toBe(202)
      const toLeader = await fetch(`${origin}/v1/updates`, {
        method: 'POST',
        headers: { authorization: `Bearer ${issued.token}` },
        body: upload.leader as Uint8Array<ArrayBuffer>,
      })
      expect(toLeader.status).toBe(202)
    }

    // The release: the helper commits, the leader dies before it hears back.
    await leaderKilled
    const helperCounts = async () => (await fetch(`${helperOrigin}/v1/helper`)).json()
    expect(await helperCounts()).toEqual({ waiting: 0, consumed: K, batches: 1 })
    const before = leaderDb((db) => ({
      versions: (db.prepare('SELECT version FROM versions').all() as { version: number }[]).map(
        (r) => r.version,
      ),
      pending: (
        db.prepare("SELECT value FROM settings WHERE name = 'secure.pendingBatch'").get() as {
          value: string
        }
      ).value,
    }))
    expect(before.versions).toEqual([1])
    expect(JSON.parse(before.pending).keys).toHaveLength(K)

    // Restarted on its store: it asks for the same batch and publishes from the helper's answer.
    leader = await startLeader(helperOrigin, link)
    const restarted = leader.origin
    await expect
      .poll(
        async () =>
          ((await (await fetch(`${restarted}/artifacts/manifest.json`)).json()) as ModelManifest)
            .version,
        { timeout: 30_000, interval: 200 },
      )
      .toBe('v2')
    const v2 = (await (await fetch(`${restarted}/artifacts/manifest.json`)).json()) as ModelManifest
    const next = applySparseSums(
      splitWeights(global),
      plain,
      { tableRate: 1, denseRate: 1 },
      secure.layout.embedDim,
    )
    const expected = encodeWeights(
      joinWeights(global, next.dense, next.table),
      SHIPPED_MODEL_ENCODING,
    )
    expect(v2.model.sha256).toBe(createHash('sha256').update(expected).digest('hex'))
    expect(await helperCounts()).toEqual({ waiting: 0, consumed: K, batches: 1 })
    const after = leaderDb((db) => ({
      metrics: JSON.parse(
        (db.prepare('SELECT metrics FROM versions WHERE version = 2').get() as { metrics: string })
          .metrics,
      ),
      buffered: (
        db.prepare('SELECT COUNT(*) AS n FROM updates WHERE consumed_by IS NULL').get() as {
          n: number
        }
      ).n,
      accepted: (db.prepare('SELECT COUNT(*) AS n FROM updates').get() as { n: number }).n,
    }))
    expect(after).toEqual({
      // Each report counted once: in the weights, in the popularity totals.
      metrics: { updates: K, leftOut: 0, popularityReports: K },
      buffered: 0,
      accepted: K,
    })
  }, 120_000)
})
