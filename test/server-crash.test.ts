// Issue 11's fault test: the aggregation server as `npm start` runs it (its own process, an
// SQLite file, no secret configured, every default, the stand-in helper of the two-server channel
// mounted at /helper with its own SQLite file, PROTOCOL.md P29c), killed with SIGKILL twice while
// 600 devices upload, and restarted on the same files. Devices use the worker's own uploader (on
// each attempt the helper's body to the helper first, then a token for the update's base version
// and the leader's upload; the outbox kept until the server accepts or refuses for good).
// Afterwards every update a device saw acknowledged is stored, each exactly once, its helper body
// is stored beside it, and no device dropped its update.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  drainOutbox,
  requestToken,
  type TokenAnswer,
  type UploaderDeps,
} from '../client/worker/federated/uploader'
import type { OutboxStore } from '../client/worker/storage/outbox-store'
import type { StoredUpload } from '../client/worker/storage/schema'
import { issueClientId } from '../server/federated/clients'
import { splitWeights } from '../shared/federation-layout'
import { helperRoute } from '../shared/helper-url'
import type { ModelManifest } from '../shared/protocol'
import type { SparseLayout, SparseShape } from '../shared/sparse-update'
import { decodeWeights } from '../shared/weights-codec'
import { setNodeBackend } from '../model/node-backend'
import { writeTestRelease } from './fixtures/exported-release'
import { startServerProcess, type ServerProcess } from './fixtures/server-process'
import { shareFactoryFor } from './fixtures/share-uploads'

const DEVICES = 600
const CONCURRENCY = 16
/** Kill the server when this many uploads have been acknowledged, then again. */
const KILL_AFTER = [150, 350]

const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-crash-'))
const sqliteFile = path.join(dir, 'pocketrec.db')
/** Where server/main.ts keeps the stand-in helper's store beside the leader's. */
const helperFile = path.join(dir, 'pocketrec-helper.db')
let server: ServerProcess | null = null
let shape: SparseShape

beforeAll(async () => {
  await setNodeBackend('cpu')
  const release = await writeTestRelease(8, path.join(dir, 'artifacts'))
  const model = release.files.get(path.basename(release.manifest.model.url))!
  shape = splitWeights(decodeWeights(model)).shape
}, 60_000)

afterAll(() => {
  server?.child.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

/** `server/cli/serve.ts` with npm start's defaults (scripts/start.ts) but for the port and paths. */
async function startServer(): Promise<ServerProcess> {
  const options = {
    port: 0,
    distDir: dir,
    federation: {
      artifactsDir: path.join(dir, 'artifacts'),
      sqliteFile,
      adminTokenFile: path.join(dir, 'admin-token'),
      helper: 'stand-in',
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
  /** The helper's body of the device's update. */
  helperBody: Uint8Array
  outbox: ReturnType<typeof memoryOutbox>
  /** The answers the server gave this device's upload: 202 and 200 are acknowledgements. */
  answers: number[]
  /** The answers the helper gave its body, before each upload attempt (P29c). */
  helperAnswers: number[]
  /** Upload attempts, answered or not. */
  attempts: number
  dropped: number
}

/**
 * Issued ids, minted with the secret the first start created in the store (what POST /v1/client
 * would answer after 2^20 hashes each: 600 of them would take minutes).
 */
function issuedIds(count: number): string[] {
  const row = read(sqliteFile, (db) =>
    db.prepare("SELECT value FROM settings WHERE name = 'token-secret'").get(),
  ) as { value: string }
  const secret = Buffer.from(row.value, 'hex')
  return Array.from({ length: count }, (_, i) =>
    issueClientId({ site: 'demo-shop', secret }, `crash-${i}`),
  )
}

function read<T>(file: string, query: (db: Database.Database) => T): T {
  const db = new Database(file, { readonly: true })
  try {
    return query(db)
  } finally {
    db.close()
  }
}

describe('a killed server loses nothing (issue 11)', () => {
  it(`SIGKILL twice during ${DEVICES} uploads: 0 acknowledged updates lost, 0 counted twice`, async () => {
    server = await startServer()
    const v1 = (await (
      await fetch(`${server.origin}/artifacts/manifest.json`)
    ).json()) as ModelManifest
    // Paired with a helper: the manifest announces it, at /helper on the server's own origin.
    expect(v1.federation?.helper).toBe('/helper')
    const shares = shareFactoryFor(v1.federation!, shape)
    // npm start's buffer publishes at 1,000 updates or after an hour: no release happens during
    // the test, so every accepted update stays in the buffer to be counted (checked below).
    const { settings } = (await (await fetch(`${server.origin}/v1/federation`)).json()) as {
      settings: { bufferSize: number; maxWaitMs: number }
    }
    expect(settings.bufferSize).toBeGreaterThan(DEVICES)
    expect(settings.maxWaitMs).toBeGreaterThanOrEqual(3_600_000)
    const ids = issuedIds(DEVICES)
    let acknowledged = 0
    const devices: Device[] = Array.from({ length: DEVICES }, (_, i) => ({
      client: ids[i]!,
      key: '',
      helperBody: new Uint8Array(0),
      outbox: memoryOutbox(),
      answers: [],
      helperAnswers: [],
      attempts: 0,
      dropped: 0,
    }))
    const manifestUrl = new URL('/artifacts/manifest.json', 'http://127.0.0.1')
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
        if (url.pathname === '/helper/v1/shares') device.helperAnswers.push(response.status)
        return response
      },
      manifestUrl,
      siteKey: 'demo-shop',
      clientId: async () => ({ ok: true, id: device.client }),
      outbox: device.outbox,
    })

    /**
     * What a worker does: a token for the current version, an update for its slice (a valid pair
     * of share bodies, test/fixtures/share-uploads.ts), both bodies in the outbox.
     */
    async function prepare(device: Device): Promise<void> {
      for (;;) {
        const token = await requestToken(depsOf(device))
        if (token.ok) {
          const { layout } = token.answer as TokenAnswer & { layout: SparseLayout }
          expect(layout).toEqual(v1.federation!.layout)
          const pair = shares.pair({ baseVersion: token.answer.version, slice: token.answer.slice })
          device.key = pair.key
          device.helperBody = pair.helper
          await device.outbox.enqueue({
            idempotencyKey: pair.key,
            baseVersion: `v${token.answer.version}`,
            body: pair.leader,
            helper: {
              url: String(helperRoute(v1.federation!.helper, 'shares', manifestUrl)),
              body: pair.helper,
            },
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

    const rows = read(sqliteFile, (db) =>
      db.prepare('SELECT key, client_id AS client FROM updates').all(),
    ) as Array<{ key: string; client: string }>
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
    // No release happened, so none was consumed: the buffer holds them all.
    expect(read(sqliteFile, (db) => db.prepare('SELECT version FROM versions').all())).toEqual([
      { version: 1 },
    ])
    // P29c: the helper answered each device's body before its upload was sent, and holds every
    // accepted update's other half: one body per key, the device's own, none in a batch.
    for (const device of devices)
      expect(device.helperAnswers.length, device.client).toBeGreaterThan(0)
    const halves = read(helperFile, (db) =>
      db.prepare('SELECT key, body, batch FROM shares').all(),
    ) as Array<{ key: string; body: Buffer; batch: string | null }>
    expect(halves.length).toBe(DEVICES)
    const held = new Map(halves.map((h) => [h.key, h]))
    for (const device of devices) {
      const half = held.get(device.key)
      expect(half?.batch, device.client).toBeNull()
      expect(half && Buffer.from(device.helperBody).equals(half.body), device.client).toBe(true)
    }
    // The kills happened while uploads were in flight: some devices saw no answer and retried.
    expect(devices.filter((d) => d.attempts > d.answers.length).length).toBeGreaterThan(0)
  }, 240_000)
})
