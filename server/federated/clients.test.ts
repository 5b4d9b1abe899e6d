import { describe, expect, it } from 'vitest'
import { checkWork, solveWork } from '../../shared/proof-of-work'
import { clientRoutes, issueClientId, verifyClientId, type ClientIdDeps } from './clients'
import { DEFAULT_CLIENT_IDS, DEFAULT_RATE_LIMITS } from './defaults'

const secret = new TextEncoder().encode('client id test secret')
const T0 = 1_700_000_000_000

function setup(options: Partial<ClientIdDeps> = {}) {
  let now = T0
  const deps: ClientIdDeps = {
    site: 'shop',
    sites: [{ key: 'pk_shop', origins: [] }],
    secret,
    now: () => now,
    clientIds: { ...DEFAULT_CLIENT_IDS, bits: 6 },
    rateLimits: DEFAULT_RATE_LIMITS,
    ...options,
  }
  const app = clientRoutes(deps)
  const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
    const response = await app.request(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    })
    return {
      status: response.status,
      ...((await response.json()) as { client?: string; exp?: number; error?: string }),
    }
  }
  const challenge = async (headers?: Record<string, string>, siteKey = 'pk_shop') =>
    (await post('/challenge', { siteKey }, headers)) as {
      status: number
      challenge: string
      bits: number
      exp: number
    }
  const solve = async (headers?: Record<string, string>, siteKey?: string) => {
    const c = await challenge(headers, siteKey)
    return { challenge: c.challenge, nonce: (await solveWork(c.challenge, c.bits)).nonce }
  }
  const register = (
    solved: { challenge: string; nonce: unknown },
    headers?: Record<string, string>,
    siteKey = 'pk_shop',
  ) => post('/', { siteKey, ...solved }, headers)
  return { deps, post, challenge, solve, register, advance: (ms: number) => (now += ms) }
}

describe('client ids against a proof of work (PROTOCOL.md P21)', () => {
  it('[P21] issues a self-verifying id for a solved challenge; a replay gets the same id', async () => {
    const { deps, challenge, solve, register } = setup()
    const c = await challenge()
    expect(c).toMatchObject({ status: 200, bits: 6, exp: T0 + 10 * 60_000 })
    const solved = await solve()
    const issued = await register(solved)
    expect(issued).toMatchObject({ status: 200, exp: T0 + 10 * 60_000 + 7 * 24 * 3_600_000 })
    const id = issued.client as string
    // The shape stored tables already take (8–64 of [A-Za-z0-9_-]).
    expect(id).toMatch(/^[A-Za-z0-9_-]{8,64}$/)
    expect(verifyClientId(id, deps, T0)).toEqual({ ok: true, id, exp: issued.exp })
    expect((await register(solved)).client).toBe(id)
    // Another solution, another id.
    expect((await register(await solve())).client).not.toBe(id)
  })

  it('[P21] refuses a wrong nonce, an expired, altered or other site’s challenge', async () => {
    const { deps, challenge, solve, register, advance } = setup()
    const solved = await solve()
    let miss = 0
    while (checkWork(solved.challenge, miss, 6)) miss++
    expect(await register({ ...solved, nonce: miss })).toMatchObject({
      status: 400,
      error: 'E_WORK',
    })
    // A nonce that is not an integer fails the request's schema before any work is checked.
    expect(await register({ ...solved, nonce: String(solved.nonce) })).toMatchObject({
      error: 'E_REQUEST',
    })

    // The bits are part of the signed challenge: asking for less work breaks the signature.
    const [random, , exp, mac] = solved.challenge.split('.')
    const easier = `${random}.0.${exp}.${mac}`
    expect(await register({ challenge: easier, nonce: 0 })).toMatchObject({ error: 'E_CHALLENGE' })
    const later = `${random}.6.${Number(exp) + 3_600_000}.${mac}`
    const laterSolved = { challenge: later, nonce: (await solveWork(later, 6)).nonce }
    expect(await register(laterSolved)).toMatchObject({ status: 400, error: 'E_CHALLENGE' })
    expect(await register({ challenge: 'not-a-challenge', nonce: 0 })).toMatchObject({
      error: 'E_CHALLENGE',
    })

    // Another site under the same secret: its challenges and ids mean nothing here.
    const other = setup({ site: 'other-shop' })
    const foreign = await other.solve()
    expect(await register(foreign)).toMatchObject({ status: 400, error: 'E_CHALLENGE' })
    const foreignId = (await other.register(foreign)).client
    expect(verifyClientId(foreignId, deps, T0)).toMatchObject({ ok: false })

    const fresh = await challenge()
    advance(10 * 60_000)
    const stale = { challenge: fresh.challenge, nonce: (await solveWork(fresh.challenge, 6)).nonce }
    expect(await register(stale)).toMatchObject({
      status: 400,
      error: 'E_CHALLENGE',
      message: expect.stringMatching(/expired/),
    })
  })

  it('[P21] checks the site key, and the Origin header when the site lists its origins', async () => {
    const { post, solve, register } = setup({
      sites: [{ key: 'pk_shop', origins: ['https://shop.example'] }],
    })
    expect(await post('/challenge', { siteKey: 'pk_other' })).toMatchObject({
      status: 401,
      error: 'E_SITE_KEY',
    })
    expect(await post('/challenge', {})).toMatchObject({ status: 400, error: 'E_REQUEST' })
    expect(await post('/', { siteKey: 'pk_shop', challenge: 'x'.repeat(2000) })).toMatchObject({
      status: 413,
      error: 'E_TOO_LARGE',
    })
    const shop = { origin: 'https://shop.example' }
    const solved = await solve(shop)
    expect(await register(solved, { origin: 'https://evil.example' })).toMatchObject({
      status: 403,
      error: 'E_ORIGIN',
    })
    expect(await register(solved)).toMatchObject({ status: 403, error: 'E_ORIGIN' })
    expect(await register(solved, shop)).toMatchObject({ status: 200 })
    // Without a list, any origin (the demo).
    const open = setup()
    expect(
      await open.register(await open.solve(), { origin: 'https://any.example' }),
    ).toMatchObject({
      status: 200,
    })
  })

  it('takes each of the site’s keys from its own origins only, and ids work across them', async () => {
    const { deps, challenge, solve, register } = setup({
      sites: [
        { key: 'pk_shop', origins: ['https://shop.example'] },
        { key: 'pk_staging', origins: ['https://staging.shop.example'] },
      ],
    })
    const staging = { origin: 'https://staging.shop.example' }
    const issued = await register(await solve(staging, 'pk_staging'), staging, 'pk_staging')
    expect(issued).toMatchObject({ status: 200 })
    // One site, one model: an id registered through either key is the site's.
    expect(verifyClientId(issued.client, deps, T0).ok).toBe(true)
    // A key used from the other key's pages is refused, naming the key.
    const shop = { origin: 'https://shop.example' }
    expect(await challenge(shop, 'pk_staging')).toMatchObject({ status: 403, error: 'E_ORIGIN' })
    expect(await register(await solve(shop), shop, 'pk_staging')).toMatchObject({
      status: 403,
      error: 'E_ORIGIN',
      message: expect.stringMatching(/site key pk_staging, got https:\/\/shop\.example/),
    })
    expect(await register(await solve(staging, 'pk_staging'), staging, 'pk_shop')).toMatchObject({
      status: 403,
      error: 'E_ORIGIN',
    })
    expect(await register(await solve(staging, 'pk_staging'), staging, 'pk_unknown')).toMatchObject(
      {
        status: 401,
        error: 'E_SITE_KEY',
      },
    )
  })

  it('[P21] limits new ids per site and minute; replays of an issued one are not counted', async () => {
    const { solve, register, advance } = setup({
      rateLimits: { ...DEFAULT_RATE_LIMITS, perSitePerMinute: 2 },
    })
    const first = await solve()
    const id = (await register(first)).client
    for (let i = 0; i < 5; i++) expect((await register(first)).client).toBe(id)
    expect((await register(await solve())).status).toBe(200)
    const third = await solve()
    expect(await register(third)).toMatchObject({ status: 429, error: 'E_RATE_LIMITED' })
    expect((await register(third)).status).toBe(429) // refused solutions are not remembered
    expect((await register(first)).client).toBe(id) // issued ones still answer
    advance(60_000)
    expect((await register(third)).status).toBe(200)
  })

  it('verifies ids without state: refuses made-up, altered, re-spelled and expired ones', () => {
    const deps = { site: 'shop', secret }
    const id = issueClientId(deps, 'device-1')
    expect(issueClientId(deps, 'device-1')).toBe(id)
    expect(issueClientId(deps, 'device-2')).not.toBe(id)
    expect(verifyClientId(id, deps, T0)).toMatchObject({ ok: true, id })
    const flipped = (id[0] === 'A' ? 'B' : 'A') + id.slice(1)
    // The last character carries 2 bits and 4 spare ones: another spelling of the same bytes.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const respelled = id.slice(0, -1) + alphabet[alphabet.indexOf(id.at(-1)!) + 1]
    expect(Buffer.from(respelled, 'base64url')).toEqual(Buffer.from(id, 'base64url'))
    for (const bad of [
      '0123456789abcdef0123456789abcdef',
      flipped,
      respelled,
      id + 'A',
      42,
      null,
    ]) {
      expect(verifyClientId(bad, deps, T0), String(bad)).toMatchObject({ ok: false })
    }
    const shortLived = issueClientId(deps, 'device-1', T0 + 60_000)
    expect(verifyClientId(shortLived, deps, T0 + 59_000)).toMatchObject({ ok: true })
    expect(verifyClientId(shortLived, deps, T0 + 60_000)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/expired/),
    })
  })
})
