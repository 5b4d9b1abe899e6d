import { describe, expect, it } from 'vitest'
import { runWithTrainingLock, type TrainingLocks } from './training-lock'

/** Web Locks' `ifAvailable` semantics for exclusive locks, as every tab's worker sees them. */
function createFakeLocks(): TrainingLocks {
  const held = new Set<string>()
  return {
    async request(name, _options, callback) {
      if (held.has(name)) return callback(null)
      held.add(name)
      try {
        return await callback({ name })
      } finally {
        held.delete(name)
      }
    },
  }
}

describe('runWithTrainingLock', () => {
  it('lets one tab train and tells the others the lock is held elsewhere', async () => {
    const locks = createFakeLocks()
    let release!: () => void
    const first = runWithTrainingLock(() => new Promise<string>((r) => (release = () => r('a'))), {
      locks,
    })
    const second = await runWithTrainingLock(async () => 'b', { locks })
    expect(second).toEqual({ status: 'held-elsewhere' })
    release()
    expect(await first).toEqual({ status: 'ran', value: 'a' })
  })

  it('releases the lock when the run ends, even by an error', async () => {
    const locks = createFakeLocks()
    await expect(
      runWithTrainingLock(async () => Promise.reject(new Error('boom')), { locks }),
    ).rejects.toThrow('boom')
    expect(await runWithTrainingLock(async () => 1, { locks })).toEqual({ status: 'ran', value: 1 })
  })

  it('runs the task when the browser has no Web Locks', async () => {
    expect(await runWithTrainingLock(async () => 2, { locks: null })).toEqual({
      status: 'ran',
      value: 2,
    })
  })
})
