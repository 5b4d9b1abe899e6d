import path from 'node:path'

/** `../shared/data` beside the project (read-only, never copied in); POCKETREC_DATA overrides. */
export function sharedDataDir(): string {
  return process.env.POCKETREC_DATA ?? path.resolve(process.cwd(), '..', 'shared', 'data')
}
