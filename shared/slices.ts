// Work long enough to be a long task on a slow phone (decoding and checking a 43,097-item
// catalogue: ~40 ms on a server CPU) written as steps, so a page's thread can run it in slices
// and paint between them. A step is a generator's `yield`; `drain` runs them all at once (a
// worker, a server), `inSlices` runs them in slices of a few milliseconds, giving the event loop
// a turn after each slice.

/** Work that yields between its steps and returns T. */
export type Steps<T> = Generator<void, T, void>

/** Every step now, in one task. */
export function drain<T>(steps: Steps<T>): T {
  for (;;) {
    const step = steps.next()
    if (step.done) return step.value
  }
}

/** A slice's budget: well under the 50 ms of a long task, even when one step overruns it. */
export const SLICE_MS = 8

/**
 * The steps, `budgetMs` of them at a time, each slice followed by `pause` (by default the next
 * task: `scheduler.yield()` where the browser has it, else a zero timeout).
 */
export async function inSlices<T>(
  steps: Steps<T>,
  budgetMs: number = SLICE_MS,
  pause: () => Promise<void> = nextTask,
): Promise<T> {
  let sliceStart = performance.now()
  for (;;) {
    const step = steps.next()
    if (step.done) return step.value
    if (performance.now() - sliceStart >= budgetMs) {
      await pause()
      sliceStart = performance.now()
    }
  }
}

interface Scheduler {
  yield(): Promise<void>
}

function nextTask(): Promise<void> {
  const scheduler = (globalThis as { scheduler?: Partial<Scheduler> }).scheduler
  if (typeof scheduler?.yield === 'function') return scheduler.yield()
  return new Promise((resolve) => setTimeout(resolve, 0))
}

/** `work` as steps for an API that takes steps: all of it in one step. */
// eslint-disable-next-line require-yield -- one step, nothing to yield between
export function* oneStep<T>(work: () => T): Steps<T> {
  return work()
}
