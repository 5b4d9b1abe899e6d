// `window.pocketrec`: before the script loads, a queue the shop's snippet fills; after, a function
// that runs commands. Installing it replays the queue in order, once, whichever copy runs first.
import { InvalidRequestError } from './errors'
import { warn } from './report'

export type CommandRunner = (name: string, args: unknown[]) => Promise<unknown>

export interface PocketrecGlobal {
  (name: string, ...args: unknown[]): Promise<unknown>
  /** The queue's own method, kept working after load: each argument is one command array. */
  push(...commands: ArrayLike<unknown>[]): void
  /** Marks the real thing: a second copy of the script sees it and stays out. */
  loaded: true
}

/** What a snippet leaves behind: an array of commands, or a stub function keeping them in `.q`. */
interface QueueStub {
  q?: unknown
}

export function isInstalled(value: unknown): value is PocketrecGlobal {
  return typeof value === 'function' && (value as Partial<PocketrecGlobal>).loaded === true
}

/**
 * Replaces the queue in `host.pocketrec` with the command function and replays what was queued.
 * Returns false, creating nothing, when another copy of the script already did.
 */
export function installGlobal(host: { pocketrec?: unknown }, create: () => CommandRunner): boolean {
  const queued = host.pocketrec
  if (isInstalled(queued)) return false
  const run = create()
  const dispatch = (command: unknown): Promise<unknown> => {
    // A queued command is an array or the stub's `arguments` object.
    const [name, ...args] =
      typeof command === 'object' && command ? Array.from(command as ArrayLike<unknown>) : []
    return typeof name === 'string'
      ? run(name, args)
      : Promise.reject(
          new InvalidRequestError(
            `expected a command array like ['track', …], got ${String(command)}`,
          ),
        )
  }
  const pocketrec = ((...command: unknown[]) => dispatch(command)) as PocketrecGlobal
  pocketrec.push = (...commands) => {
    // Nobody holds these promises: report failures instead of leaving unhandled rejections.
    for (const command of commands) dispatch(command).catch(warn)
  }
  pocketrec.loaded = true
  host.pocketrec = pocketrec
  const stubQueue = typeof queued === 'function' ? (queued as QueueStub).q : undefined
  const pending = Array.isArray(queued) ? queued : Array.isArray(stubQueue) ? stubQueue : []
  pocketrec.push(...(pending as ArrayLike<unknown>[]))
  return true
}
