import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { setNodeBackend } from '../model/node-backend'
import { solveWork } from '../shared/proof-of-work'
import { writeTestRelease } from '../test/fixtures/exported-release'
import { startServer } from './main'

// A shop of its own (issue 14), end to end: a real server started from a configuration file
// with two site keys, each with its own origins, and devices asking it over HTTP as a tag's
// worker does (P21: a challenge, its work, a client id, then an upload token).
const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-site-keys-'))
const LIVE = 'https://shop.example'
const STAGING = 'https://staging.shop.example'
let running: Awaited<ReturnType<typeof startServer>>
let origin = ''
let artifacts = ''
let configFile = ''

beforeAll(async () => {
  await setNodeBackend('cpu')
  artifacts = path.join(dir, 'artifacts')
  await writeTestRelease(8, artifacts)
  configFile = path.join(dir, 'pocketrec.config.json')
  writeFileSync(
    configFile,
    JSON.stringify({
      site: 'my-shop',
      sites: [
        { key: 'pk_live', origins: [LIVE] },
        { key: 'pk_staging', origins: [STAGING] },
      ],
      clientIds: { bits: 4 },
    }),
  )
  running = await startServer({
    port: 0,
    distDir: dir,
    configFile,
    federation: {
      artifactsDir: artifacts,
      sqliteFile: path.join(dir, 'pocketrec.db'),
      adminTokenFile: path.join(dir, 'admin-token'),
      publishEveryMs: 3_600_000,
      helper: 'stand-in',
    },
    log: () => {},
  })
  origin = `http://127.0.0.1:${(running.server.address() as AddressInfo).port}`
}, 120_000)

afterAll(async () => {
  await running?.close()
  rmSync(dir, { recursive: true, force: true })
})

async function post(route: string, body: object, page: string, at = origin) {
  const response = await fetch(`${at}/v1/${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: page },
    body: JSON.stringify(body),
  })
  return {
    status: response.status,
    allowOrigin: response.headers.get('access-control-allow-origin'),
    body: (await response.json()) as Record<string, unknown>,
  }
}

/** What a device's worker does on `page` with the tag's `siteKey`: a client id, then a token. */
async function register(siteKey: string, page: string, at = origin) {
  const challenge = await post('client/challenge', { siteKey }, page, at)
  if (challenge.status !== 200) return { step: 'challenge', ...challenge }
  const text = challenge.body.challenge as string
  const { nonce } = await solveWork(text, challenge.body.bits as number)
  const client = await post('client', { siteKey, challenge: text, nonce }, page, at)
  if (client.status !== 200) return { step: 'client', ...client }
  const token = await post('token', { siteKey, client: client.body.client }, page, at)
  return { step: 'token', ...token }
}

/**
 * server/cli/serve.ts as its own process, configured as an operator would: JSON options in
 * POCKETREC_SERVER, the site keys in the file POCKETREC_CONFIG names. Resolves with its port,
 * or with its exit code and what it wrote to stderr if it stops first.
 */
function serveProcess(config: string, name: string) {
  const options = {
    port: 0,
    distDir: dir,
    federation: {
      artifactsDir: artifacts,
      sqliteFile: path.join(dir, `${name}.db`),
      adminTokenFile: path.join(dir, `${name}-admin-token`),
      publishEveryMs: 3_600_000,
      helper: 'stand-in',
    },
  }
  const child = spawn(process.execPath, ['scripts/run.mjs', 'server/cli/serve.ts'], {
    env: { ...process.env, POCKETREC_SERVER: JSON.stringify(options), POCKETREC_CONFIG: config },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk))
  const started = new Promise<{ port?: number; code?: number | null; stderr: string }>(
    (resolve) => {
      let stdout = ''
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk
        const port = /listening (\d+)/.exec(stdout)?.[1]
        if (port) resolve({ port: Number(port), stderr })
      })
      child.on('exit', (code) => resolve({ code, stderr }))
    },
  )
  return { started, stop: () => child.kill('SIGTERM') }
}

describe('site keys from the configuration file, end to end (issue 14)', () => {
  it('gives a device using the second key, on its own origin, an upload token', async () => {
    const staging = await register('pk_staging', STAGING)
    expect(staging).toMatchObject({ step: 'token', status: 200 })
    expect(staging.body.token).toEqual(expect.any(String))
    // The browser lets the page read the answer.
    expect(staging.allowOrigin).toBe('*')
    expect(await register('pk_live', LIVE)).toMatchObject({ step: 'token', status: 200 })
  })

  it('refuses a key it was not configured with, and the built-in demo key', async () => {
    for (const key of ['pk_unknown', 'demo-shop', 'my-shop']) {
      expect(await register(key, LIVE)).toMatchObject({
        step: 'challenge',
        status: 401,
        body: { error: 'E_SITE_KEY' },
      })
    }
  })

  it('refuses a key used from another key’s origin', async () => {
    expect(await register('pk_staging', LIVE)).toMatchObject({
      step: 'challenge',
      status: 403,
      body: {
        error: 'E_ORIGIN',
        message: `expected a page on one of the origins of site key pk_staging, got ${LIVE}`,
      },
    })
    expect(await register('pk_live', STAGING)).toMatchObject({
      status: 403,
      body: { error: 'E_ORIGIN' },
    })
  })

  it('a server process started with POCKETREC_CONFIG takes the second key, from its origin only', async () => {
    const server = serveProcess(configFile, 'process')
    try {
      const { port, stderr } = await server.started
      expect(port, stderr).toBeGreaterThan(0)
      const at = `http://127.0.0.1:${port}`
      expect(await register('pk_staging', STAGING, at)).toMatchObject({
        step: 'token',
        status: 200,
      })
      expect(await register('pk_staging', LIVE, at)).toMatchObject({
        status: 403,
        body: { error: 'E_ORIGIN' },
      })
    } finally {
      server.stop()
    }
  }, 60_000)

  it('a server process stops at start on a misspelt key in its file, naming it and the file', async () => {
    const bad = path.join(dir, 'misspelt.config.json')
    writeFileSync(bad, JSON.stringify({ site: 'my-shop', sties: [{ key: 'pk_live' }] }))
    const server = serveProcess(bad, 'misspelt')
    const { port, code, stderr } = await server.started
    expect(port).toBeUndefined()
    expect(code).toBe(1)
    expect(stderr).toContain(`unknown option sties in ${bad}: expected some of site, sites,`)
  }, 60_000)
})
