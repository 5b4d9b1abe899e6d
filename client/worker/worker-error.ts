// The errors the worker API throws for a misuse (no consent yet, no init, a malformed config).
// Across comlink only `name`, `message` and `stack` survive, so the page branches on `name`.

/** An Error whose `name` is the `WorkerErrorName` the page checks. */
export function workerError(name: string, message: string): Error {
  return Object.assign(new Error(message), { name })
}
