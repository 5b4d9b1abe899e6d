import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  resolveConfig,
  resolveFederationConfig,
  type FederationOptions,
  type ServerOptions,
} from './config'
import { DEFAULT_CLIENT_IDS, DEFAULT_RATE_LIMITS, defaultSettings } from './federated/defaults'

const server = { port: 0, distDir: '.', federation: { artifactsDir: 'artifacts' } }

describe('the server configuration, resolved once', () => {
  it('[P24] promotes by evaluation unless told otherwise, through either entry', () => {
    expect(resolveConfig(server, {}).federation!.promotion).toBe('evaluated')
    expect(resolveFederationConfig({ artifactsDir: 'a' }).promotion).toBe('evaluated')
    expect(resolveFederationConfig({ artifactsDir: 'a', promotion: 'auto' }).promotion).toBe('auto')
  })

  it('fills every default: a partial setting keeps the others', () => {
    const config = resolveFederationConfig({
      artifactsDir: 'a',
      site: 'shop',
      settings: { bufferSize: 10 },
      rateLimits: { perClientPerMinute: 5 },
      clientIds: { bits: 4 },
      helper: { url: 'https://helper.example', token: 'pairing' },
    })
    expect(config).toMatchObject({
      site: 'shop',
      sites: [{ key: 'shop', origins: [] }],
      settings: { ...defaultSettings(), bufferSize: 10 },
      rateLimits: { ...DEFAULT_RATE_LIMITS, perClientPerMinute: 5 },
      clientIds: { ...DEFAULT_CLIENT_IDS, bits: 4 },
      helper: { url: 'https://helper.example', link: 'https://helper.example' },
    })
  })

  it('takes the environment where the options are silent, and the options over it', () => {
    const env = {
      POCKETREC_PROMOTION: 'gated',
      POCKETREC_ALLOWED_ORIGINS: 'https://shop.example, https://www.shop.example',
      POCKETREC_ADMIN_TOKEN: 'an-admin-token-from-the-environment',
      POCKETREC_SECRET: 'ab'.repeat(32),
    }
    const fromEnv = resolveConfig(server, env).federation!
    expect(fromEnv).toMatchObject({
      promotion: 'gated',
      sites: [{ key: 'demo-shop', origins: ['https://shop.example', 'https://www.shop.example'] }],
      adminToken: 'an-admin-token-from-the-environment',
      adminTokenFrom: 'environment',
    })
    expect(fromEnv.secret).toHaveLength(32)
    const given = { ...server.federation, promotion: 'auto' as const, adminToken: 'x'.repeat(16) }
    expect(resolveConfig({ ...server, federation: given }, env).federation).toMatchObject({
      promotion: 'auto',
      adminTokenFrom: 'options',
    })
  })

  it('places the stand-in helper’s store beside the leader’s', () => {
    const sqlite = resolveConfig(
      { ...server, federation: { ...server.federation, sqliteFile: 'x.db', helper: 'stand-in' } },
      {},
    ).federation!
    expect(sqlite.store).toEqual({ kind: 'sqlite', file: 'x.db' })
    expect(sqlite.helper).toEqual({ standIn: { kind: 'sqlite', file: 'x-helper.db' } })
    const postgres = resolveConfig(
      {
        ...server,
        federation: { ...server.federation, postgresUrl: 'postgres://db', helper: 'stand-in' },
      },
      {},
    ).federation!
    expect(postgres.store).toMatchObject({ schema: 'pocketrec' })
    expect(postgres.helper).toEqual({
      standIn: { kind: 'postgres', connectionString: 'postgres://db', schema: 'pocketrec_helper' },
    })
    expect(resolveConfig(server, {}).federation!.store).toEqual({
      kind: 'sqlite',
      file: path.resolve('.data/pocketrec.db'),
    })
  })

  it('refuses an invalid value, naming it, what was expected and what came', () => {
    const federation = (extra: object) => () =>
      resolveConfig({ ...server, federation: { ...server.federation, ...extra } }, {})
    expect(() => resolveConfig({ ...server, port: 70_000 }, {})).toThrow(
      'expected port to be an integer ≥ 0 and ≤ 65535, got 70000',
    )
    expect(federation({ promotion: 'automatic' })).toThrow(
      'expected federation.promotion to be auto, gated or evaluated, got "automatic"',
    )
    // JSON (server/cli/serve.ts) turns Infinity into null.
    expect(federation({ rateLimits: { perSitePerMinute: null } })).toThrow(
      'expected federation.rateLimits.perSitePerMinute to be a number > 0, got null',
    )
    expect(federation({ clientIds: { bits: 40 } })).toThrow(/clientIds\.bits .* ≤ 32, got 40/)
    expect(federation({ allowedOrigins: ['https://shop.example/'] })).toThrow(
      'expected federation.allowedOrigins to be origins such as https://shop.example, got "https://shop.example/"',
    )
    expect(federation({ sites: [{ key: 'a', origins: ['https://shop.example/'] }] })).toThrow(
      'expected federation.sites[0].origins to be origins such as https://shop.example, got "https://shop.example/"',
    )
    expect(() => resolveConfig(server, { POCKETREC_PROMOTION: 'sometimes' })).toThrow(
      'expected POCKETREC_PROMOTION to be auto, gated or evaluated, got sometimes',
    )
  })

  it('refuses an option it does not know rather than leaving its default', () => {
    const federation = { artifactsDir: 'public/artifacts', promtion: 'auto' }
    expect(() =>
      resolveConfig({ port: 0, distDir: 'dist', federation } as ServerOptions, {}),
    ).toThrow(/unknown option federation\.promtion/)
    expect(() =>
      resolveConfig({ port: 0, distDir: 'dist', hots: 'x' } as ServerOptions, {}),
    ).toThrow(/unknown option hots/)
    expect(() =>
      resolveFederationConfig({ artifactsDir: 'a', siteKye: 'k' } as FederationOptions),
    ).toThrow(/unknown option siteKye/)
  })

  it('describes a bad secret without showing it', () => {
    const short = () => resolveFederationConfig({ artifactsDir: 'a', adminToken: 'hunter2' })
    expect(short).toThrow('expected adminToken to be 16 characters or more, got 7 characters')
    expect(short).not.toThrow(/hunter2/)
    expect(() => resolveFederationConfig({ artifactsDir: 'a', secret: new Uint8Array(8) })).toThrow(
      'expected secret to be at least 32 bytes, got 8 bytes',
    )
  })
})

describe('a shop of its own: site keys and the configuration file (issue 14)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-config-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  const file = (name: string, content: unknown) => {
    const at = path.join(dir, name)
    writeFileSync(at, typeof content === 'string' ? content : JSON.stringify(content))
    return at
  }
  const shop = {
    site: 'my-shop',
    sites: [
      { key: 'pk_live', origins: ['https://shop.example', 'https://www.shop.example'] },
      { key: 'pk_staging', origins: ['https://staging.shop.example'] },
    ],
    promotion: 'gated',
  }

  it('takes the site, its keys and their origins from the file, by option or POCKETREC_CONFIG', () => {
    const configFile = file('shop.json', shop)
    const byOption = resolveConfig({ ...server, configFile }, {}).federation!
    expect(byOption).toMatchObject({ site: 'my-shop', sites: shop.sites, promotion: 'gated' })
    expect(resolveConfig(server, { POCKETREC_CONFIG: configFile }).federation).toMatchObject({
      site: 'my-shop',
      sites: shop.sites,
      promotion: 'gated',
    })
    // The program's options over the file's, the file's over the environment.
    const given = { ...server, configFile, federation: { ...server.federation, promotion: 'auto' } }
    expect(
      resolveConfig(given as ServerOptions, { POCKETREC_PROMOTION: 'evaluated' }).federation,
    ).toMatchObject({ promotion: 'auto', site: 'my-shop' })
    expect(resolveConfig({ ...server, configFile }, { POCKETREC_SITE: 'x' }).federation!.site).toBe(
      'my-shop',
    )
  })

  it('takes several keys from POCKETREC_SITE_KEYS, sharing POCKETREC_ALLOWED_ORIGINS', () => {
    const env = {
      POCKETREC_SITE: 'my-shop',
      POCKETREC_SITE_KEYS: 'pk_live, pk_staging',
      POCKETREC_ALLOWED_ORIGINS: 'https://shop.example',
    }
    expect(resolveConfig(server, env).federation).toMatchObject({
      site: 'my-shop',
      sites: [
        { key: 'pk_live', origins: ['https://shop.example'] },
        { key: 'pk_staging', origins: ['https://shop.example'] },
      ],
    })
    // Unset, the one key is the site's name, as before there were several.
    expect(resolveConfig(server, {}).federation!.sites).toEqual([{ key: 'demo-shop', origins: [] }])
  })

  it('refuses a bad file, naming the file and what was wrong', () => {
    const at = (name: string, content: unknown) => () =>
      resolveConfig({ ...server, configFile: file(name, content) }, {})
    expect(at('typo.json', { ...shop, promtion: 'auto' })).toThrow(
      /unknown option promtion in .*typo\.json: expected some of site, sites,/,
    )
    expect(at('secret.json', { adminToken: 'x'.repeat(20) })).toThrow(/unknown option adminToken/)
    expect(at('broken.json', '{"sites": [')).toThrow(
      /expected the configuration file .*broken\.json to be JSON/,
    )
    expect(at('list.json', [])).toThrow(/to hold a JSON object/)
    expect(() =>
      resolveConfig({ ...server, configFile: path.join(dir, 'absent.json') }, {}),
    ).toThrow(/cannot read the configuration file .*absent\.json/)
  })

  it('refuses bad site keys, naming the entry', () => {
    const sites = (value: unknown) => () =>
      resolveFederationConfig({ artifactsDir: 'a', sites: value } as FederationOptions)
    expect(sites([])).toThrow('expected sites to be a non-empty list of {key, origins}, got []')
    expect(sites([{ key: 'a' }, { key: '' }])).toThrow(
      'expected sites[1].key to be a non-empty string of at most 200 characters, got ""',
    )
    expect(sites([{ key: 'a' }, { key: 'a' }])).toThrow(
      'expected sites[1].key to be a key no other entry has, got "a"',
    )
    expect(sites([{ key: 'a', origin: ['https://shop.example'] }])).toThrow(
      'unknown option sites[0].origin: expected key and origins',
    )
    expect(() =>
      resolveFederationConfig({ artifactsDir: 'a', sites: [{ key: 'a' }], siteKey: 'b' }),
    ).toThrow(/expected sites or siteKey and allowedOrigins, not both/)
    // Keys in the file and origins in the environment: which origins would hold?
    const configFile = file('keys.json', { sites: [{ key: 'a' }] })
    expect(() =>
      resolveConfig({ ...server, configFile }, { POCKETREC_ALLOWED_ORIGINS: 'https://a.example' }),
    ).toThrow(/site keys are given as federation.sites .* and in POCKETREC_ALLOWED_ORIGINS/)
  })
})
