// The two-server channel through the script tag, in Debian Chromium (PROTOCOL.md P29–P29c): a
// shopper browses, the worker trains from the global weights, splits its update into two share
// bodies and posts the helper's to the helper (mounted at /helper, as `npm start` runs its
// stand-in) and the leader's to the leader; the leader publishes v2 from the two servers' shares,
// and v2's popularity counts are exactly the items the shopper viewed. Every request the page
// makes is captured: none may carry a product id the shopper viewed.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodePopularityState } from '../../server/federated/popularity'
import type { Federation } from '../../server/federated/service'
import type { Helper } from '../../server/helper/service'
import type { FederationStore } from '../../server/storage/store'
import { setNodeBackend } from '../../model/node-backend'
import type { MountedPair } from '../fixtures/listen'
import { chromiumSkipReason } from './harness'
import { openProfile, startFederatedShop, waitForTag } from './tag-page'

const skip = chromiumSkipReason()
let work: string
let store: FederationStore
let federation: Federation
let helper: Helper
let origin: string
let pair: MountedPair | undefined
let productIds: string[]
let productIndices: number[]

describe.skipIf(skip)('the two-server channel through the script tag (P29c)', () => {
  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'pocketrec-secure-browser-'))
    await setNodeBackend('cpu')
    const shop = await startFederatedShop(work)
    pair = shop.pair
    const { viewed } = shop
    productIds = viewed.map((item) => item.id)
    productIndices = viewed.map((item) => item.index)
    ;({ origin, store, federation } = pair)
    helper = pair.helper
  }, 180_000)

  afterAll(async () => {
    await pair?.close()
    if (work) await rm(work, { recursive: true, force: true })
  })

  it('sends one body to each server, publishes v2 from their shares, and no request names a viewed product', async () => {
    const log: string[] = []
    const profile = await openProfile(log)
    const requests: { url: string; body: Buffer | null }[] = []
    profile.context.on('request', (request) =>
      requests.push({ url: request.url(), body: request.postDataBuffer() }),
    )
    try {
      await profile.page.goto(`${origin}/shop.html`)
      await waitForTag(profile.page)
      await profile.page.evaluate(async (ids) => {
        type Command = (name: string, ...args: unknown[]) => Promise<unknown>
        const pocketrec = (window as unknown as { pocketrec: Command }).pocketrec
        await pocketrec('consent', true)
        for (const id of ids) await pocketrec('track', 'Product Viewed', { product_id: id })
      }, productIds)
      await expect
        .poll(async () => await store.acceptedCount(), { timeout: 90_000, interval: 500 })
        .toBe(1)
      expect(await helper.store.counts()).toEqual({ waiting: 1, consumed: 0, batches: 0 })
      const toHelper = () => requests.filter((r) => r.url === `${origin}/helper/v1/shares`)
      const toLeader = () => requests.filter((r) => r.url === `${origin}/v1/updates`)
      // The servers run in this process: on a busy machine the leader can accept the body
      // before Playwright has told this process about the request that carried it.
      await expect
        .poll(() => toHelper().length + toLeader().length, { timeout: 10_000, interval: 100 })
        .toBeGreaterThanOrEqual(2)
      expect(toHelper()).toHaveLength(1)
      expect(toLeader()).toHaveLength(1)
      for (const { body } of [...toHelper(), ...toLeader()])
        expect(body!.length).toBeLessThanOrEqual(64 * 1024)

      expect(await federation.publishNow()).toMatchObject({ status: 'published', updates: 1 })
      expect(await helper.store.counts()).toEqual({ waiting: 0, consumed: 1, batches: 1 })
      // P29: the combined per-row counts are exactly the rows the device trained: its viewed items.
      const v2 = (await store.current())!
      expect(v2.version).toBe(2)
      const popularity = decodePopularityState(
        (await store.artifact(v2.manifest.popularity!.sha256))!,
      )
      const counted = Array.from(popularity.total.keys()).filter((i) => popularity.total[i] !== 0)
      expect(counted).toEqual([...productIndices].sort((a, b) => a - b))
      expect(counted.every((i) => popularity.total[i] === 1)).toBe(true)

      await profile.page.reload()
      await waitForTag(profile.page)
      const version = await profile.page.evaluate(async () => {
        type Command = (name: string, ...args: unknown[]) => Promise<unknown>
        const pocketrec = (window as unknown as { pocketrec: Command }).pocketrec
        await pocketrec('consent', true)
        await pocketrec('recommend', { scenario: 'trending', limit: 3 })
        return ((await pocketrec('status')) as { worker: { modelVersion: string } }).worker
          .modelVersion
      })
      expect(version, log.join('\n')).toBe('v2')
      for (const id of productIds) {
        const carrying = requests.filter(
          (r) => r.url.includes(id) || r.body?.toString('latin1').includes(id),
        )
        expect(
          carrying.map((r) => r.url),
          `a request carried ${id}`,
        ).toEqual([])
      }
    } finally {
      await profile.close()
    }
  }, 150_000)
})
