// The behaviour every FederationStore must have, run against SQLite and PostgreSQL alike
// (sqlite-store.test.ts, postgres-store.test.ts). Each test opens a fresh, empty store.
import { afterEach, describe, expect, it } from 'vitest'
import type { ModelManifest } from '../../shared/protocol'
import type {
  FederationStore,
  OutcomeBatchRecord,
  StoredOutcomeReport,
  StoredUpdate,
  VersionRecord,
} from './store'

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

export function outcomeReport(
  key: string,
  clientId: string,
  experiment = 'e1',
  period = 20_000,
): StoredOutcomeReport {
  return {
    key,
    clientId,
    experiment,
    period,
    body: Uint8Array.from([5, 6, key.length]),
    receivedAtMs: 1_700_000_000_000 + period,
  }
}

export function outcomeBatch(
  id: string,
  experiment = 'e1',
  createdAtMs = 1_700_000_100_000,
): OutcomeBatchRecord {
  return {
    id,
    experiment,
    createdAtMs,
    reports: 2,
    // Not a short binary fraction: the store must keep every bit.
    sigma: Math.PI / 3,
    totals: Uint8Array.from([1, 0, 0, 0, 255, 255, 255, 255, id.length, 0, 0, 0]),
  }
}

/**
 * `open(id)` opens the store named `id`, empty the first time and as it was left afterwards
 * (a SQLite file, a PostgreSQL schema).
 */
export function storeContract(
  name: string,
  open: (id: string) => Promise<FederationStore>,
  /** Bytes of update and outcome report bodies the store `id` still holds, read past the interface. */
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

    it('P30c: accepts an outcome report once per key and one per client, experiment and period', async () => {
      const s = await fresh()
      expect(await s.acceptOutcome(outcomeReport('k1', 'alice'))).toBe('accepted')
      expect(await s.acceptOutcome(outcomeReport('k1', 'alice'))).toBe('duplicate')
      // The key is checked first, whatever else the report names.
      expect(await s.acceptOutcome(outcomeReport('k1', 'alice', 'e1', 20_001))).toBe('duplicate')
      expect(await s.acceptOutcome(outcomeReport('k2', 'alice'))).toBe('client-limit')
      // Another period of the same experiment, or the same period of another, is another report.
      expect(await s.acceptOutcome(outcomeReport('k3', 'alice', 'e1', 20_001))).toBe('accepted')
      expect(await s.acceptOutcome(outcomeReport('k4', 'alice', 'e2'))).toBe('accepted')
      expect(await s.acceptOutcome(outcomeReport('k5', 'bob'))).toBe('accepted')
      expect(await s.outcomeWaiting()).toEqual(
        new Map([
          ['e1', 3],
          ['e2', 1],
        ]),
      )
      expect(await s.waitingOutcomes('e1', 10)).toEqual([
        outcomeReport('k1', 'alice'),
        outcomeReport('k3', 'alice', 'e1', 20_001),
        outcomeReport('k5', 'bob'),
      ])
      expect(await s.waitingOutcomes('e2', 10)).toEqual([outcomeReport('k4', 'alice', 'e2')])
      expect(await s.waitingOutcomes('e3', 10)).toEqual([])
    })

    it('P30c: lists waiting reports in the order they arrived, at most the limit', async () => {
      const s = await fresh()
      for (const [key, client] of [
        ['z', 'a'],
        ['b', 'b'],
        ['x', 'c'],
        ['a', 'd'],
      ])
        await s.acceptOutcome(outcomeReport(key!, client!))
      await s.acceptOutcome(outcomeReport('m', 'a', 'e2'))
      expect((await s.waitingOutcomes('e1', 10)).map((r) => r.key)).toEqual(['z', 'b', 'x', 'a'])
      expect((await s.waitingOutcomes('e1', 2)).map((r) => r.key)).toEqual(['z', 'b'])
      await s.discardOutcomes(['z'])
      await s.acceptOutcome(outcomeReport('c', 'e'))
      expect((await s.waitingOutcomes('e1', 3)).map((r) => r.key)).toEqual(['b', 'x', 'a'])
      expect((await s.waitingOutcomes('e1', 10)).map((r) => r.key)).toEqual(['b', 'x', 'a', 'c'])
    })

    it('P30c: a committed batch consumes its summed and discarded reports and drops their bodies', async () => {
      const s = await fresh()
      for (const [key, client] of [
        ['k1', 'a'],
        ['k2', 'b'],
        ['k3', 'c'],
        ['k4', 'd'],
      ])
        await s.acceptOutcome(outcomeReport(key!, client!))
      await s.acceptOutcome(outcomeReport('k5', 'a', 'e2'))
      expect(await s.commitOutcomeBatch(outcomeBatch('b1'), ['k1', 'k3'], ['k2'])).toBe('committed')
      expect((await s.waitingOutcomes('e1', 10)).map((r) => r.key)).toEqual(['k4'])
      expect(await s.outcomeWaiting()).toEqual(
        new Map([
          ['e1', 1],
          ['e2', 1],
        ]),
      )
      // Only k4's and k5's 3 bytes each are left.
      expect(await bodyBytes(id)).toBe(6)
      const [read] = await s.outcomeBatches()
      expect(read).toEqual(outcomeBatch('b1'))
      expect(Array.from(read!.totals)).toEqual(Array.from(outcomeBatch('b1').totals))
      // The consumed reports still hold their places: one per client, experiment and period.
      expect(await s.acceptOutcome(outcomeReport('k1', 'a'))).toBe('duplicate')
      expect(await s.acceptOutcome(outcomeReport('k6', 'a'))).toBe('client-limit')
      expect(await s.acceptOutcome(outcomeReport('k7', 'b'))).toBe('client-limit')
      expect(await s.acceptOutcome(outcomeReport('k8', 'a', 'e1', 20_001))).toBe('accepted')
      // Batches come oldest first, then by id; per experiment when asked.
      expect(await s.commitOutcomeBatch(outcomeBatch('b3', 'e2', 1), ['k5'], [])).toBe('committed')
      expect(await s.commitOutcomeBatch(outcomeBatch('b0', 'e1', 1), [], ['k4'])).toBe('committed')
      expect((await s.outcomeBatches()).map((b) => b.id)).toEqual(['b0', 'b3', 'b1'])
      expect((await s.outcomeBatches('e1')).map((b) => b.id)).toEqual(['b0', 'b1'])
      expect(await s.outcomeBatches('e3')).toEqual([])
      expect(await s.outcomeWaiting()).toEqual(new Map([['e1', 1]]))
    })

    it('P30c: a batch commit that would count a report wrongly changes nothing', async () => {
      const s = await fresh()
      for (const [key, client] of [
        ['k1', 'a'],
        ['k2', 'b'],
        ['k3', 'c'],
      ])
        await s.acceptOutcome(outcomeReport(key!, client!))
      await s.acceptOutcome(outcomeReport('k4', 'a', 'e2'))
      expect(await s.commitOutcomeBatch(outcomeBatch('b1'), ['k1'], [])).toBe('committed')
      const waiting = await s.waitingOutcomes('e1', 10)
      for (const [record, summed, discarded] of [
        // The batch id taken already.
        [outcomeBatch('b1'), ['k2'], []],
        // A report consumed already, summed or discarded.
        [outcomeBatch('b2'), ['k2', 'k1'], []],
        [outcomeBatch('b2'), ['k2'], ['k1']],
        // An unknown report.
        [outcomeBatch('b2'), ['k2'], ['nope']],
        // A report named twice.
        [outcomeBatch('b2'), ['k2', 'k2'], []],
        [outcomeBatch('b2'), ['k2'], ['k2']],
        // A report of another experiment.
        [outcomeBatch('b2'), ['k2', 'k4'], []],
      ] as const)
        expect(await s.commitOutcomeBatch(record, summed, discarded)).toBe('conflict')
      expect(await s.waitingOutcomes('e1', 10)).toEqual(waiting)
      expect(waiting.map((r) => r.key)).toEqual(['k2', 'k3'])
      expect((await s.waitingOutcomes('e2', 10)).map((r) => r.key)).toEqual(['k4'])
      expect(await s.outcomeBatches()).toEqual([outcomeBatch('b1')])
      expect(await bodyBytes(id)).toBe(9)
      expect(await s.commitOutcomeBatch(outcomeBatch('b2'), ['k2'], ['k3'])).toBe('committed')
      expect(await s.waitingOutcomes('e1', 10)).toEqual([])
    })

    it('P30c: discards waiting reports unsummed, ignoring unknown and consumed keys', async () => {
      const s = await fresh()
      for (const [key, client] of [
        ['k1', 'a'],
        ['k2', 'b'],
        ['k3', 'c'],
      ])
        await s.acceptOutcome(outcomeReport(key!, client!))
      await s.discardOutcomes(['k1', 'nope'])
      await s.discardOutcomes([])
      expect((await s.waitingOutcomes('e1', 10)).map((r) => r.key)).toEqual(['k2', 'k3'])
      expect(await s.commitOutcomeBatch(outcomeBatch('b1'), ['k2'], [])).toBe('committed')
      await s.discardOutcomes(['k2', 'k3', 'k1'])
      expect(await s.waitingOutcomes('e1', 10)).toEqual([])
      expect(await s.outcomeWaiting()).toEqual(new Map())
      expect(await bodyBytes(id)).toBe(0)
      // k2 stays summed by b1; a discarded report can be neither summed nor sent again.
      expect(await s.outcomeBatches()).toEqual([outcomeBatch('b1')])
      expect(await s.commitOutcomeBatch(outcomeBatch('b2'), ['k1'], [])).toBe('conflict')
      expect(await s.acceptOutcome(outcomeReport('k1', 'a'))).toBe('duplicate')
      expect(await s.acceptOutcome(outcomeReport('k9', 'a'))).toBe('client-limit')
    })

    it('P30c: of replicas accepting or committing at once, one wins each race', async () => {
      const s = await fresh()
      // A second connection to the same store, as another replica (or the job thread) has.
      const other = await open(id)
      try {
        const sameKey = await Promise.all(
          [s, other, s, other].map((t) => t.acceptOutcome(outcomeReport('k1', 'a'))),
        )
        expect(sameKey.sort()).toEqual(['accepted', 'duplicate', 'duplicate', 'duplicate'])
        const samePeriod = await Promise.all(
          ['k2', 'k3', 'k4', 'k5'].map((key, i) =>
            (i % 2 ? s : other).acceptOutcome(outcomeReport(key, 'b')),
          ),
        )
        expect(samePeriod.sort()).toEqual([
          'accepted',
          'client-limit',
          'client-limit',
          'client-limit',
        ])
        // k1 and whichever of k2…k5 won wait now.
        const b = (await s.waitingOutcomes('e1', 10))[1]!.key
        const commits = await Promise.all([
          s.commitOutcomeBatch(outcomeBatch('b1'), ['k1', b], []),
          other.commitOutcomeBatch(outcomeBatch('b2'), [b], ['k1']),
          other.commitOutcomeBatch(outcomeBatch('b1'), ['k1', b], []),
        ])
        expect(commits.filter((c) => c === 'committed')).toHaveLength(1)
        expect(await s.outcomeBatches()).toHaveLength(1)
        expect(await other.waitingOutcomes('e1', 10)).toEqual([])
      } finally {
        await other.close()
      }
    })

    it('survives a reopen: outcome reports waiting or consumed, and batches', async () => {
      const s = await fresh()
      for (const [key, client] of [
        ['k1', 'a'],
        ['k2', 'b'],
        ['k3', 'c'],
      ])
        await s.acceptOutcome(outcomeReport(key!, client!))
      await s.commitOutcomeBatch(outcomeBatch('b1'), ['k1'], ['k2'])
      await s.close()
      store = undefined
      const reopened = await fresh(true)
      expect(await reopened.waitingOutcomes('e1', 10)).toEqual([outcomeReport('k3', 'c')])
      expect(await reopened.outcomeWaiting()).toEqual(new Map([['e1', 1]]))
      expect(await reopened.outcomeBatches()).toEqual([outcomeBatch('b1')])
      expect(await reopened.acceptOutcome(outcomeReport('k1', 'a'))).toBe('duplicate')
      expect(await reopened.acceptOutcome(outcomeReport('k9', 'b'))).toBe('client-limit')
      expect(await reopened.commitOutcomeBatch(outcomeBatch('b1'), ['k3'], [])).toBe('conflict')
      expect(await reopened.acceptOutcome(outcomeReport('k4', 'd'))).toBe('accepted')
      expect((await reopened.waitingOutcomes('e1', 10)).map((r) => r.key)).toEqual(['k3', 'k4'])
    })
  })
}
