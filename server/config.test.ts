import path from 'node:path'
import { describe, expect, it } from 'vitest'
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
      siteKey: 'shop',
      settings: { ...defaultSettings(), bufferSize: 10 },
      rateLimits: { ...DEFAULT_RATE_LIMITS, perClientPerMinute: 5 },
      clientIds: { ...DEFAULT_CLIENT_IDS, bits: 4 },
      allowedOrigins: [],
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
      allowedOrigins: ['https://shop.example', 'https://www.shop.example'],
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
