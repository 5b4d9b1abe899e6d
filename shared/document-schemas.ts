// JSON Schemas (draft-07) of the documents a shop sends the server: catalogue, re-ranking rules
// and validation sessions (PROTOCOL.md P25, P26). Unknown keys are refused at every level, so
// what is stored and shipped to devices is exactly these fields, and a document's depth is the
// schema's. Sizes are bounded here and by the routes' body limits. The server checks a document
// against its schema first (server/federated/documents.ts), then what a schema cannot say
// (unique ids and rows, rows inside the model, real dates) with the guards devices run
// (artifacts.ts). Plain data: publishable as the format's documentation.
import { ARTIFACT_LIMITS as L, IMAGE_URL, SCENARIOS } from './artifacts'
import { MAX_ARMS, MAX_EXPERIMENTS } from './experiments'

const id = { type: 'string', minLength: 1, maxLength: L.maxIdLength } as const

/** Published as docs/catalogue.schema.json (scripts/doc-schemas.ts writes it; a test compares). */
export const CATALOGUE_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'pocketrec-catalogue',
  title: 'A shop’s catalogue: one product per row of the model’s item table',
  type: 'object',
  additionalProperties: false,
  required: ['type', 'items'],
  properties: {
    type: { const: 'pocketrec-catalogue' },
    items: {
      type: 'array',
      maxItems: L.maxItems,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'index', 'name', 'category', 'brand', 'price', 'inStock', 'addedAt'],
        properties: {
          id: { ...id, description: 'the shop’s product id, as pages send it in events' },
          index: {
            type: 'integer',
            minimum: 0,
            description:
              'the product’s row in the model’s item table: 0 to the rows − 1, each once',
          },
          name: { type: 'string', maxLength: L.maxNameLength, description: 'shown in widgets' },
          category: {
            type: 'string',
            maxLength: L.maxLabelLength,
            description: 'per-category pools and caps',
          },
          brand: { type: 'string', maxLength: L.maxLabelLength, description: 'per-brand caps' },
          price: {
            type: 'number',
            minimum: 0,
            description: 'in the shop’s currency; widgets format it',
          },
          inStock: { type: 'boolean', description: 'false: never recommended' },
          addedAt: {
            type: 'string',
            maxLength: 40,
            description: 'ISO 8601 date the product was added (2026-11-27 or a full timestamp)',
          },
          imageUrl: {
            type: 'string',
            minLength: 1,
            maxLength: L.maxUrlLength,
            ...IMAGE_URL,
          },
        },
      },
    },
  },
} as const

const experimentName = (max: number) => ({
  type: 'string',
  pattern: `^[A-Za-z0-9_-]{1,${max}}$`,
  description: `1 to ${max} letters, digits, _ or -`,
})

export const EXPERIMENTS_SCHEMA = {
  $id: 'pocketrec-experiments',
  title: 'The A/B experiments every device applies (P30); an empty list ends them all',
  type: 'object',
  additionalProperties: false,
  required: ['type', 'experiments'],
  properties: {
    type: { const: 'pocketrec-experiments' },
    experiments: {
      type: 'array',
      maxItems: MAX_EXPERIMENTS,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'key', 'arms'],
        properties: {
          id: experimentName(32),
          key: {
            description: 'the hash key that places devices; a new key places every device anew',
            type: 'string',
            minLength: 1,
            maxLength: 256,
          },
          arms: {
            description: 'the first arm is the control',
            type: 'array',
            minItems: 2,
            maxItems: MAX_ARMS,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['name', 'share', 'lists'],
              properties: {
                name: experimentName(32),
                share: {
                  description: 'relative traffic share',
                  type: 'number',
                  exclusiveMinimum: 0,
                  maximum: 1e6,
                },
                lists: {
                  description:
                    'model: lists as usual; pools: the release’s lists without the model',
                  enum: ['model', 'pools'],
                },
                explore: {
                  description:
                    'share of each list’s slots for new items chosen by Thompson sampling (P30e); absent: none',
                  type: 'number',
                  exclusiveMinimum: 0,
                  maximum: 0.5,
                },
              },
            },
          },
        },
      },
    },
  },
} as const

export const RULES_SCHEMA = {
  $id: 'pocketrec-rules',
  title: 'Re-ranking rules every device applies to its lists',
  type: 'object',
  additionalProperties: false,
  required: ['type', 'excludePurchasedDays', 'maxPerCategory', 'maxPerBrand', 'boosts', 'pins'],
  properties: {
    type: { const: 'pocketrec-rules' },
    excludePurchasedDays: { type: 'number', minimum: 0, maximum: L.maxDays },
    maxPerCategory: { type: 'integer', minimum: 1, maximum: L.maxPerList },
    maxPerBrand: { type: 'integer', minimum: 1, maximum: L.maxPerList },
    boosts: {
      description: 'score multipliers by product id',
      type: 'object',
      maxProperties: L.maxBoosts,
      propertyNames: id,
      additionalProperties: { type: 'number', exclusiveMinimum: 0, maximum: L.maxBoost },
    },
    eventWeights: {
      description:
        'how much a viewed, clicked, added or bought product counts as a fine-tuning target (P30d)',
      type: 'object',
      additionalProperties: false,
      required: ['view', 'click', 'add', 'purchase'],
      properties: {
        ...Object.fromEntries(
          ['view', 'click', 'add', 'purchase'].map((kind) => [
            kind,
            { type: 'number', minimum: L.minEventWeight, maximum: L.maxEventWeight },
          ]),
        ),
        dwellPerMinute: { type: 'number', minimum: 0, maximum: L.maxEventWeight },
      },
    },
    pins: {
      description: 'product ids at fixed 0-based positions, per scenario',
      type: 'object',
      additionalProperties: false,
      properties: Object.fromEntries(
        SCENARIOS.map((scenario) => [
          scenario,
          {
            type: 'array',
            maxItems: L.maxPinPosition + 1,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['productId', 'position'],
              properties: {
                productId: id,
                position: { type: 'integer', minimum: 0, maximum: L.maxPinPosition },
              },
            },
          },
        ]),
      ),
    },
  },
} as const

export const VALIDATION_LIMITS = { maxSessions: 100_000, maxSessionLength: 1_000 } as const

export const VALIDATION_SET_SCHEMA = {
  $id: 'pocketrec-validation',
  title: 'Held-out sessions the server scores model versions on, as product ids in order',
  type: 'object',
  additionalProperties: false,
  required: ['type', 'sessions'],
  properties: {
    type: { const: 'pocketrec-validation' },
    sessions: {
      type: 'array',
      minItems: 1,
      maxItems: VALIDATION_LIMITS.maxSessions,
      items: { type: 'array', maxItems: VALIDATION_LIMITS.maxSessionLength, items: id },
    },
  },
} as const
