import 'fake-indexeddb/auto'
import { IDBFactory } from 'fake-indexeddb'
import { beforeEach, describe, expect, it } from 'vitest'
import { checkWork } from '../../../shared/proof-of-work'
import { openStorage, type Storage } from '../storage'
import { obtainClientId } from './client-id'
import { drainOutbox, type UploaderDeps } from './uploader'

const T0 = 1_700_000_000_000

/** A fake server: answers tokens and uploads from scripted statuses, recording every request. */
function fakeServer(uploadStatuses: Array<number | 'offline'>) {
  const requests: Array<{ path: string; body: unknown }> = []
  const fetch = (async (url: URL | string, init?: RequestInit) => {
    const path = new URL(String(url)).pathname
    if (path === '/v1/token') {
      const body = JSON.parse(String(init!.body))
      requests.push({ path, body })
      return Response.json({ token: `t-${body.version}`, slice: 7, version: body.version })
    }
    requests.push({ path, body: (init!.headers as Record<string, string>).authorization })
    const status = uploadStatuses.shift() ?? 202
    if (status === 'offline') throw new TypeError('fetch failed')
    return new Response('{}', { status })
  }) as typeof globalThis.fetch
  return { fetch, requests }
}

describe('draining the outbox (PROTOCOL.md P12)', () => {
  let storage: Storage
  beforeEach(async () => {
    globalThis.indexedDB = new IDBFactory()
    storage = await openStorage({ now: () => T0 })
    for (const [key, version] of [
      ['a', 'v3'],
      ['b', 'v4'],
      ['c', 'v4'],
    ]) {
      await storage.outbox.enqueue({
        idempotencyKey: key!,
        baseVersion: version!,
        body: Uint8Array.of(1, 2),
      })
    }
  })

  const deps = (fetch: typeof globalThis.fetch): UploaderDeps => ({
    fetch,
    manifestUrl: new URL('http://127.0.0.1:9/artifacts/manifest.json'),
    siteKey: 'demo-shop',
    clientId: async () => ({ ok: true, id: 'client-0001' }),
    outbox: storage.outbox,
  })

  it('P29c: sends the helper its body first; keeps an upload the helper cannot take now, drops one it refuses', async () => {
    globalThis.indexedDB = new IDBFactory()
    storage = await openStorage({ now: () => T0 })
    const helper = { url: 'http://127.0.0.1:9/helper/v1/shares', body: Uint8Array.of(9, 9) }
    await storage.outbox.enqueue({
      idempotencyKey: 'k',
      baseVersion: 'v3',
      body: Uint8Array.of(1),
      helper,
    })
    // The helper is down: nothing goes to the leader (no token asked either), the upload stays.
    const down = fakeServer(['offline'])
    expect(await drainOutbox(deps(down.fetch))).toEqual({ sent: 0, dropped: 0, kept: 1 })
    expect(down.requests.map((r) => r.path)).toEqual(['/helper/v1/shares'])
    // Up again: the helper's body, then a token and the leader's body.
    const up = fakeServer([202, 202])
    expect(await drainOutbox(deps(up.fetch))).toEqual({ sent: 1, dropped: 0, kept: 0 })
    expect(up.requests.map((r) => r.path)).toEqual([
      '/helper/v1/shares',
      '/v1/token',
      '/v1/updates',
    ])
    // A body the helper refuses for good (400): dropped, never sent to the leader.
    await storage.outbox.enqueue({
      idempotencyKey: 'k2',
      baseVersion: 'v3',
      body: Uint8Array.of(1),
      helper,
    })
    const refused = fakeServer([400])
    expect(await drainOutbox(deps(refused.fetch))).toEqual({ sent: 0, dropped: 1, kept: 0 })
    expect(refused.requests.map((r) => r.path)).toEqual(['/helper/v1/shares'])
    expect(await storage.outbox.list()).toEqual([])
  })

  it('sends each upload with a token for the version it was trained on, and removes what the server took', async () => {
    const server = fakeServer([202, 200, 202])
    expect(await drainOutbox(deps(server.fetch))).toEqual({ sent: 3, dropped: 0, kept: 0 })
    expect(await storage.outbox.list()).toEqual([])
    const tokens = server.requests.filter((r) => r.path === '/v1/token').map((r) => r.body)
    expect(tokens).toEqual([
      { siteKey: 'demo-shop', client: 'client-0001', version: 3 },
      { siteKey: 'demo-shop', client: 'client-0001', version: 4 },
      { siteKey: 'demo-shop', client: 'client-0001', version: 4 },
    ])
    expect(server.requests.filter((r) => r.path === '/v1/updates').map((r) => r.body)).toEqual([
      'Bearer t-3',
      'Bearer t-4',
      'Bearer t-4',
    ])
  })

  it('drops what the server refuses for good, keeps the rest when it is busy or away', async () => {
    const server = fakeServer([409, 503])
    expect(await drainOutbox(deps(server.fetch))).toEqual({ sent: 0, dropped: 1, kept: 2 })
    const left = await storage.outbox.list()
    expect(left.map((u) => [u.idempotencyKey, u.attempts])).toEqual([
      ['b', 1],
      ['c', 0],
    ])
    const offline = fakeServer(['offline'])
    expect(await drainOutbox(deps(offline.fetch))).toEqual({ sent: 0, dropped: 0, kept: 2 })
    expect((await storage.outbox.list())[0]!.attempts).toBe(2)
    // Back online: both go, and the retried one is the same bytes under the same key.
    const back = fakeServer([200, 202])
    expect(await drainOutbox(deps(back.fetch))).toEqual({ sent: 2, dropped: 0, kept: 0 })
  })

  it('sends the first upload of its version with the token it was trained for, once', async () => {
    const server = fakeServer([202, 202, 202])
    const held = { token: 'held-4', slice: 7, version: 4 }
    expect(await drainOutbox(deps(server.fetch), held)).toEqual({ sent: 3, dropped: 0, kept: 0 })
    expect(server.requests.map((r) => [r.path, r.body])).toEqual([
      ['/v1/token', { siteKey: 'demo-shop', client: 'client-0001', version: 3 }],
      ['/v1/updates', 'Bearer t-3'],
      ['/v1/updates', 'Bearer held-4'],
      ['/v1/token', { siteKey: 'demo-shop', client: 'client-0001', version: 4 }],
      ['/v1/updates', 'Bearer t-4'],
    ])
  })

  it('asks for a fresh token when the held one has expired (401), and drops nothing', async () => {
    await storage.outbox.remove((await storage.outbox.list())[0]!.id) // only v4's two are left
    const server = fakeServer([401, 202, 202])
    const held = { token: 'old-4', slice: 7, version: 4 }
    expect(await drainOutbox(deps(server.fetch), held)).toEqual({ sent: 2, dropped: 0, kept: 0 })
    expect(server.requests.filter((r) => r.path === '/v1/updates').map((r) => r.body)).toEqual([
      'Bearer old-4',
      'Bearer t-4',
      'Bearer t-4',
    ])
  })
})

/**
 * A fake server with P21's registration: challenges at 4 bits, ids for solved ones, tokens for
 * issued ids only (E_CLIENT otherwise), uploads accepted. `register`: how /v1/client answers.
 */
function fakeFederation(register: 'issue' | 429 | 403 = 'issue') {
  const paths: string[] = []
  const issued = new Set<string>()
  const fetch = (async (url: URL | string, init?: RequestInit) => {
    const path = new URL(String(url)).pathname
    paths.push(path)
    const body = init?.body instanceof Uint8Array ? null : JSON.parse(String(init!.body))
    if (path === '/v1/client/challenge') {
      return Response.json({ challenge: `challenge-${paths.length}`, bits: 4, exp: T0 + 60_000 })
    }
    if (path === '/v1/client') {
      if (register === 429) return Response.json({ error: 'E_RATE_LIMITED' }, { status: 429 })
      if (register === 403) return Response.json({ error: 'E_ORIGIN' }, { status: 403 })
      if (!checkWork(body.challenge, body.nonce, 4)) {
        return Response.json({ error: 'E_WORK' }, { status: 400 })
      }
      const client = `issued-${body.challenge}`
      issued.add(client)
      return Response.json({ client, exp: T0 + 7 * 86_400_000 })
    }
    if (path === '/v1/token') {
      if (!issued.has(body.client)) return Response.json({ error: 'E_CLIENT' }, { status: 400 })
      return Response.json({ token: `t-${body.client}`, slice: 7, version: body.version })
    }
    return new Response('{}', { status: 202 })
  }) as typeof globalThis.fetch
  return { fetch, paths }
}

describe('the device id for uploads (P21)', () => {
  let storage: Storage
  beforeEach(async () => {
    globalThis.indexedDB = new IDBFactory()
    storage = await openStorage({ now: () => T0 })
    for (const key of ['a', 'b']) {
      await storage.outbox.enqueue({
        idempotencyKey: key,
        baseVersion: 'v3',
        body: Uint8Array.of(1),
      })
    }
  })

  const deps = (fetch: typeof globalThis.fetch): UploaderDeps => {
    const ids = {
      fetch,
      manifestUrl: new URL('http://127.0.0.1:9/artifacts/manifest.json'),
      siteKey: 'demo-shop',
      store: storage.meta,
    }
    return { ...ids, clientId: (renew) => obtainClientId(ids, renew), outbox: storage.outbox }
  }

  it('[P21] registers once, with the proof of work, before its first token, and keeps the id', async () => {
    expect(await storage.meta.loadClientId()).toBeNull()
    const server = fakeFederation()
    expect(await drainOutbox(deps(server.fetch))).toEqual({ sent: 2, dropped: 0, kept: 0 })
    expect(server.paths).toEqual([
      '/v1/client/challenge',
      '/v1/client',
      '/v1/token',
      '/v1/updates',
      '/v1/token',
      '/v1/updates',
    ])
    const id = await storage.meta.loadClientId()
    expect(id).toBe('issued-challenge-1')
    // Reopened, the device still has it and does no work again.
    storage = await openStorage({ now: () => T0 })
    expect(await storage.meta.loadClientId()).toBe(id)
  })

  it('[P21] replaces a stored id the server refuses (E_CLIENT), once, and keeps the new one', async () => {
    // What a device stored before P21: 128 random bits in hex.
    await storage.meta.saveClientId('0123456789abcdef0123456789abcdef')
    const server = fakeFederation()
    expect(await drainOutbox(deps(server.fetch))).toEqual({ sent: 2, dropped: 0, kept: 0 })
    expect(server.paths).toEqual([
      '/v1/token', // refused: E_CLIENT
      '/v1/client/challenge',
      '/v1/client',
      '/v1/token',
      '/v1/updates',
      '/v1/token',
      '/v1/updates',
    ])
    expect(await storage.meta.loadClientId()).toBe('issued-challenge-2')
  })

  it('keeps its uploads and its solved challenge while new ids are rationed (429), drops the uploads when refused for good', async () => {
    const busy = fakeFederation(429)
    expect(await drainOutbox(deps(busy.fetch))).toEqual({ sent: 0, dropped: 0, kept: 2 })
    expect(await storage.meta.loadClientId()).toBeNull()
    // The solved challenge is sent again later, without doing the work again.
    const kept = {}
    const ids = {
      fetch: busy.fetch,
      manifestUrl: new URL('http://127.0.0.1:9/artifacts/manifest.json'),
      siteKey: 'demo-shop',
      store: storage.meta,
      kept,
      now: () => T0,
    }
    busy.paths.length = 0
    await obtainClientId(ids)
    await obtainClientId(ids)
    expect(busy.paths).toEqual(['/v1/client/challenge', '/v1/client', '/v1/client'])
    expect(kept).toMatchObject({ solution: { exp: T0 + 60_000 } })
    await obtainClientId({ ...ids, now: () => T0 + 60_000 }) // the challenge has expired
    expect(busy.paths.slice(3)).toEqual(['/v1/client/challenge', '/v1/client'])
    // A page on an origin the site does not list (E_ORIGIN) will never get an id.
    const foreign = fakeFederation(403)
    expect(await drainOutbox(deps(foreign.fetch))).toEqual({ sent: 0, dropped: 2, kept: 0 })
    expect(foreign.paths.filter((p) => p === '/v1/updates')).toEqual([])
  })

  it('stops the work when asked (consent withdrawn)', async () => {
    const stop = new AbortController()
    stop.abort()
    const ids = {
      fetch: fakeFederation().fetch,
      manifestUrl: new URL('http://127.0.0.1:9/artifacts/manifest.json'),
      siteKey: 'demo-shop',
      store: storage.meta,
      work: { signal: stop.signal },
    }
    await expect(obtainClientId(ids)).rejects.toThrow()
    expect(await storage.meta.loadClientId()).toBeNull()
  })

  it('remembers the version the device last sent an update for', async () => {
    globalThis.indexedDB = new IDBFactory()
    const storage = await openStorage({ now: () => T0 })
    expect(await storage.meta.loadLastUpdateVersion()).toBeNull()
    await storage.meta.saveLastUpdateVersion('v3')
    expect(await storage.meta.loadLastUpdateVersion()).toBe('v3')
  })
})
