// One error type for the whole project: `PocketrecError`, with a stable `code` from one union
// (ERROR_CODES) and a `name`. Callers branch on `code`, never on the message, which is for
// people and may be reworded. Across comlink only `name`, `message` and `stack` survive, so the
// page branches on `name`; the server answers every refusal as `{ error: code, message }` with
// the status its code maps to (server/http-errors.ts). PROTOCOL.md documents the codes that
// cross the wire; a test holds it and this list together.

export const ERROR_CODES = [
  // The weights codec (weights-codec.ts): WeightsFormatError.
  'E_WEIGHTS_INPUT', // the input is neither a Uint8Array nor an ArrayBuffer
  'E_WEIGHTS_MAGIC', // the first four bytes are not the `PRW1` magic
  'E_WEIGHTS_VERSION', // written by a codec version this build cannot read
  'E_WEIGHTS_TRUNCATED', // too short for its prelude, or its header runs past the end
  'E_WEIGHTS_CHECKSUM', // the CRC-32 in the last four bytes does not match the contents
  'E_WEIGHTS_JSON', // the header is not UTF-8 JSON
  'E_WEIGHTS_HEADER', // a header field missing or ill-typed, or reserved bytes not zero
  'E_WEIGHTS_DUPLICATE', // two tensors share a name
  'E_WEIGHTS_SHAPE', // a dimension negative or fractional, or the shape disagrees with the data
  'E_WEIGHTS_DTYPE', // a storage dtype this codec does not know
  'E_WEIGHTS_SCALE', // int8, int6 or pq8 codebook scales of the wrong count, or a negative one
  'E_WEIGHTS_RANGE', // a data region misaligned, out of the data section, or overlapping another
  'E_WEIGHTS_NONFINITE', // a NaN or infinite weight (or one float16 cannot hold)
  // A weights file that decodes but is not a loadable model (model/model-weights.ts).
  'E_MODEL_WEIGHTS',
  // A session log that cannot be read (train/data/).
  'E_DATA_FORMAT',
  // The worker's IndexedDB (client/worker/storage/): StorageError.
  'E_STORAGE_UNAVAILABLE', // no IndexedDB in this context (some private modes, embedded browsers)
  'E_STORAGE_OPEN', // could not be opened, or a migration failed and was rolled back
  'E_STORAGE_VERSION', // the database on disk is newer than this build (another tab runs newer code)
  'E_STORAGE_CLOSED', // closed by close()/forget(), or by another tab upgrading or deleting
  'E_STORAGE_QUOTA', // still over quota after pruning the oldest events; nothing was kept
  'E_STORAGE_FAILED', // any other IndexedDB failure; `cause` holds the original DOMException
  // What the page asks of the tag and the worker (client/).
  'E_REQUEST_SHAPE', // a recommend request that is not an object of the documented fields
  'E_REQUEST_SCENARIO', // an unknown scenario
  'E_REQUEST_LIMIT', // a limit outside 1..MAX_LIMIT
  'E_REQUEST_PRODUCT', // a product scenario without a product id
  'E_CONFIG', // init() without { site, endpoint } strings, or a call before init()
  'E_CONSENT_REQUIRED', // shopper data asked for before consent, after withdrawal, or under DNT/GPC
  'E_INVALID_COMMAND', // an unknown tag command, or arguments of the wrong shape
  // No worker started, and no CSP violation said why (a 404, an old browser, a blob worker whose
  // import its inherited CSP refused): pools only on the page; or the worker stopped answering
  // too often, or the pools module did not load either: calls reject with WorkerStartError.
  'E_WORKER_START',
  // Why the tag runs with less than it could: the page's policies (client/loader/README.md,
  // "Content-Security-Policy"). Each reaches status().error and the `pocketrec:error` event.
  'E_WORKER_BLOCKED', // CSP (worker-src) refused every worker: lists come from the pools alone
  'E_WASM_BLOCKED', // CSP without 'wasm-unsafe-eval': no WebAssembly; the worker runs on cpu
  // A fetch the browser refused and the page's CSP reported (a `securitypolicyviolation` of
  // connect-src for that URL): the endpoint (or helper) must be listed in connect-src.
  'E_CSP_CONNECT',
  'E_NETWORK', // a fetch that failed with no CSP violation reported: offline, DNS, CORS, refused
  'E_NO_BACKEND', // no tfjs backend passed its self-test on this device
  'E_RELEASE', // the release (manifest and artifacts) could not be fetched or verified
  'E_MODEL_DISPOSED', // a recommender used after its model was released (device loss, new release)
  // HTTP answers of the shop's server and of the helper (PROTOCOL.md).
  'E_REQUEST', // a body that is not the route's JSON document (`{version}` and the like)
  'E_TOO_LARGE', // a body over the route's limit
  'E_NOT_FOUND', // no such route or artifact
  'E_INTERNAL', // the server failed; nothing was changed
  'E_ADMIN', // an admin route without the admin token
  'E_SITE_KEY', // not this site's public key
  'E_ORIGIN', // a page origin the site does not list
  'E_CHALLENGE', // a proof-of-work challenge altered, another site's or expired
  'E_WORK', // a proof of work that does not meet the challenge
  'E_CLIENT', // a client id that is malformed, expired or not issued here (P21)
  'E_RATE_LIMITED', // over a rate limit (P21): send again later
  'E_TOKEN', // an upload token that is missing, altered, expired or another site's
  'E_NO_HELPER', // a server paired with no helper takes no updates (P13, P29c)
  'E_UPDATE_FORMAT', // an upload that is not a leader upload of this release's layout
  'E_UPDATE_SLICE', // an upload for another slice than its token's
  'E_VERSION_STALE', // an upload or token for a version that is no longer current
  'E_VERSION_UNKNOWN', // a version the server never published
  'E_CLIENT_LIMIT', // a client with an update already in the buffer, or a report for the period
  'E_OUTCOME_FORMAT', // an outcome report that is not a leader body of a running experiment (P30c)
  'E_EXPERIMENT_UNKNOWN', // an outcome report for an experiment that is not running (P30c)
  'E_CATALOGUE', // a catalogue upload that is malformed or does not fit the model
  'E_RULES', // a rules upload that is malformed
  'E_EXPERIMENTS', // an experiments upload that is malformed (P30)
  'E_VALIDATION', // a validation set that is malformed or holds no usable session
  'E_NO_VALIDATION', // an evaluation asked for before any validation set
  'E_METRICS', // metrics that are malformed
  'E_NOT_EVALUATED', // a promotion of a version with no evaluation on record (P24)
  'E_ROLLBACK', // a rollback to the current version or a later one
  'E_CONFLICT', // another version was published at the same moment: send it again
  'E_NO_RELEASE', // no release published yet
  'E_ARTIFACT_CORRUPT', // a stored artifact whose bytes no longer match its hash; not served
  'E_SHARE_FORMAT', // a helper body that is not a share body of the announced layout
  'E_HELPER_FULL', // the helper holds as many waiting bodies as it may: Retry-After
  'E_LEADER', // a helper route for the leader without the pairing secret
  'E_BATCH_SMALL', // a batch with fewer summable bodies than the helper's floor
  'E_BATCH_MISMATCH', // a batch asked again with other contents
  'E_BATCH_GONE', // a committed batch whose answer is no longer kept
  'E_BATCH_CONFLICT', // two batches raced for the same bodies
] as const

export type ErrorCode = (typeof ERROR_CODES)[number]
export type WeightsErrorCode = Extract<ErrorCode, `E_WEIGHTS_${string}`>
export type StorageErrorCode = Extract<ErrorCode, `E_STORAGE_${string}`>
export type RequestErrorCode = Extract<ErrorCode, `E_REQUEST_${string}`>

/** The base of every error the project raises; subclasses only fix `name` and narrow `code`. */
export class PocketrecError<C extends ErrorCode = ErrorCode> extends Error {
  // Declared and assigned, not class fields: the tag's bundle pays no field helper. `name` is
  // explicit because minifiers rename classes and `name` must survive a bundle.
  declare readonly code: C

  constructor(name: string, code: C, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = name
    this.code = code
  }
}

/** Anything wrong with a weights file, on encode or decode. */
export class WeightsFormatError extends PocketrecError<WeightsErrorCode> {
  constructor(code: WeightsErrorCode, message: string) {
    super('WeightsFormatError', code, message)
  }
}
