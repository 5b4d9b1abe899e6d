// Request bodies (issue 11, P22b): every route that takes one limits its size before reading it
// (`limitBody`), and every JSON document is checked against a JSON Schema before anything reads
// it: the shop's catalogue, rules and validation sessions (shared/document-schemas.ts) and the
// small requests below. Unknown keys are refused at every level, so nothing the schema does not
// name is stored or shipped to devices, and no document is deeper than its schema. Ajv compiles
// each schema once, at import.
import { Ajv, type ValidateFunction } from 'ajv'
import { bodyLimit } from 'hono/body-limit'
import {
  CATALOGUE_SCHEMA,
  RULES_SCHEMA,
  EXPERIMENTS_SCHEMA,
  VALIDATION_SET_SCHEMA,
} from '../../shared/document-schemas'
import { answerError, Refusal } from '../http-errors'

/** Refuses a body over `maxSize` bytes (by its length header, or while it streams in): 413. */
export function limitBody(maxSize: number, onRefused: () => void = () => {}) {
  return bodyLimit({
    maxSize,
    onError: (c) => {
      onRefused()
      // Answered here, not thrown: the limit may trip while the body streams in.
      return answerError(new Refusal('E_TOO_LARGE', `expected at most ${maxSize} bytes`), c)
    },
  })
}

const siteKey = { type: 'string', minLength: 1, maxLength: 200 } as const

/** POST /v1/token (P21): an issued client id, and the version a retried update was trained on. */
const TOKEN_REQUEST = {
  type: 'object',
  additionalProperties: false,
  required: ['siteKey', 'client'],
  properties: {
    siteKey,
    client: { type: 'string', minLength: 1, maxLength: 64 },
    version: { type: 'integer', minimum: 1, maximum: 2 ** 31 - 1 },
  },
} as const

/** POST /v1/client/challenge and POST /v1/client (P21). */
const CHALLENGE_REQUEST = {
  type: 'object',
  additionalProperties: false,
  required: ['siteKey'],
  properties: { siteKey },
} as const
const CLIENT_REQUEST = {
  type: 'object',
  additionalProperties: false,
  required: ['siteKey', 'challenge', 'nonce'],
  properties: {
    siteKey,
    challenge: { type: 'string', minLength: 1, maxLength: 128 },
    nonce: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
  },
} as const

/** `{version}`: promote, rollback, evaluate. */
const VERSION_REQUEST = {
  type: 'object',
  additionalProperties: false,
  required: ['version'],
  properties: { version: { type: 'integer', minimum: 1, maximum: 2 ** 31 - 1 } },
} as const

/**
 * Metrics the server writes itself that count or mark rather than evaluate (P24–P28): none of
 * them lets a version be promoted, and an operator's metrics may not overwrite them.
 */
const SERVER_MARKS = [
  'updates',
  'leftOut',
  'popularityReports',
  'reviewedOn',
  'validationSet',
  'validationCases',
] as const
export const NOT_EVALUATIONS: ReadonlySet<string> = new Set(SERVER_MARKS)

/** `{version, metrics}`: an evaluation recorded by the operator (P24). */
const METRICS_REQUEST = {
  type: 'object',
  additionalProperties: false,
  required: ['version', 'metrics'],
  properties: {
    version: VERSION_REQUEST.properties.version,
    metrics: {
      type: 'object',
      minProperties: 1,
      maxProperties: 64,
      propertyNames: {
        type: 'string',
        pattern: '^[A-Za-z][A-Za-z0-9_.@-]{0,63}$',
        not: { enum: SERVER_MARKS },
      },
      additionalProperties: { type: 'number' },
    },
  },
} as const

const count = (maximum: number) => ({ type: 'integer', minimum: 0, maximum }) as const

/**
 * POST /v1/aggregate on the helper (P29c): the leader names a batch, the public layout the
 * devices split their updates for, and each report by its key and the leader's digest of it.
 */
const AGGREGATE_REQUEST = {
  type: 'object',
  additionalProperties: false,
  required: ['batch', 'layout', 'shape', 'reports'],
  properties: {
    batch: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
    layout: {
      type: 'object',
      additionalProperties: false,
      required: ['maxRows', 'embedDim', 'denseCoordinates', 'negativeRows'],
      properties: {
        maxRows: { type: 'integer', minimum: 1, maximum: 1024 },
        embedDim: { type: 'integer', minimum: 1, maximum: 1024 },
        denseCoordinates: count(2 ** 24),
        negativeRows: count(4096),
      },
    },
    shape: {
      type: 'object',
      additionalProperties: false,
      required: ['denseSize', 'nItems', 'embedDim'],
      properties: {
        denseSize: { type: 'integer', minimum: 1, maximum: 2 ** 28 },
        nItems: { type: 'integer', minimum: 1, maximum: 2 ** 24 },
        embedDim: { type: 'integer', minimum: 1, maximum: 1024 },
      },
    },
    reports: {
      type: 'array',
      maxItems: 100_000,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['key', 'digest'],
        properties: {
          key: { type: 'string', pattern: '^[0-9a-f]{32}$' },
          digest: { type: 'string', pattern: '^[0-9a-f]{64}$' },
        },
      },
    },
  },
} as const

/**
 * POST /v1/aggregate-outcomes on the helper (P30c): the leader names a batch of one experiment's
 * outcome reports (its digest and arm count fix the report's cells) by the reports' keys.
 */
const AGGREGATE_OUTCOMES_REQUEST = {
  type: 'object',
  additionalProperties: false,
  required: ['batch', 'experiment', 'arms', 'reports'],
  properties: {
    batch: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
    experiment: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    arms: { type: 'integer', minimum: 2, maximum: 8 },
    reports: {
      type: 'array',
      maxItems: 100_000,
      items: { type: 'string', pattern: '^[0-9a-f]{32}$' },
    },
  },
} as const

// verbose: a failed `pattern` is explained by its schema's description, not the regex.
const ajv = new Ajv({ strict: true, allErrors: false, verbose: true })
const validators = {
  catalogue: ajv.compile(CATALOGUE_SCHEMA),
  rules: ajv.compile(RULES_SCHEMA),
  experiments: ajv.compile(EXPERIMENTS_SCHEMA),
  validation: ajv.compile(VALIDATION_SET_SCHEMA),
  token: ajv.compile(TOKEN_REQUEST),
  challenge: ajv.compile(CHALLENGE_REQUEST),
  client: ajv.compile(CLIENT_REQUEST),
  version: ajv.compile(VERSION_REQUEST),
  metrics: ajv.compile(METRICS_REQUEST),
  aggregate: ajv.compile(AGGREGATE_REQUEST),
  'aggregate-outcomes': ajv.compile(AGGREGATE_OUTCOMES_REQUEST),
} satisfies Record<string, ValidateFunction>

export type DocumentKind = keyof typeof validators

export type Checked<T> = { ok: true; value: T } | { ok: false; message: string }

/** Checks a parsed JSON value against the schema of `kind`. */
export function checkDocument<T>(kind: DocumentKind, value: unknown): Checked<T> {
  const validate = validators[kind]
  if (validate(value)) return { ok: true, value: value as T }
  const error = validate.errors![0]! as (typeof validate.errors & object)[number] & {
    propertyName?: string
  }
  const where = error.instancePath === '' ? `the ${kind} document` : error.instancePath
  const quote = (name: unknown) => JSON.stringify(String(name)).slice(0, 80)
  if (error.propertyName !== undefined) {
    const rule = error.keyword === 'not' ? 'a name the server keeps for itself' : error.message
    return { ok: false, message: `${where} has a key ${quote(error.propertyName)}: ${rule}` }
  }
  const extra =
    error.keyword === 'additionalProperties' ? `: ${quote(error.params.additionalProperty)}` : ''
  const described = (error.parentSchema as { description?: unknown } | undefined)?.description
  const rule =
    error.keyword === 'pattern' && typeof described === 'string'
      ? `must be ${described}, got ${quote(error.data)}`
      : (error.message ?? 'is not valid')
  return { ok: false, message: `${where} ${rule}${extra}` }
}

/** Parses JSON text and checks it against the schema of `kind`. */
export function parseDocument<T>(kind: DocumentKind, text: string): Checked<T> {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { ok: false, message: `expected a JSON ${kind} document` }
  }
  return checkDocument<T>(kind, value)
}
