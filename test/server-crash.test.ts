// Issue 11's fault test: the aggregation server as `npm start` runs it (its own process, an
// SQLite file, no secret configured, every default), killed with SIGKILL twice while 600 devices
// upload, and restarted on the same file. Devices use the worker's own uploader (a token per
// attempt for the update's base version, the outbox kept until the server accepts or refuses
// for good). Afterwards every update a device saw acknowledged is stored, each exactly once,
// and no device dropped its update.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { drainOutbox, requestToken, type UploaderDeps } from '../client/worker/federated/uploader'
import type { OutboxStore } from '../client/worker/storage/outbox-store'
import type { StoredUpload } from '../client/worker/storage/schema'
import { issueClientId } from '../server/federated/clients'
import { encodeUpdate, updateValueCount, type UpdateLayout } from '../shared/update-codec'
import { setNodeBackend } from '../train/node-backend'
import { writeTestRelease } from './fixtures/exported-release'
import { startServerProcess, type ServerProcess } from './fixtures/server-process'

const DEVICES = 600
const CONCURRENCY = 16
/** Kill the server when this many uploads have been acknowledged, then again. */
const KILL_AFTER = [150, 350]

const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-crash-'))
const sqliteFile = path.join(dir, 'pocketrec.db')
let server: ServerProcess | null = null

beforeAll(async () => {
  await setNodeBackend('cpu')
  await writeTestRelease(8, path.join(dir, 'artifacts'))
}, 60_000)

afterAll(() => {
  server?.child.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

/** `server/cli/serve.ts` with npm start's defaults but for the port and paths. */
async function startServer(): Promise<ServerProcess> {
  const options = {
    port: 0,
    distDir: dir,
    federation: {
      artifactsDir: path.join(dir, 'artifacts'),
      sqliteFile,
      adminTokenFile: path.join(dir, 'admin-token'),
    },
  }
  return startServerProcess(options)
}

/** The outbox of one device, in memory (the worker's is IndexedDB, with the same contract). */
function memoryOutbox(): OutboxStore & { items: StoredUpload[] } {
  const items: StoredUpload[] = []
  let next = 1
  return {
    items,
    async enqueue(upload) {
      const existing = items.find((u) => u.idempotencyKey === upload.idempotencyKey)
      if (existing) return existing
      const stored = { ...upload, id: next++, attempts: 0, createdAtMs: 0, lastAttemptAtMs: null }
      items.push(stored)
      return stored
    },
    async list() {
      return [...items]
    },
    async recordAttempt(id) {
      const u = items.find((x) => x.id === id)
      if (u) u.attempts++
    },
    async remove(id) {
      const i = items.findIndex((x) => x.id === id)
      if (i >= 0) items.splice(i, 1)
    },
  }
}

interface Device {
  client: string
  key: string
  outbox: ReturnType<typeof memoryOutbox>
  /** The answers the server gave this device's upload: 202 and 200 are acknowledgements. */
  answers: number[]
  /** Upload attempts, answered or not. */
  attempts: number
  dropped: number
}

/**
 * Issued ids, minted with the secret the first start created in the store (what POST /v1/client
 * would answer after 2^20 hashes each: 600 of them would take minutes).
 */
function issuedIds(count: number): string[] {
  const raw = new Database(sqliteFile, { readonly: true })
  const row = raw.prepare("SELECT value FROM settings WHERE name = 'token-secret'").get() as {
    value: string
  }
  raw.close()
  const secret = Buffer.from(row.value, 'hex')
  return Array.from({ length: count }, (_, i) =>
    issueClientId({ site: 'demo-shop', secret }, `crash-${i}`),
  )
}

describe('a killed server loses nothing (issue 11)', () => {
  it(`SIGKILL twice during ${DEVICES} uploads: 0 acknowledged updates lost, 0 counted twice`, async () => {
    server = await startServer()
    const ids = issuedIds(DEVICES)
    let acknowledged = 0
    const devices: Device[] = Array.from({ length: DEVICES }, (_, i) => ({
      client: ids[i]!,
      key: '',
      outbox: memoryOutbox(),
      answers: [],
      attempts: 0,
      dropped: 0,
    }))
    const depsOf = (device: Device): UploaderDeps => ({
      // The origin of the server running now: a restarted one listens elsewhere.
      fetch: async (input, init) => {
        const url = new URL(String(input))
        const target = new URL(url.pathname, server!.origin)
        if (url.pathname === '/v1/updates') device.attempts++
        const response = await fetch(target, init)
        if (url.pathname === '/v1/updates') {
          device.answers.push(response.status)
          if (response.status === 202 || response.status === 200) acknowledged++
        }
        return response
      },
      manifestUrl: new URL('/artifacts/manifest.json', 'http://127.0.0.1'),
      siteKey: 'demo-shop',
      clientId: async () => ({ ok: true, id: device.client }),
      outbox: device.outbox,
    })

    /** What a worker does: a token for the current version, an update for its slice, the outbox. */
    async function prepare(device: Device): Promise<void> {
      for (;;) {
        const token = await requestToken(depsOf(device))
        if (token.ok) {
          const { layout } = token.answer as typeof token.answer & { layout: UpdateLayout }
          const key = randomBytes(16)
          device.key = key.toString('hex')
          await device.outbox.enqueue({
            idempotencyKey: device.key,
            baseVersion: `v${token.answer.version}`,
            body: encodeUpdate({
              baseVersion: token.answer.version,
              examples: 4,
              slice: token.answer.slice,
              layout,
              idempotencyKey: key,
              values: new Float32Array(updateValueCount(layout)),
              popularity: layout.popularityBuckets
                ? new Float32Array(layout.popularityBuckets)
                : undefined,
              score: { cases: 0, hits20: 0, reciprocalRank20: 0 },
            }),
          })
          return
        }
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }

    let killed = 0
    const killer = setInterval(() => {
      if (killed < KILL_AFTER.length && acknowledged >= KILL_AFTER[killed]! && server) {
        killed++
        const dead = server
        server = null
        dead.child.kill('SIGKILL')
        void new Promise((resolve) => dead.child.once('exit', resolve))
          .then(() => startServer())
          .then((s) => (server = s))
      }
    }, 5)

    // Each device prepares its update and drains its outbox until it is empty, retrying what the
    // server could not take (no answer, 5xx, 429) as the worker does on its next run.
    let nextDevice = 0
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (nextDevice < DEVICES) {
          const device = devices[nextDevice++]!
          while (!server) await new Promise((resolve) => setTimeout(resolve, 20))
          await prepare(device)
          while (device.outbox.items.length > 0) {
            if (!server) {
              await new Promise((resolve) => setTimeout(resolve, 20))
              continue
            }
            const result = await drainOutbox(depsOf(device))
            device.dropped += result.dropped
          }
        }
      }),
    )
    clearInterval(killer)
    expect(killed).toBe(KILL_AFTER.length)
    server!.child.kill('SIGTERM')
    await new Promise((resolve) => server!.child.once('exit', resolve))
    server = null

    const raw = new Database(sqliteFile, { readonly: true })
    const rows = raw.prepare('SELECT key, client_id AS client FROM updates').all() as Array<{
      key: string
      client: string
    }>
    raw.close()
    const stored = new Map(rows.map((r) => [r.client, r.key]))
    expect(devices.filter((d) => d.dropped > 0)).toEqual([])
    for (const device of devices) {
      expect(
        device.answers.some((s) => s === 202 || s === 200),
        device.client,
      ).toBe(true)
      expect(stored.get(device.client), device.client).toBe(`${device.client}:${device.key}`)
    }
    // Once each: one row per device, no other rows.
    expect(rows.length).toBe(DEVICES)
    expect(stored.size).toBe(DEVICES)
    // The kills happened while uploads were in flight: some devices saw no answer and retried.
    expect(devices.filter((d) => d.attempts > d.answers.length).length).toBeGreaterThan(0)
  }, 240_000)
})
