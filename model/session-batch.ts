import type { SessionBatch } from './gru-model'

/**
 * Left-pads the last `maxLen` items of each session into one [batch, time] block, time being
 * the longest session kept. Left padding puts every session's final state at the last step.
 */
export function encodeSessionBatch(sessions: readonly Int32Array[], maxLen: number): SessionBatch {
  const batch = sessions.length
  let time = 1
  for (const s of sessions) time = Math.max(time, Math.min(s.length, maxLen))
  const ids = new Int32Array(batch * time)
  const mask = new Float32Array(batch * time)
  for (let row = 0; row < batch; row++) {
    const s = sessions[row]!
    const kept = Math.min(s.length, maxLen)
    const rowEnd = (row + 1) * time
    for (let k = 0; k < kept; k++) {
      ids[rowEnd - kept + k] = s[s.length - kept + k]!
      mask[rowEnd - kept + k] = 1
    }
  }
  return { batch, time, ids, mask }
}
