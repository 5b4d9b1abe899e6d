// Outcome reports from a real browser (P30c): the script tag in Debian Chromium, the leader and
// a helper mounted on it as `npm start` runs them, an experiment the operator started. A shopper
// sees lists and clicks one; when the day has ended (the test moves the stored period back a day
// in IndexedDB) the worker's next federated round closes the day into a report and sends its two
// bodies. What crosses the wire names no product; the leader batches the report with the helper,
// after which neither server holds a per-device row; the operator page shows the arms' rates.
// Both arms explore: the report's exploration section (P30f) travels the same way, and the
// fleet's sums come back on a public route the worker asks.
import Database from 'better-sqlite3'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { reportCells } from '../../shared/outcome-report'
import { outcomeBodyBytes } from '../../shared/outcome-transport'
import { setNodeBackend } from '../../model/node-backend'
import type { MountedPair } from '../fixtures/listen'
import { chromiumSkipReason } from './harness'
import { openProfile, startFederatedShop, waitForTag } from './tag-page'

const skip = chromiumSkipReason()
let work: string
let pair: MountedPair | undefined
let productIds: string[]

type Command = (name: string, ...args: unknown[]) => Promise<unknown>

/** The worker's outcomes record, read (and with `back`, its period moved back a day) in IndexedDB. */
function outcomesRecord(
  page: Page,
  back = false,
): Promise<{
  period: number
  counters: Array<{ counts: number[]; explored?: Array<[number, number, number]> }>
  reports: unknown[]
}> {
  return page.evaluate(
    (back) =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open('pocketrec')
        open.onerror = () => reject(open.error)
        open.onsuccess = () => {
          const store = open.result.transaction('meta', 'readwrite').objectStore('meta')
          const get = store.get('outcomes')
          get.onerror = () => reject(get.error)
          get.onsuccess = () => {
            const record = get.result
            if (back && record) store.put({ ...record, period: record.period - 1 })
            resolve(record)
          }
        }
      }),
    back,
  )
}

describe.skipIf(skip)('outcome reports from the script tag (P30c)', () => {
  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'pocketrec-outcomes-browser-'))
    await setNodeBackend('cpu')
    const shop = await startFederatedShop(work, {
      settings: { outcomes: { minBatch: 1, sigma: 1 } },
    })
    pair = shop.pair
    productIds = shop.viewed.map((item) => item.id)
    const started = await fetch(`${pair.origin}/v1/admin/experiments`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${pair.federation.adminToken!}` },
      body: JSON.stringify({
        type: 'pocketrec-experiments',
        experiments: [
          {
            id: 'holdout',
            key: 'browser-outcomes',
            arms: [
              { name: 'model', share: 1, lists: 'model', explore: 0.5 },
              { name: 'pools', share: 1, lists: 'pools', explore: 0.5 },
            ],
          },
        ],
      }),
    })
    expect(started.status).toBe(201)
  }, 180_000)

  afterAll(async () => {
    await pair?.close()
    if (work) await rm(work, { recursive: true, force: true })
  })

  it('sends a day’s counts as two product-free bodies, summed by both servers, shown to the operator', async () => {
    const { origin, store, federation, helper } = pair!
    const log: string[] = []
    const profile = await openProfile(log)
    const bodies: Array<{ url: string; body: Buffer }> = []
    const asked: string[] = []
    profile.context.on('request', (request) => {
      asked.push(new URL(request.url()).pathname)
      const body = request.postDataBuffer()
      if (body) bodies.push({ url: request.url(), body })
    })
    try {
      await profile.page.goto(`${origin}/shop.html`)
      await waitForTag(profile.page)
      const attribution = await profile.page.evaluate(async (ids) => {
        const pocketrec = (window as unknown as { pocketrec: Command }).pocketrec
        await pocketrec('consent', true)
        await pocketrec('track', 'Product Viewed', { product_id: ids[0] })
        const list = (await pocketrec('recommend', { scenario: 'similar', productId: ids[0], limit: 4 })) as { attributionId: string; items: Array<{ productId: string; source: string }> } // prettier-ignore
        // Half of the list explores (P30e): the shopper clicks an explored item.
        const explored = list.items.filter((item) => item.source === 'explore')
        await pocketrec('track', 'Product Clicked', { product_id: explored[0]!.productId }, { attribution_id: list.attributionId }) // prettier-ignore
        return { id: list.attributionId, explored: explored.map((item) => item.productId) }
      }, productIds)
      expect(attribution.id, log.join('\n')).toMatch(/\.holdout:(model|pools)$/)
      expect(attribution.explored).toHaveLength(2)
      const counted = await outcomesRecord(profile.page)
      expect(counted.counters).toHaveLength(1)
      expect(counted.counters[0]!.counts.some((n) => n > 0)).toBe(true)
      // P30f: the two explored items' impressions and the click, by bucket only.
      expect(counted.counters[0]!.explored!.reduce((sum, [, shown, clicks]) => sum + shown + clicks, 0)).toBe(3) // prettier-ignore

      // The day ends: the next round closes it into a report and sends both bodies.
      await outcomesRecord(profile.page, true)
      await profile.page.evaluate(async (id) => {
        const pocketrec = (window as unknown as { pocketrec: Command }).pocketrec
        await pocketrec('track', 'Product Viewed', { product_id: id })
      }, productIds[1])
      await expect
        .poll(async () => [...(await store.outcomeWaiting()).values()], { timeout: 60_000 })
        .toEqual([1])
      await expect.poll(async () => (await outcomesRecord(profile.page)).reports).toEqual([])

      const leaderBodies = bodies.filter((b) => b.url.endsWith('/v1/outcomes'))
      expect(leaderBodies).toHaveLength(1)
      expect(leaderBodies[0]!.body.length).toBe(outcomeBodyBytes(reportCells(2), 0))
      const helperBodies = bodies.filter(
        (b) => b.url.endsWith('/helper/v1/shares') && b.body.length === outcomeBodyBytes(reportCells(2), 1), // prettier-ignore
      )
      expect(helperBodies).toHaveLength(1)
      // No request of the device names a product it saw or clicked (the shop's own page loads
      // aside: these are the bodies the tag sent).
      for (const { url, body } of bodies) {
        for (const id of productIds) expect(`${url} ${body.toString('latin1')}`).not.toContain(id)
      }

      expect(await federation.outcomesNow()).toMatchObject([{ status: 'released', reports: 1 }])
      // The fleet's counts, public after the batch, noised by the helper's half (P30f); the
      // worker asks for them for its next exploring list, once the model is in.
      const fleet = await (await fetch(`${origin}/v1/exploration`)).json()
      expect(fleet).toMatchObject({ buckets: 1024, batches: 1, reports: 1 })
      expect(fleet.noise.shown).toBeGreaterThan(0)
      await profile.page.evaluate(async (id) => {
        const pocketrec = (window as unknown as { pocketrec: Command }).pocketrec
        await pocketrec('recommend', { scenario: 'similar', productId: id, limit: 4 })
      }, productIds[1])
      await expect.poll(() => asked.filter((p) => p === '/v1/exploration').length).toBe(1)
      const leaderDb = new Database(path.join(work, 'server.db'), { readonly: true })
      const rows = leaderDb
        .prepare('SELECT length(body) AS bytes FROM outcome_reports')
        .all() as Array<{ bytes: number }>
      leaderDb.close()
      expect(rows).toEqual([{ bytes: 0 }])
      expect((await helper.store.counts()).consumed).toBeGreaterThanOrEqual(1)

      await profile.page.goto(`${origin}/operator.html`)
      await profile.page.fill('#token', federation.adminToken!)
      await profile.page.click('button[type=submit]')
      await profile.page.getByText('holdout: 1 device reports in 1 batches').waitFor()
      const results = await profile.page.locator('#results').textContent()
      expect(results).toContain('click-through (clicks per list)')
      expect(results).toContain('model')
      expect(results).toContain('always-valid')
    } finally {
      await profile.close()
    }
  }, 180_000)
})
