// One trainer across tabs: each tab runs its own worker, and two of them fine-tuning the same
// shopper's weights would each overwrite the other's result. A Web Lock elects one; the others
// skip the run rather than queue behind it, since the winner trains on the same events.

/** The part of the Web Locks API used here (`navigator.locks`). */
export interface TrainingLocks {
  request<T>(
    name: string,
    options: { ifAvailable: true },
    callback: (lock: unknown) => Promise<T>,
  ): Promise<T>
}

export const TRAINING_LOCK_NAME = 'pocketrec-training'

export type LockedRun<T> = { status: 'ran'; value: T } | { status: 'held-elsewhere' }

export interface TrainingLockOptions {
  /** Defaults to `navigator.locks`; `null` stands for a browser without Web Locks. */
  locks?: TrainingLocks | null
  name?: string
}

/**
 * Runs `task` while holding the training lock, or returns `held-elsewhere` at once when another
 * tab holds it. Without Web Locks (browsers before 2022) the task runs: one tab is the norm.
 */
export async function runWithTrainingLock<T>(
  task: () => Promise<T>,
  options: TrainingLockOptions = {},
): Promise<LockedRun<T>> {
  const locks = options.locks === undefined ? defaultLocks() : options.locks
  const name = options.name ?? TRAINING_LOCK_NAME
  if (!locks) return { status: 'ran', value: await task() }
  return locks.request(name, { ifAvailable: true }, async (lock): Promise<LockedRun<T>> => {
    if (lock === null) return { status: 'held-elsewhere' }
    return { status: 'ran', value: await task() }
  })
}

function defaultLocks(): TrainingLocks | undefined {
  return (globalThis.navigator as { locks?: TrainingLocks } | undefined)?.locks
}
