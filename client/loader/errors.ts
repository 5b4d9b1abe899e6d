// Errors the loader's promises reject with. Shops branch on `name` (stable across versions and
// minification); worker errors arrive through comlink with their own `name` (WorkerErrorName).

import { PocketrecError } from '../../shared/errors'

/** What the tag's own errors carry in `code` (documented in shared/errors.ts). */
export type LoaderErrorCode = 'E_CONSENT_REQUIRED' | 'E_INVALID_COMMAND' | 'E_WORKER_START'

export type LoaderErrorName = 'ConsentRequiredError' | 'InvalidRequestError' | 'WorkerStartError'

export class ConsentRequiredError extends PocketrecError<'E_CONSENT_REQUIRED'> {
  constructor(message: string) {
    super('ConsentRequiredError', 'E_CONSENT_REQUIRED', message)
  }
}

/** Same name as the worker's boundary error, so a shop checks one name for bad arguments. */
export class InvalidRequestError extends PocketrecError<'E_INVALID_COMMAND'> {
  constructor(message: string) {
    super('InvalidRequestError', 'E_INVALID_COMMAND', message)
  }
}

export class WorkerStartError extends PocketrecError<'E_WORKER_START'> {
  constructor(message: string) {
    super('WorkerStartError', 'E_WORKER_START', message)
  }
}
