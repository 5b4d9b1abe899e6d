// A shop of its own (issue 14): the public site keys its tags send, each with the origins its
// pages are on, and the configuration file an operator keeps them in. One site is one model
// (the federation aggregates one shop's devices); its keys are the public names of that site a
// tag's `data-site` may carry: a live shop and a staging copy, or two storefront domains, each
// with a key of its own and only its own origins. Read by server/config.ts, which resolves them
// with everything else.
import { readFileSync } from 'node:fs'
import type { SiteKey } from './federated/clients'

/** A site key as configured: `origins` absent or empty lets pages on any origin use it. */
export interface SiteKeyOptions {
  key: string
  origins?: readonly string[]
}

/** documents.ts refuses longer keys in device requests. */
const MAX_SITE_KEY_LENGTH = 200

/**
 * What a configuration file may hold: the federation's options that are plain data and no
 * secret (POCKETREC_ADMIN_TOKEN and POCKETREC_SECRET stay in the environment, out of files
 * that get copied and committed).
 */
export const CONFIG_FILE_KEYS = {
  site: true,
  sites: true,
  allowedOrigins: true,
  promotion: true,
  settings: true,
  rateLimits: true,
  clientIds: true,
  evaluation: true,
  publishEveryMs: true,
  postgresUrl: true,
  sqliteFile: true,
  schema: true,
  adminTokenFile: true,
} as const

/** The environment variables a server reads (process.env). */
export type Environment = Readonly<Record<string, string | undefined>>

/**
 * The JSON object in `file` (`--config`, POCKETREC_CONFIG), its keys checked; {} without a file.
 * Its values are checked with the program's options, under the same names.
 */
export function readConfigFile(file: string | undefined): Record<string, unknown> {
  if (file === undefined || file === '') return {}
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    throw new Error(`cannot read the configuration file ${file}: ${(error as Error).message}`, {
      cause: error,
    })
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw new Error(
      `expected the configuration file ${file} to be JSON: ${(error as Error).message}`,
      { cause: error },
    )
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`expected the configuration file ${file} to hold a JSON object`)
  }
  const unknown = Object.keys(value).filter((key) => !Object.hasOwn(CONFIG_FILE_KEYS, key))
  if (unknown.length > 0) {
    throw new RangeError(
      `unknown option${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} in ${file}: expected some of ${Object.keys(CONFIG_FILE_KEYS).join(', ')}`,
    )
  }
  return value as Record<string, unknown>
}

/**
 * POCKETREC_SITE_KEYS=key1,key2: keys that share POCKETREC_ALLOWED_ORIGINS (or `origins`, the
 * program's); a key with origins of its own needs the file. Unset: undefined.
 */
export function sitesFromEnv(
  env: Environment,
  origins: readonly string[] | undefined,
): SiteKeyOptions[] | undefined {
  const value = env.POCKETREC_SITE_KEYS
  if (value === undefined || value.trim() === '') return undefined
  return value.split(',').map((key) => ({ key: key.trim(), origins: origins ?? [] }))
}

/**
 * The site's keys: `sites`, or the single key `siteKey` (default: the site's name) with
 * `allowedOrigins`, which is how a server was configured before there were several.
 */
export function resolveSites(
  where: string,
  options: {
    site: string
    sites?: readonly SiteKeyOptions[]
    siteKey?: string
    allowedOrigins?: readonly string[]
  },
): readonly SiteKey[] {
  const { sites, siteKey, allowedOrigins } = options
  if (sites === undefined) {
    return [
      {
        key: checkSiteKey(`${where}siteKey`, siteKey ?? options.site),
        origins: checkOrigins(`${where}allowedOrigins`, allowedOrigins ?? []),
      },
    ]
  }
  if (siteKey !== undefined || allowedOrigins !== undefined) {
    throw new RangeError(
      `expected ${where}sites or ${where}siteKey and ${where}allowedOrigins, not both: each site key’s origins are given in its entry`,
    )
  }
  if (!Array.isArray(sites) || sites.length === 0) {
    throw invalid(`${where}sites`, 'a non-empty list of {key, origins}', show(sites))
  }
  const seen = new Set<string>()
  return sites.map((entry: unknown, i) => {
    const at = `${where}sites[${i}]`
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw invalid(at, 'an object {key, origins}', show(entry))
    }
    const unknown = Object.keys(entry).filter((name) => name !== 'key' && name !== 'origins')
    if (unknown.length > 0) {
      throw new RangeError(`unknown option ${at}.${unknown[0]}: expected key and origins`)
    }
    const { key, origins } = entry as SiteKeyOptions
    const checked = checkSiteKey(`${at}.key`, key)
    if (seen.has(checked)) throw invalid(`${at}.key`, 'a key no other entry has', show(key))
    seen.add(checked)
    return { key: checked, origins: checkOrigins(`${at}.origins`, origins ?? []) }
  })
}

function checkSiteKey(where: string, value: unknown): string {
  if (typeof value === 'string' && value !== '' && value.length <= MAX_SITE_KEY_LENGTH) return value
  throw invalid(
    where,
    `a non-empty string of at most ${MAX_SITE_KEY_LENGTH} characters`,
    show(value),
  )
}

/** An origin as browsers send it (`https://shop.example`): no path, no trailing slash. */
export function checkOrigins(where: string, value: unknown): readonly string[] {
  if (!Array.isArray(value)) throw invalid(where, 'a list of origins', show(value))
  for (const origin of value) {
    if (typeof origin !== 'string' || !URL.canParse(origin) || new URL(origin).origin !== origin)
      throw invalid(where, 'origins such as https://shop.example', show(origin))
  }
  return value
}

/** `got`: the value as JSON, or the description of a secret one. */
export function invalid(where: string, expected: string, got: string): RangeError {
  return new RangeError(`expected ${where} to be ${expected}, got ${got}`)
}

export const show = (value: unknown) => JSON.stringify(value) ?? String(value)
