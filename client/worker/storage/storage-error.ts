// The one error class of the storage layer. Across comlink only `name`, `message` and `stack`
// survive, so the page branches on `name`; inside the worker, `code` says what went wrong.
import { PocketrecError, type StorageErrorCode } from '../../../shared/errors'

/** The storage layer's error; its codes (E_STORAGE_…) are documented in shared/errors.ts. */
export class StorageError extends PocketrecError<StorageErrorCode> {
  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super('StorageError', code, message, options)
  }
}

export function isStorageError(error: unknown): error is StorageError {
  return error instanceof StorageError
}

// By name, not instanceof: DOMException is not an Error subclass in every engine and realm.
export function getErrorName(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('name' in error)) return undefined
  return typeof error.name === 'string' ? error.name : undefined
}

/** True for a quota failure, whichever way the browser reports it. */
export function isQuotaError(error: unknown): boolean {
  const name = getErrorName(error)
  // Old Firefox reported quota failures under its own name.
  return name === 'QuotaExceededError' || name === 'NS_ERROR_DOM_QUOTA_REACHED'
}

/** Wraps an IndexedDB failure; a StorageError passes through unchanged. */
export function toStorageError(error: unknown, action: string): StorageError {
  if (error instanceof StorageError) return error
  const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
  // A transaction on a connection the browser closed throws InvalidStateError synchronously.
  if (getErrorName(error) === 'InvalidStateError') {
    return new StorageError('E_STORAGE_CLOSED', `${action}: the database is closed (${detail})`, {
      cause: error,
    })
  }
  return new StorageError('E_STORAGE_FAILED', `${action} failed: ${detail}`, { cause: error })
}
