// Sparse views of the training sessions shared by the neighbourhood baselines: each session's
// distinct items, and for each item the sessions holding it. Both are CSR arrays so that indexing
// 186k sessions costs a few typed arrays, not a million small JS objects.

export interface SessionIndex {
  sessions: CollapsedSessions
  postings: Postings
}

/** Builds both directions of the session ↔ item index in two passes over the clicks. */
export function indexSessions(train: Int32Array[], nItems: number): SessionIndex {
  const sessions = collapseSessions(train, nItems)
  return { sessions, postings: invertSessions(sessions, nItems) }
}

/** Session s holds the distinct items items[offsets[s] .. offsets[s + 1]), first click first. */
export interface CollapsedSessions {
  offsets: Int32Array
  items: Int32Array
  /** Clicks on that item in that session. */
  clicks: Int32Array
}

/** Item i is in the sessions sessions[offsets[i] .. offsets[i + 1]), in ascending order. */
export interface Postings {
  offsets: Int32Array
  sessions: Int32Array
  clicks: Int32Array
}

function collapseSessions(train: Int32Array[], nItems: number): CollapsedSessions {
  let total = 0
  for (const session of train) total += session.length
  const offsets = new Int32Array(train.length + 1)
  const items = new Int32Array(total)
  const clicks = new Int32Array(total)
  // slot[item] = position of item in the session being collapsed; stamp avoids clearing it.
  const slot = new Int32Array(nItems)
  const stamp = new Int32Array(nItems).fill(-1)
  let n = 0
  train.forEach((session, s) => {
    for (const item of session) {
      if (!(item >= 0 && item < nItems)) {
        throw new RangeError(`expected item indices in [0, ${nItems}), got ${item} in session ${s}`)
      }
      if (stamp[item] !== s) {
        stamp[item] = s
        slot[item] = n
        items[n] = item
        clicks[n++] = 0
      }
      clicks[slot[item]]++
    }
    offsets[s + 1] = n
  })
  return { offsets, items: items.slice(0, n), clicks: clicks.slice(0, n) }
}

function invertSessions(sessions: CollapsedSessions, nItems: number): Postings {
  const offsets = new Int32Array(nItems + 1)
  for (const item of sessions.items) offsets[item + 1]++
  for (let i = 0; i < nItems; i++) offsets[i + 1] += offsets[i]
  const cursor = offsets.slice(0, nItems)
  const ids = new Int32Array(sessions.items.length)
  const clicks = new Int32Array(sessions.items.length)
  for (let s = 0; s + 1 < sessions.offsets.length; s++) {
    for (let e = sessions.offsets[s]; e < sessions.offsets[s + 1]; e++) {
      const p = cursor[sessions.items[e]]++
      ids[p] = s
      clicks[p] = sessions.clicks[e]
    }
  }
  return { offsets, sessions: ids, clicks }
}
