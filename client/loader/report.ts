// How the loader reports a failure that no caller awaits: a console warning, never a thrown error
// on the shop's page; and an error as one line, for status() and track results.

export function warn(error: unknown): void {
  console.warn('pocketrec:', error)
}

/** Keeps the error's `name`: shops and tests tell failures apart by it. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error)
}
