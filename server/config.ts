// The server's configuration, resolved in one place (issue 13): what the operator gives
// (ServerOptions: scripts/start.ts, the JSON of server/cli/serve.ts, a test's options), then the
// POCKETREC_* environment, then the defaults, every value checked here. What lies below
// (createFederation, the routes, intake, the publisher, the job thread) takes the resolved config
// or a slice of it and fills in nothing of its own.
import path from 'node:path'
import { MAX_WORK_BITS } from '../shared/proof-of-work'
import {
  DEFAULT_CLIENT_IDS,
  DEFAULT_EVALUATION,
  DEFAULT_RATE_LIMITS,
  DEFAULT_SPARSE,
  defaultSettings,
  type ClientIdSettings,
  type EvaluationSettings,
  type RateLimits,
  type UpdateTraining,
} from './federated/defaults'
import type { FedBuffSettings } from './federated/fedbuff'
import type { Promotion } from './federated/publisher'
import { MIN_ADMIN_TOKEN_LENGTH, MIN_SECRET_BYTES } from './federated/secrets'
import type { HelperStoreConfig } from './helper/helper-store'
import type { StoreConfig } from './storage/store'
import type { SiteKey } from './federated/clients'
import {
  invalid,
  readConfigFile,
  resolveSites,
  show,
  sitesFromEnv,
  type Environment,
  type SiteKeyOptions,
} from './config-sites'

export type { Environment, SiteKeyOptions }

/** A paired helper of the two-server channel (P29c). */
export interface HelperPairing {
  /** What devices are told: the helper's origin, or a path on this server's own. */
  url: string
  /** How this server reaches it (absolute). */
  link: string
  /** The pairing secret the helper was started with. */
  token: string
}

/** What a federation may be given; everything but the export has a default. */
export interface FederationOptions {
  /** The trainer's export (manifest.json and artifacts) that seeds an empty store. */
  artifactsDir: string
  /** The site this server aggregates for; default `demo-shop`, the demo storefront's. */
  site?: string
  /**
   * The public keys tags may send (their `data-site`), each with the origins its pages are on
   * (config-sites.ts). Absent: the one key `siteKey` with `allowedOrigins`.
   */
  sites?: readonly SiteKeyOptions[]
  /** The public key tags send (their `data-site`); default the site. */
  siteKey?: string
  /** The operator's admin token; absent: the one created on the store's first start (secrets.ts). */
  adminToken?: string
  /** Token signing secret (≥ 32 bytes); absent: the one created on the store's first start. */
  secret?: Uint8Array
  settings?: Partial<FedBuffSettings>
  training?: UpdateTraining
  rateLimits?: Partial<RateLimits>
  /** The work a device does for its client id, and how long ids live (P21). */
  clientIds?: Partial<ClientIdSettings>
  /** Origins whose pages may register devices with `siteKey` (P21); absent or empty: any. */
  allowedOrigins?: readonly string[]
  /** How a published version becomes current (publisher.ts); default `evaluated` (P24, P26). */
  promotion?: Promotion
  /** Cases scored per version and the promotion tolerance (P26). */
  evaluation?: Partial<EvaluationSettings>
  /**
   * The paired helper of the two-server channel (P29c): devices then send sparse updates as
   * secret shares to this server and to it; `link` defaults to `url`. Absent: the server takes
   * no updates (no federation block).
   */
  helper?: { url: string; link?: string; token: string }
  /** Lines for the operator (a damaged artifact refused); default stderr. */
  log?: (line: string) => void
}

/** A federation's resolved configuration: createFederation's input. */
export interface FederationConfig {
  artifactsDir: string
  site: string
  /** At least one; a key's empty `origins`: any origin. */
  sites: readonly SiteKey[]
  /** Absent: the one created on the store's first start (secrets.ts). */
  adminToken: string | undefined
  /** Absent: the one created on the store's first start (secrets.ts). */
  secret: Uint8Array | undefined
  /** The channel (`secure`) is added by createFederation when paired: it needs the model. */
  settings: FedBuffSettings
  training: UpdateTraining
  rateLimits: RateLimits
  clientIds: ClientIdSettings
  promotion: Promotion
  evaluation: EvaluationSettings
  helper: HelperPairing | undefined
  log: (line: string) => void
}

export interface ServerOptions {
  port: number
  distDir: string
  /** Default 127.0.0.1. */
  host?: string
  /**
   * A JSON file of federation options (CONFIG_FILE_KEYS in config-sites.ts): what these options
   * leave out. Default: POCKETREC_CONFIG; neither: none.
   */
  configFile?: string
  /** Aggregate updates: the store, and the export that seeds it. Absent: static files only. */
  federation?: Omit<FederationOptions, 'siteKey' | 'training' | 'helper' | 'log'> & {
    /** PostgreSQL for several replicas; else SQLite at `sqliteFile` (default .data/pocketrec.db). */
    postgresUrl?: string
    sqliteFile?: string
    /** PostgreSQL schema (replicas of one deployment share it); default `pocketrec`. */
    schema?: string
    /**
     * Where a created admin token is written, readable by its owner only (default
     * `.data/admin-token`); it is never logged.
     */
    adminTokenFile?: string
    /** How often the publisher checks the buffer; default 2 s. */
    publishEveryMs?: number
    /**
     * The two-server channel (P29c): `'stand-in'` runs a helper in this process with a store of
     * its own, mounted at /helper (the demo: one operator standing in for two); or the paired
     * helper of another operator. Absent: the server takes no updates.
     */
    helper?: 'stand-in' | { url: string; link?: string; token: string }
  }
  /** Default stdout. */
  log?: (line: string) => void
}

export interface ServerConfig {
  port: number
  host: string
  /** Relative to the working directory, as serveStatic wants its root. */
  distDir: string
  log: (line: string) => void
  federation: ServerFederationConfig | undefined
}

export interface ServerFederationConfig extends Omit<FederationConfig, 'helper'> {
  store: StoreConfig
  /** A helper in this process with its own store, a paired one, or none (P29c). */
  helper: { standIn: HelperStoreConfig } | HelperPairing | undefined
  adminTokenFile: string
  /** Where the admin token came from, for the start's log line (never the token itself). */
  adminTokenFrom: 'options' | 'environment' | undefined
  publishEveryMs: number
}

/**
 * A shop's server never serves a version nobody scored: with σ = 1 one noised release took
 * DIGINETICA's Recall@20 from 29.62 to 13.34 (BENCHMARKS.md). Candidates wait for the operator's
 * validation set (P26); `auto` is for simulations and demos that ask for it.
 */
export const DEFAULT_PROMOTION: Promotion = 'evaluated'

const PROMOTIONS: readonly Promotion[] = ['auto', 'gated', 'evaluated']

/**
 * The server's options, then the configuration file's (`configFile`, POCKETREC_CONFIG) where
 * they are silent, then the environment (POCKETREC_ADMIN_TOKEN, POCKETREC_SECRET,
 * POCKETREC_PROMOTION, POCKETREC_SITE, POCKETREC_SITE_KEYS, POCKETREC_ALLOWED_ORIGINS), checked
 * and completed.
 */
export function resolveConfig(options: ServerOptions, env: Environment): ServerConfig {
  checkKeys('', options, SERVER_KEYS)
  if (options.federation) checkKeys('federation.', options.federation, SERVER_FEDERATION_KEYS)
  const log = options.log ?? ((line: string) => console.log(line))
  checkFunction('log', log)
  const config: ServerConfig = {
    port: checkNumber('port', options.port, 0, { integer: true, max: 65_535 }),
    host: checkText('host', options.host ?? '127.0.0.1'),
    distDir: path.relative(process.cwd(), checkText('distDir', options.distDir)) || '.',
    log,
    federation: undefined,
  }
  if (!options.federation) return config
  const configFile = options.configFile ?? env.POCKETREC_CONFIG
  // The file fills what the program's options leave out (a key set to undefined included).
  const f: NonNullable<ServerOptions['federation']> = { ...options.federation }
  for (const [key, value] of Object.entries(readConfigFile(configFile))) {
    if ((f as Record<string, unknown>)[key] === undefined)
      (f as Record<string, unknown>)[key] = value
  }
  const { postgresUrl, sqliteFile, schema, adminTokenFile, publishEveryMs, helper, ...rest } = f
  const adminTokenFromEnv = env.POCKETREC_ADMIN_TOKEN || undefined
  const federation = resolveFederationConfig(
    {
      ...rest,
      adminToken: f.adminToken ?? adminTokenFromEnv,
      secret: f.secret ?? secretFromEnv(env),
      promotion: f.promotion ?? promotionFromEnv(env),
      site: f.site ?? (env.POCKETREC_SITE || undefined),
      ...siteKeys(f, env, configFile),
      helper: helper === 'stand-in' ? undefined : helper,
      log,
    },
    'federation.',
  )
  const stores = storeConfigs({ postgresUrl, sqliteFile, schema })
  config.federation = {
    ...federation,
    store: stores.leader,
    helper: helper === 'stand-in' ? { standIn: stores.helper } : federation.helper,
    adminTokenFile: checkText(
      'federation.adminTokenFile',
      adminTokenFile ?? path.resolve('.data/admin-token'),
    ),
    adminTokenFrom:
      f.adminToken !== undefined ? 'options' : adminTokenFromEnv ? 'environment' : undefined,
    publishEveryMs: checkNumber('federation.publishEveryMs', publishEveryMs ?? 2000, 0, {
      exclusive: true,
    }),
  }
  return config
}

/** A federation's options checked and completed; `where` prefixes the names in errors. */
export function resolveFederationConfig(options: FederationOptions, where = ''): FederationConfig {
  checkKeys(where, options, FEDERATION_KEYS)
  const at = (name: string) => `${where}${name}`
  const site = checkText(at('site'), options.site ?? 'demo-shop')
  const sites = resolveSites(where, { ...options, site })
  const { adminToken, secret, helper, log = (line: string) => console.error(line) } = options
  // Secrets are described, never shown: errors reach logs.
  if (
    adminToken !== undefined &&
    !(typeof adminToken === 'string' && adminToken.length >= MIN_ADMIN_TOKEN_LENGTH)
  ) {
    const got = typeof adminToken === 'string' ? `${adminToken.length} characters` : 'no string'
    throw invalid(at('adminToken'), `${MIN_ADMIN_TOKEN_LENGTH} characters or more`, got)
  }
  if (
    secret !== undefined &&
    !(secret instanceof Uint8Array && secret.byteLength >= MIN_SECRET_BYTES)
  ) {
    const got = secret instanceof Uint8Array ? `${secret.byteLength} bytes` : 'no byte array'
    throw invalid(at('secret'), `at least ${MIN_SECRET_BYTES} bytes`, got)
  }
  checkFunction(at('log'), log)
  return {
    artifactsDir: checkText(at('artifactsDir'), options.artifactsDir),
    site,
    sites,
    adminToken,
    secret,
    settings: checkSettings(at('settings'), { ...defaultSettings(), ...options.settings }),
    training: checkTraining(at('training'), options.training ?? DEFAULT_SPARSE.training),
    rateLimits: checkRateLimits(at('rateLimits'), {
      ...DEFAULT_RATE_LIMITS,
      ...options.rateLimits,
    }),
    clientIds: checkClientIds(at('clientIds'), { ...DEFAULT_CLIENT_IDS, ...options.clientIds }),
    promotion: checkPromotion(at('promotion'), options.promotion ?? DEFAULT_PROMOTION),
    evaluation: checkEvaluation(at('evaluation'), { ...DEFAULT_EVALUATION, ...options.evaluation }),
    helper: helper && {
      url: checkText(at('helper.url'), helper.url),
      link: checkText(at('helper.link'), helper.link ?? helper.url),
      token: checkText(at('helper.token'), helper.token),
    },
    log,
  }
}

// Every option a layer knows, so that a misspelt one (`promtion`) is refused rather than
// silently left at its default. Records, so that the compiler keeps them complete.
const SERVER_KEYS: Record<keyof ServerOptions, true> = {
  port: true,
  distDir: true,
  host: true,
  configFile: true,
  federation: true,
  log: true,
}
const FEDERATION_KEYS: Record<keyof FederationOptions, true> = {
  artifactsDir: true,
  site: true,
  sites: true,
  siteKey: true,
  adminToken: true,
  secret: true,
  settings: true,
  training: true,
  rateLimits: true,
  clientIds: true,
  allowedOrigins: true,
  promotion: true,
  evaluation: true,
  helper: true,
  log: true,
}
const SERVER_FEDERATION_KEYS: Record<keyof NonNullable<ServerOptions['federation']>, true> = {
  artifactsDir: true,
  site: true,
  sites: true,
  adminToken: true,
  secret: true,
  settings: true,
  rateLimits: true,
  clientIds: true,
  allowedOrigins: true,
  promotion: true,
  evaluation: true,
  postgresUrl: true,
  sqliteFile: true,
  schema: true,
  adminTokenFile: true,
  publishEveryMs: true,
  helper: true,
}

function checkKeys(where: string, value: object, known: Record<string, true>): void {
  const unknown = Object.keys(value).filter((key) => !Object.hasOwn(known, key))
  if (unknown.length > 0) {
    throw new RangeError(
      `unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((key) => where + key).join(', ')}: expected some of ${Object.keys(known).join(', ')}`,
    )
  }
}

/** The leader's store and the stand-in helper's (beside it: another schema, or another file). */
function storeConfigs(f: { postgresUrl?: string; sqliteFile?: string; schema?: string }): {
  leader: StoreConfig
  helper: HelperStoreConfig
} {
  if (f.postgresUrl !== undefined) {
    const connectionString = checkText('federation.postgresUrl', f.postgresUrl)
    const schema = checkText('federation.schema', f.schema ?? 'pocketrec')
    return {
      leader: { kind: 'postgres', connectionString, schema },
      helper: { kind: 'postgres', connectionString, schema: `${schema}_helper` },
    }
  }
  const file = checkText(
    'federation.sqliteFile',
    f.sqliteFile ?? path.resolve('.data/pocketrec.db'),
  )
  return {
    leader: { kind: 'sqlite', file },
    helper: { kind: 'sqlite', file: file.replace(/(\.db)?$/, '-helper.db') },
  }
}

function checkSettings(where: string, s: FedBuffSettings): FedBuffSettings {
  checkNumber(`${where}.bufferSize`, s.bufferSize, 1, { integer: true })
  checkNumber(`${where}.minBuffer`, s.minBuffer, 1, { integer: true })
  checkNumber(`${where}.maxWaitMs`, s.maxWaitMs, 0)
  checkNumber(`${where}.maxStaleness`, s.maxStaleness, 0, { integer: true })
  if (s.popularity) {
    checkNumber(`${where}.popularity.minReports`, s.popularity.minReports, 0)
    checkNumber(`${where}.popularity.trendHalfLife`, s.popularity.trendHalfLife, 0, {
      exclusive: true,
    })
  }
  checkNumber(`${where}.outcomes.minBatch`, s.outcomes?.minBatch, 1, { integer: true })
  checkNumber(`${where}.outcomes.sigma`, s.outcomes?.sigma, 0)
  return s
}

function checkTraining(where: string, t: UpdateTraining): UpdateTraining {
  checkNumber(`${where}.learningRate`, t.learningRate, 0, { exclusive: true })
  if (t.denseLearningRate !== undefined)
    checkNumber(`${where}.denseLearningRate`, t.denseLearningRate, 0)
  checkNumber(`${where}.epochs`, t.epochs, 1, { integer: true })
  return t
}

function checkRateLimits(where: string, r: RateLimits): RateLimits {
  checkNumber(`${where}.perClientPerMinute`, r.perClientPerMinute, 0, { exclusive: true })
  checkNumber(`${where}.perSitePerMinute`, r.perSitePerMinute, 0, { exclusive: true })
  checkNumber(`${where}.maxKeys`, r.maxKeys, 1, { integer: true })
  return r
}

function checkClientIds(where: string, c: ClientIdSettings): ClientIdSettings {
  checkNumber(`${where}.bits`, c.bits, 0, { integer: true, max: MAX_WORK_BITS })
  checkNumber(`${where}.challengeTtlMs`, c.challengeTtlMs, 0, { exclusive: true })
  checkNumber(`${where}.idTtlMs`, c.idTtlMs, 0, { exclusive: true })
  return c
}

function checkEvaluation(where: string, e: EvaluationSettings): EvaluationSettings {
  checkNumber(`${where}.maxCases`, e.maxCases, 1, { integer: true })
  checkNumber(`${where}.tolerancePoints`, e.tolerancePoints, 0)
  return e
}

function checkPromotion(where: string, value: unknown): Promotion {
  if (PROMOTIONS.includes(value as Promotion)) return value as Promotion
  throw invalid(where, 'auto, gated or evaluated', show(value))
}

function checkText(where: string, value: unknown): string {
  if (typeof value === 'string' && value !== '') return value
  throw invalid(where, 'a non-empty string', show(value))
}

function checkFunction(where: string, value: unknown): void {
  if (typeof value !== 'function') throw invalid(where, 'a function', show(value))
}

/** `value` if it is a number ≥ `min` (> with `exclusive`; ≤ `max`; whole with `integer`). */
function checkNumber(
  where: string,
  value: unknown,
  min: number,
  rule: { integer?: boolean; exclusive?: boolean; max?: number } = {},
): number {
  const { integer = false, exclusive = false, max = Infinity } = rule
  if (
    typeof value === 'number' &&
    (integer ? Number.isInteger(value) : !Number.isNaN(value)) &&
    (exclusive ? value > min : value >= min) &&
    value <= max
  )
    return value
  const bounds = `${exclusive ? '>' : '≥'} ${min}${max < Infinity ? ` and ≤ ${max}` : ''}`
  throw invalid(where, `${integer ? 'an integer' : 'a number'} ${bounds}`, show(value))
}

/** POCKETREC_SECRET: the token secret as hex (replicas without a shared store setting). */
function secretFromEnv(env: Environment): Uint8Array | undefined {
  const value = env.POCKETREC_SECRET
  if (value === undefined || value === '') return undefined
  if (!/^([0-9a-f]{2}){32,}$/i.test(value)) {
    throw new Error('expected POCKETREC_SECRET to be at least 32 bytes as hex')
  }
  return Buffer.from(value, 'hex')
}

/** POCKETREC_PROMOTION=auto|gated|evaluated (P24, P26); unset: DEFAULT_PROMOTION. */
function promotionFromEnv(env: Environment): Promotion | undefined {
  const value = env.POCKETREC_PROMOTION
  if (value === undefined || value === '') return undefined
  if (value === 'auto' || value === 'gated' || value === 'evaluated') return value
  throw new Error(`expected POCKETREC_PROMOTION to be auto, gated or evaluated, got ${value}`)
}

/**
 * The site keys from one place only: the options or the file (`sites`), or POCKETREC_SITE_KEYS
 * with POCKETREC_ALLOWED_ORIGINS (or the single key with `allowedOrigins`). Keys in the file and
 * origins in the environment would leave the operator guessing which origins hold: refused.
 */
function siteKeys(
  f: { sites?: readonly SiteKeyOptions[]; allowedOrigins?: readonly string[] },
  env: Environment,
  configFile: string | undefined,
): Pick<FederationOptions, 'sites' | 'allowedOrigins'> {
  const origins = f.allowedOrigins ?? originsFromEnv(env)
  if (f.sites === undefined) {
    const sites = sitesFromEnv(env, origins)
    return sites ? { sites } : { allowedOrigins: origins }
  }
  const fromEnv = ['POCKETREC_SITE_KEYS', 'POCKETREC_ALLOWED_ORIGINS'].filter((name) =>
    env[name]?.trim(),
  )
  if (fromEnv.length > 0) {
    throw new RangeError(
      `site keys are given as federation.sites${configFile ? ` (${configFile} or the options)` : ''} and in ${fromEnv.join(' and ')}: give each key’s origins in its entry and unset ${fromEnv.join(' and ')}`,
    )
  }
  return { sites: f.sites, allowedOrigins: f.allowedOrigins }
}

/** POCKETREC_ALLOWED_ORIGINS=https://shop.example,https://www.shop.example (P21); unset: any. */
function originsFromEnv(env: Environment): string[] | undefined {
  const value = env.POCKETREC_ALLOWED_ORIGINS
  if (value === undefined || value.trim() === '') return undefined
  return value.split(',').map((origin) => origin.trim())
}
