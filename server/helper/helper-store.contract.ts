// The behaviour every HelperStore must have, run against SQLite and PostgreSQL alike
// (helper-store.test.ts). Each test opens a fresh, empty store.
import { afterEach, describe, expect, it } from 'vitest'
import { KEEP_BATCH_ANSWERS, type BatchRecord, type HelperStore } from './helper-store'

const body = (n: number) => Uint8Array.from({ length: 40 }, (_, i) => (n * 7 + i) & 255)
/** A bound on waiting bodies that the tests but one never reach. */
const MANY = 1_000_000
const batch = (id: string, n = 1): BatchRecord => ({
  id,
  requestSha256: id.padEnd(64, '0'),
  answer: Uint8Array.of(n, n, n),
  createdAtMs: 1_700_000_000_000 + n,
})

export function helperStoreContract(name: string, open: (id: string) => Promise<HelperStore>) {
  describe(`HelperStore contract (${name})`, () => {
    let store: HelperStore | undefined
    let opened = 0
    const fresh = async () => (store = await open(`helper_contract_${opened++}`))
    afterEach(async () => {
      await store?.close()
      store = undefined
    })

    it('stores a share once: a second body under the same key changes nothing', async () => {
      const s = await fresh()
      expect(await s.putShare('a', body(1), 10, MANY)).toBe('accepted')
      expect(await s.putShare('a', body(2), 11, MANY)).toBe('duplicate')
      expect(await s.shares(['a', 'unknown'])).toEqual([
        { key: 'a', body: body(1), receivedAtMs: 10, batch: null },
      ])
    })

    it('refuses a body while `maxWaiting` wait, and takes one again once a batch consumed some', async () => {
      const s = await fresh()
      expect(await s.putShare('a', body(1), 10, 2)).toBe('accepted')
      expect(await s.putShare('b', body(2), 10, 2)).toBe('accepted')
      expect(await s.putShare('c', body(3), 10, 2)).toBe('full')
      // A known key is a duplicate, full or not.
      expect(await s.putShare('a', body(1), 10, 2)).toBe('duplicate')
      expect(await s.shares(['c'])).toEqual([])
      expect(await s.commitBatch(batch('b1'), ['a'])).toBe('committed')
      expect(await s.putShare('c', body(3), 10, 2)).toBe('accepted')
      expect((await s.counts()).waiting).toBe(2)
    })

    it('commits a batch: its shares consumed and their bodies dropped, the answer kept', async () => {
      const s = await fresh()
      for (const key of ['a', 'b', 'c']) await s.putShare(key, body(key.length), 10, MANY)
      expect(await s.commitBatch(batch('b1'), ['a', 'b'])).toBe('committed')
      const byKey = new Map((await s.shares(['a', 'b', 'c'])).map((share) => [share.key, share]))
      expect(byKey.get('a')).toMatchObject({ batch: 'b1', body: new Uint8Array(0) })
      expect(byKey.get('b')).toMatchObject({ batch: 'b1', body: new Uint8Array(0) })
      expect(byKey.get('c')).toMatchObject({ batch: null, body: body(1) })
      expect(await s.batch('b1')).toEqual(batch('b1'))
      expect(await s.counts()).toEqual({ waiting: 1, consumed: 2, batches: 1 })
    })

    it('refuses, changing nothing, a batch that reuses an id or a consumed or unknown share', async () => {
      const s = await fresh()
      for (const key of ['a', 'b', 'c']) await s.putShare(key, body(key.length), 10, MANY)
      expect(await s.commitBatch(batch('b1'), ['a'])).toBe('committed')
      expect(await s.commitBatch(batch('b1', 2), ['b'])).toBe('conflict')
      expect(await s.commitBatch(batch('b2'), ['c', 'a'])).toBe('conflict')
      expect(await s.commitBatch(batch('b3'), ['c', 'unknown'])).toBe('conflict')
      expect(await s.batch('b1')).toEqual(batch('b1'))
      expect(await s.batch('b2')).toBeNull()
      expect(await s.counts()).toEqual({ waiting: 2, consumed: 1, batches: 1 })
      expect((await s.shares(['c']))[0]).toMatchObject({ batch: null, body: body(1) })
    })

    it(`keeps the answers of the newest ${KEEP_BATCH_ANSWERS} batches only`, async () => {
      const s = await fresh()
      const ids = Array.from({ length: KEEP_BATCH_ANSWERS + 2 }, (_, i) => `b${i}`)
      for (const [i, id] of ids.entries()) {
        await s.putShare(`k${i}`, body(i), 10, MANY)
        expect(await s.commitBatch(batch(id, i), [`k${i}`])).toBe('committed')
      }
      const answers = await Promise.all(ids.map(async (id) => (await s.batch(id))!.answer.length))
      expect(answers).toEqual([0, 0, ...Array(KEEP_BATCH_ANSWERS).fill(3)])
    })

    it('drops waiting shares received before a time, never consumed ones', async () => {
      const s = await fresh()
      await s.putShare('old', body(1), 10, MANY)
      await s.putShare('used', body(2), 10, MANY)
      await s.putShare('new', body(3), 30, MANY)
      await s.commitBatch(batch('b1'), ['used'])
      expect(await s.dropWaiting(20)).toBe(1)
      expect((await s.shares(['old', 'used', 'new'])).map((share) => share.key).sort()).toEqual([
        'new',
        'used',
      ])
    })
  })
}
