import { serve, type ServerType } from '@hono/node-server'
import { catalogueFrom, shopCatalogue } from '../../test/fixtures/read-artifact'
import Database from 'better-sqlite3'
import { build } from 'esbuild'
import { mkdtempSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { NODE_BUNDLE_OPTIONS } from './node-bundle.mjs'
import type { DeviceCatalogue } from '../../shared/protocol'
import { writeTestRelease } from '../../test/fixtures/exported-release'
import { shareFactory, type ShareFactory } from '../../test/fixtures/share-uploads'
import { setNodeBackend } from '../../model/node-backend'
import { createApp } from '../app'
import { createFederation, type Federation } from '../federated/service'
import { resolveFederationConfig } from '../config'
import { createHelper, type Helper } from '../helper/service'
import { openSqliteStore } from '../storage/sqlite-store'
import type { FederationStore } from '../storage/store'
import { issueClientId } from '../federated/clients'

// The job thread against a real SQLite file and the real routes over HTTP: work that would hold
// the main thread runs in the thread, refusals there change nothing, and a dead thread is
// replaced. A third connection holding SQLite's write lock stops a publish mid-way on demand.
const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-jobs-'))
const dbFile = path.join(dir, 'server.db')
const TOKEN = 'the-job-thread-test-pairing-secret-0123456'
let store: FederationStore
let federation: Federation
let helper: Helper
let uploads: ShareFactory
let catalogue: DeviceCatalogue
let origin: string
let helperOrigin: string
const servers: ServerType[] = []
let clients = 0

async function listen(fetch: (request: Request) => Response | Promise<Response>) {
  const server = serve({ fetch, port: 0, hostname: '127.0.0.1' })
  await new Promise((resolve) => server.once('listening', resolve))
  servers.push(server)
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

const admin = (method: string, route: string, body: string) =>
  fetch(`${origin}/v1/admin/${route}`, {
    method,
    headers: { authorization: `Bearer ${federation.adminToken!}` },
    body,
  })

/**
 * One accepted update over HTTP (its helper body to the helper, then its leader upload): with a
 * buffer of 1, the next publish is due.
 */
async function sendUpdate(): Promise<void> {
  const issued = await (
    await fetch(`${origin}/v1/token`, {
      method: 'POST',
      body: JSON.stringify({
        siteKey: 'demo-shop',
        client: issueClientId(
          { site: 'demo-shop', secret: federation.deps.secret },
          `jobs-client-${clients++}`,
        ),
      }),
    })
  ).json()
  const pair = uploads.pair({ baseVersion: issued.version, slice: issued.slice })
  const toHelper = await fetch(`${helperOrigin}/v1/shares`, {
    method: 'POST',
    body: pair.helper as Uint8Array<ArrayBuffer>,
  })
  expect(toHelper.status).toBe(202)
  const response = await fetch(`${origin}/v1/updates`, {
    method: 'POST',
    headers: { authorization: `Bearer ${issued.token}` },
    body: pair.leader as Uint8Array<ArrayBuffer>,
  })
  expect(response.status).toBe(202)
}

/** SQLite's write lock, taken by a connection of the test's own until `release()`. */
function holdWriteLock(): { release: () => void } {
  const db = new Database(dbFile)
  db.prepare('BEGIN IMMEDIATE').run()
  return {
    release: () => {
      db.prepare('ROLLBACK').run()
      db.close()
    },
  }
}

/** A promise's state without waiting for it. */
function track<T>(promise: Promise<T>) {
  const state = { settled: false }
  promise.then(
    () => (state.settled = true),
    () => (state.settled = true),
  )
  return state
}

describe('the job thread', () => {
  beforeAll(async () => {
    await setNodeBackend('cpu')
    const artifacts = path.join(dir, 'artifacts')
    const release = await writeTestRelease(8, artifacts)
    catalogue = catalogueFrom(release.files.get(path.basename(release.manifest.catalogue.url)))
    helper = await createHelper({
      store: { kind: 'sqlite', file: path.join(dir, 'helper.db') },
      leaderToken: TOKEN,
      settings: { minBatch: 1 },
    })
    helperOrigin = await listen(helper.app.fetch)
    store = openSqliteStore(dbFile)
    federation = await createFederation(
      store,
      resolveFederationConfig({
        artifactsDir: artifacts,
        promotion: 'auto',
        settings: { bufferSize: 1, minBuffer: 1 },
        evaluation: { maxCases: 200 },
        helper: { url: helperOrigin, token: TOKEN },
      }),
    )
    const { layout, shape } = federation.deps.settings.secure!
    uploads = shareFactory(layout, shape)
    origin = await listen(createApp({ distDir: dir, federation: federation.deps }).fetch)
    // Started (bundled, store opened) before the tests hold locks.
    expect(await federation.publishNow()).toMatchObject({ status: 'not-due' })
  }, 120_000)

  afterAll(async () => {
    for (const server of servers) server.close()
    await federation?.close()
    await store?.close()
    await helper?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('answers requests while a publish waits mid-way, and the publish then completes (P19)', async () => {
    await sendUpdate()
    const lock = holdWriteLock()
    const publishing = federation.publishNow()
    const state = track(publishing)
    try {
      // A publish on this thread would hold it in SQLite's busy wait until the lock is released,
      // which only this thread can do: these requests could not be answered.
      for (let i = 0; i < 5; i++) {
        const status = await (await fetch(`${origin}/v1/federation`)).json()
        expect(status).toMatchObject({ version: 1, buffered: 1 })
        expect((await fetch(`${origin}/artifacts/manifest.json`)).status).toBe(200)
      }
      expect(state.settled).toBe(false)
    } finally {
      lock.release()
    }
    expect(await publishing).toMatchObject({ status: 'published', record: { version: 2 } })
    expect((await store.current())!.version).toBe(2)
  })

  it('rejects the calls of a thread that dies, and starts a fresh one for the next (P19)', async () => {
    await sendUpdate()
    const lock = holdWriteLock()
    const publishing = federation.publishNow()
    const state = track(publishing)
    // Ended as a crash would; the thread is held in SQLite's busy wait until the lock goes.
    const stopped = federation.deps.jobs!.terminate()
    expect(state.settled).toBe(false)
    lock.release()
    await expect(publishing).rejects.toThrow(
      /^the job thread stopped \(.+\) before publish finished$/,
    )
    await stopped
    // Nothing was published, nothing consumed: the fresh thread publishes the same buffer.
    expect((await store.current())!.version).toBe(2)
    expect((await store.bufferStats()).updates).toBe(1)
    expect(await federation.publishNow()).toMatchObject({ status: 'published', updates: 1 })
    expect((await store.current())!.version).toBe(3)
  })

  it('parses uploads in the thread; a refused catalogue, rules or validation set changes nothing (P25, P26)', async () => {
    const versionsBefore = await store.versions()
    const refusals: Array<[route: string, body: string, code: string]> = [
      ['catalogue', '{"type": "pocketrec-catalogue", "items": [', 'E_CATALOGUE'],
      [
        'catalogue',
        JSON.stringify(shopCatalogue({ ...catalogue, items: catalogue.items.slice(1) })),
        'E_CATALOGUE',
      ],
      ['rules', '{"maxPerCategory": ', 'E_RULES'],
      ['rules', JSON.stringify({ type: 'pocketrec-rules', maxPerBrand: 'two' }), 'E_RULES'],
      ['validation', '[[', 'E_VALIDATION'],
      [
        'validation',
        JSON.stringify({ type: 'pocketrec-validation', sessions: [['no-such-1', 'no-such-2']] }),
        'E_VALIDATION',
      ],
    ]
    for (const [route, body, code] of refusals) {
      const response = await admin('PUT', route, body)
      expect([
        route,
        response.status,
        ((await response.json()) as { error: string }).error,
      ]).toEqual([route, 400, code])
    }
    expect(await store.versions()).toEqual(versionsBefore)
    expect(await store.setting('validation')).toBeNull()
    const evaluate = await admin('POST', 'evaluate', JSON.stringify({ version: 1 }))
    expect(evaluate.status).toBe(409)
  })

  it('answers 500 with the message of an error thrown in the thread, which goes on working', async () => {
    const ids = catalogue.items.slice(0, 30).map((item) => item.id)
    const sessions = [ids.slice(0, 10), ids.slice(10, 20), ids.slice(20, 30)]
    const stored = await admin(
      'PUT',
      'validation',
      JSON.stringify({ type: 'pocketrec-validation', sessions }),
    )
    expect(stored.status).toBe(201)
    // A version whose model is not in the store: scoring it is a bug, not a refusal.
    const current = (await store.current())!
    const missing = { ...current.manifest.model, sha256: 'e'.repeat(64) }
    await store.addVersion({
      ...current,
      version: 99,
      parent: current.version,
      manifest: { ...current.manifest, version: 'v99', model: missing },
      metrics: {},
    })
    const broken = await admin('POST', 'evaluate', JSON.stringify({ version: 99 }))
    expect(broken.status).toBe(500)
    expect(await broken.json()).toEqual({
      error: 'E_INTERNAL',
      message: 'expected the model of v99 in the store',
    })
    const evaluated = await admin('POST', 'evaluate', JSON.stringify({ version: current.version }))
    expect(evaluated.status).toBe(200)
    expect(await evaluated.json()).toMatchObject({
      version: current.version,
      metrics: { validationCases: 27 },
    })
  })

  it("[P26] keeps tfjs out of the server's main bundle: only the job thread's loads it", async () => {
    const inputs = async (entry: string) => {
      const { metafile } = await build({
        ...NODE_BUNDLE_OPTIONS,
        entryPoints: [entry],
        outfile: path.join(dir, 'bundle.mjs'),
        write: false,
        metafile: true,
      })
      return Object.keys(metafile.inputs)
    }
    const tfjs = (files: string[]) => files.filter((file) => file.includes('@tensorflow/'))
    expect(tfjs(await inputs('server/cli/serve.ts'))).toEqual([])
    expect(tfjs(await inputs('server/jobs/job-thread.ts'))).not.toEqual([])
  })
})
