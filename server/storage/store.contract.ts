// The behaviour every FederationStore must have, run against SQLite and PostgreSQL alike
// (sqlite-store.test.ts, postgres-store.test.ts). Each test opens a fresh, empty store.
import { afterEach, describe, expect, it } from 'vitest'
import type { ModelManifest } from '../../shared/protocol'
import type { FederationStore, StoredUpdate, VersionRecord } from './store'

const ref = (name: string) => ({ url: name, sha256: name.padEnd(64, '0'), bytes: 1 })

export function record(
  version: number,
  parent: number | null = version - 1 || null,
): VersionRecord {
  const manifest: ModelManifest = {
    type: 'pocketrec-manifest',
    version: `v${version}`,
    createdAt: '2026-11-27T00:00:00.000Z',
    model: ref(`m${version}`),
    catalogue: ref('c'),
    pools: ref('p'),
    rules: ref('r'),
  }
  return {
    version,
    parent,
    createdAt: manifest.createdAt,
    manifest,
    metrics: { recall20: version / 100 },
  }
}

export function storedUpdate(key: string, clientId: string, acceptedAtVersion = 1): StoredUpdate {
  return {
    key,
    clientId,
    baseVersion: acceptedAtVersion,
    acceptedAtVersion,
    slice: 3,
    body: Uint8Array.from([1, 2, 3, key.length]),
    receivedAtMs: 1_700_000_000_000,
    score: { cases: key.length, hits20: 1, reciprocalRank20: 0.25 },
  }
}

/**
 * `open(id)` opens the store named `id`, empty the first time and as it was left afterwards
 * (a SQLite file, a PostgreSQL schema).
 */
export function storeContract(
  name: string,
  open: (id: string) => Promise<FederationStore>,
  /** Bytes of update bodies the store `id` still holds, read past the interface. */
  bodyBytes: (id: string) => Promise<number>,
): void {
  describe(`FederationStore contract (${name})`, () => {
    let store: FederationStore | undefined
    let opened = 0
    let id = ''
    const fresh = async (reopen = false) => {
      if (!reopen) id = `store_${process.pid}_${Date.now() % 1e6}_${++opened}`
      return (store = await open(id))
    }
    afterEach(async () => {
      await store?.close()
      store = undefined
    })

    it('starts empty, records versions with their parents, and moves "current" only when told', async () => {
      const s = await fresh()
      expect(await s.current()).toBeNull()
      expect(await s.bufferStats()).toEqual({ updates: 0, firstAtMs: null })
      await s.addVersion(record(1, null))
      expect(await s.current()).toBeNull()
      expect(await s.setCurrent(1)).toBe(true)
      expect(await s.current()).toEqual(record(1, null))
      expect(await s.setCurrent(9)).toBe(false)
      expect((await s.current())?.version).toBe(1)
    })

    it('keeps artifacts by hash, once', async () => {
      const s = await fresh()
      await s.putArtifact('a'.repeat(64), Uint8Array.from([9, 8, 7]))
      await s.putArtifact('a'.repeat(64), Uint8Array.from([9, 8, 7]))
      expect(Array.from((await s.artifact('a'.repeat(64)))!)).toEqual([9, 8, 7])
      expect(await s.artifact('b'.repeat(64))).toBeNull()
    })

    it('deletes the artifacts it is told, and only those', async () => {
      const s = await fresh()
      await s.putArtifact('a'.repeat(64), Uint8Array.from([1]))
      await s.putArtifact('b'.repeat(64), Uint8Array.from([2]))
      await s.putArtifact('c'.repeat(64), Uint8Array.from([3]))
      await s.deleteArtifacts(['a'.repeat(64), 'c'.repeat(64), 'd'.repeat(64)])
      await s.deleteArtifacts([])
      expect(await s.artifact('a'.repeat(64))).toBeNull()
      expect(Array.from((await s.artifact('b'.repeat(64)))!)).toEqual([2])
      expect(await s.artifact('c'.repeat(64))).toBeNull()
    })

    it('P12/P15: accepts an update once per key and one per client in the buffer', async () => {
      const s = await fresh()
      await s.addVersion(record(1, null))
      await s.setCurrent(1)
      expect(await s.hasUpdate('k1')).toBe(false)
      expect(await s.accept(storedUpdate('k1', 'alice'))).toBe('accepted')
      expect(await s.hasUpdate('k1')).toBe(true)
      expect(await s.accept(storedUpdate('k1', 'alice'))).toBe('duplicate')
      expect(await s.accept(storedUpdate('k2', 'alice'))).toBe('client-limit')
      // Another version current since (a shop change, a rollback) opens no second place.
      expect(await s.accept(storedUpdate('k3', 'alice', 2))).toBe('client-limit')
      expect(await s.accept(storedUpdate('k4', 'bob'))).toBe('accepted')
      expect(await s.acceptedCount()).toBe(2)
      expect(await s.bufferStats()).toEqual({ updates: 2, firstAtMs: 1_700_000_000_000 })
      const buffered = await s.buffered()
      expect(buffered.map((u) => u.key)).toEqual(['k1', 'k4'])
      expect(buffered[0]).toEqual(storedUpdate('k1', 'alice'))
      // Once a release has consumed alice's update, she may send the next one.
      await s.publish({ record: record(2), consumed: ['k1'], ledger: null })
      expect(await s.accept(storedUpdate('k3', 'alice', 2))).toBe('accepted')
      expect(await s.accept(storedUpdate('k1', 'alice'))).toBe('duplicate')
      expect(await s.hasUpdate('k1')).toBe(true)
    })

    it('P19: publishing consumes the buffer, moves "current" and appends the ledger, atomically', async () => {
      const s = await fresh()
      await s.addVersion(record(1, null))
      await s.setCurrent(1)
      for (const [key, client] of [
        ['k1', 'a'],
        ['k2', 'b'],
        ['k3', 'c'],
      ])
        await s.accept(storedUpdate(key!, client!))
      const ledger = { version: 2, noiseMultiplier: 1.1, clipNorm: 0.5, updates: 2 }
      expect(await s.publish({ record: record(2), consumed: ['k1', 'k2'], ledger })).toBe(
        'published',
      )
      expect((await s.current())?.version).toBe(2)
      expect((await s.buffered()).map((u) => u.key)).toEqual(['k3'])
      expect(await s.bufferStats()).toMatchObject({ updates: 1 })
      expect(await s.ledger()).toEqual([ledger])
      expect((await s.versions()).map((v) => [v.version, v.parent])).toEqual([
        [1, null],
        [2, 1],
      ])
      // Consumed bodies are dropped: only k3's 4 bytes are left; the keys still count (P12).
      expect(await bodyBytes(id)).toBe(4)
      expect(await s.accept(storedUpdate('k1', 'z'))).toBe('duplicate')
      expect(await s.deviceScores()).toMatchObject([{ version: 1, updates: 3 }])
    })

    it('P19: a publish that would count an update twice changes nothing', async () => {
      const s = await fresh()
      await s.addVersion(record(1, null))
      await s.setCurrent(1)
      await s.accept(storedUpdate('k1', 'a'))
      await s.accept(storedUpdate('k2', 'b'))
      expect(await s.publish({ record: record(2), consumed: ['k1'], ledger: null })).toBe(
        'published',
      )
      // k1 is consumed already; k2 must not be consumed by this failed attempt either.
      const again = {
        record: record(3, 2),
        consumed: ['k2', 'k1'],
        ledger: { version: 3, noiseMultiplier: 1, clipNorm: 1, updates: 2 },
      }
      expect(await s.publish(again)).toBe('conflict')
      expect((await s.buffered()).map((u) => u.key)).toEqual(['k2'])
      expect((await s.current())?.version).toBe(2)
      expect(await s.version(3)).toBeNull()
      expect(await s.ledger()).toEqual([])
      // Unknown keys and an existing version number are conflicts too.
      expect(await s.publish({ record: record(3, 2), consumed: ['nope'], ledger: null })).toBe(
        'conflict',
      )
      expect(await s.publish({ record: record(2), consumed: ['k2'], ledger: null })).toBe(
        'conflict',
      )
      expect((await s.buffered()).map((u) => u.key)).toEqual(['k2'])
    })

    it('P24: records evaluation results with a version, merged with what it had', async () => {
      const s = await fresh()
      await s.addVersion(record(1, null))
      expect(await s.recordMetrics(1, { validationRecall20: 51.2 })).toBe(true)
      expect(await s.recordMetrics(1, { deviceMrr20: 17.5 })).toBe(true)
      expect((await s.version(1))!.metrics).toEqual({
        recall20: 0.01,
        validationRecall20: 51.2,
        deviceMrr20: 17.5,
      })
      expect(await s.recordMetrics(7, { x: 1 })).toBe(false)
    })

    it('P24: publishes a candidate without moving "current", consuming its updates', async () => {
      const s = await fresh()
      await s.addVersion(record(1, null))
      await s.setCurrent(1)
      await s.accept(storedUpdate('k1', 'a'))
      const request = { record: record(2), consumed: ['k1'], ledger: null, makeCurrent: false }
      expect(await s.publish(request)).toBe('published')
      expect((await s.current())?.version).toBe(1)
      expect((await s.version(2))?.parent).toBe(1)
      expect(await s.buffered()).toEqual([])
    })

    it('P23: rollback repoints "current" and keeps every version', async () => {
      const s = await fresh()
      await s.addVersion(record(1, null))
      await s.setCurrent(1)
      await s.accept(storedUpdate('k1', 'a'))
      await s.publish({ record: record(2), consumed: ['k1'], ledger: null })
      expect(await s.setCurrent(1)).toBe(true)
      expect((await s.current())?.version).toBe(1)
      expect((await s.versions()).map((v) => v.version)).toEqual([1, 2])
    })

    it('P27: sums device scores by base version, unscored updates counted but adding nothing', async () => {
      const s = await fresh()
      expect(await s.deviceScores()).toEqual([])
      await s.accept({ ...storedUpdate('k1', 'a'), baseVersion: 1 })
      await s.accept({ ...storedUpdate('k22', 'b'), baseVersion: 1 })
      await s.accept({ ...storedUpdate('k3', 'c', 2), baseVersion: 2 })
      const unscored = { cases: 0, hits20: 0, reciprocalRank20: 0 }
      await s.accept({ ...storedUpdate('k4', 'd', 2), baseVersion: 2, score: unscored })
      await s.accept(storedUpdate('k1', 'a')) // a duplicate adds nothing
      const scores = await s.deviceScores()
      expect(scores).toEqual([
        { version: 1, updates: 2, cases: 5, hits20: 2, reciprocalRank20: 0.5 },
        { version: 2, updates: 2, cases: 2, hits20: 1, reciprocalRank20: 0.25 },
      ])
      expect((await s.buffered()).map((u) => u.score)).toEqual([
        { cases: 2, hits20: 1, reciprocalRank20: 0.25 },
        { cases: 3, hits20: 1, reciprocalRank20: 0.25 },
        { cases: 2, hits20: 1, reciprocalRank20: 0.25 },
        unscored,
      ])
    })

    it('P26: keeps named settings, the last value written winning', async () => {
      const s = await fresh()
      expect(await s.setting('validation')).toBeNull()
      await s.putSetting('validation', 'first')
      await s.putSetting('validation', 'second')
      await s.putSetting('other', 'x')
      expect(await s.setting('validation')).toBe('second')
      expect(await s.setting('other')).toBe('x')
    })

    it('settingOrInit: the first value stored wins, for every caller at once', async () => {
      const s = await fresh()
      const values = await Promise.all(
        ['a', 'b', 'c', 'd'].map((v) => s.settingOrInit('secret', v)),
      )
      expect(new Set(values).size).toBe(1)
      expect(await s.setting('secret')).toBe(values[0])
      expect(await s.settingOrInit('secret', 'later')).toBe(values[0])
    })

    it('replaceSetting: only the caller that saw the current value replaces it, one of many at once', async () => {
      const s = await fresh()
      const first = await Promise.all(
        ['a', 'b', 'c'].map((v) => s.replaceSetting('batch', null, v)),
      )
      expect(first.filter(Boolean)).toHaveLength(1)
      const won = (await s.setting('batch'))!
      expect(['a', 'b', 'c']).toContain(won)
      const next = await Promise.all(['x', 'y'].map((v) => s.replaceSetting('batch', won, v)))
      expect(next.filter(Boolean)).toHaveLength(1)
      // A caller that saw an older value changes nothing.
      const now = (await s.setting('batch'))!
      expect(await s.replaceSetting('batch', won, 'stale')).toBe(false)
      expect(await s.replaceSetting('batch', null, 'stale')).toBe(false)
      expect(await s.setting('batch')).toBe(now)
      expect(await s.replaceSetting('batch', now, '')).toBe(true)
      expect(await s.setting('batch')).toBe('')
    })

    it('survives a reopen: everything accepted or published is still there', async () => {
      const s = await fresh()
      await s.addVersion(record(1, null))
      await s.setCurrent(1)
      await s.accept(storedUpdate('k1', 'a'))
      await s.accept(storedUpdate('k2', 'b'))
      await s.publish({ record: record(2), consumed: ['k1'], ledger: null })
      await s.putSetting('validation', 'abc')
      await s.close()
      store = undefined
      const reopened = await fresh(true)
      expect((await reopened.current())?.version).toBe(2)
      expect(await reopened.setting('validation')).toBe('abc')
      expect((await reopened.buffered()).map((u) => u.key)).toEqual(['k2'])
      expect(await reopened.accept(storedUpdate('k1', 'a'))).toBe('duplicate')
    })
  })
}
