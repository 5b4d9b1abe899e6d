// Errors the loader's promises reject with. Shops branch on `name` (stable across versions and
// minification); worker errors arrive through comlink with their own `name` (WorkerErrorName).

export type LoaderErrorCode =
  /** `recommend` before consent, after withdrawal, or under Do Not Track / GPC. */
  | 'E_CONSENT_REQUIRED'
  /** An unknown command, or arguments of the wrong shape. */
  | 'E_INVALID_COMMAND'
  /** Neither a worker, a blob worker nor the main-thread module could be started. */
  | 'E_WORKER_START'

export type LoaderErrorName = 'ConsentRequiredError' | 'InvalidRequestError' | 'WorkerStartError'

class LoaderError extends Error {
  // Declared and assigned, not class fields: lowered to ES2019 fields cost the tag a helper.
  declare readonly code: LoaderErrorCode
  declare readonly name: LoaderErrorName

  constructor(name: LoaderErrorName, code: LoaderErrorCode, message: string) {
    super(message)
    // Explicit: minifiers rename classes, and `name` must survive the bundle.
    this.name = name
    this.code = code
  }
}

export class ConsentRequiredError extends LoaderError {
  constructor(message: string) {
    super('ConsentRequiredError', 'E_CONSENT_REQUIRED', message)
  }
}

/** Same name as the worker's boundary error, so a shop checks one name for bad arguments. */
export class InvalidRequestError extends LoaderError {
  constructor(message: string) {
    super('InvalidRequestError', 'E_INVALID_COMMAND', message)
  }
}

export class WorkerStartError extends LoaderError {
  constructor(message: string) {
    super('WorkerStartError', 'E_WORKER_START', message)
  }
}
