// A/B arms in a real browser (P30): the demo storefront built and served for real, its manifest
// naming a holdout experiment; each fresh Chromium profile is a new device. A device's arm shows
// in its lists' attribution ids, is the keyed hash of the id it keeps in IndexedDB, and stays the
// same across reloads.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { placeDevice } from '../../shared/experiments'
import type { ManifestExperiment } from '../../shared/protocol'
import { chromiumSkipReason } from './harness'
import {
  buildDist,
  exportSampleRelease,
  openProfile,
  readStoredRecord,
  serveDist,
} from './tag-page'

const skip = chromiumSkipReason()
const holdout: ManifestExperiment = {
  id: 'holdout',
  key: 'browser-test',
  arms: [
    { name: 'model', share: 1, lists: 'model' },
    { name: 'pools', share: 1, lists: 'pools' },
  ],
}

let work: string
let served: { origin: string; close(): void }

/** The for-you shelf's attribution id, once the shelf is filled. */
async function forYouAttribution(page: Page): Promise<string> {
  await page.waitForFunction(
    () => document.getElementById('shelf-for-you')?.dataset.attribution,
    undefined,
    {
      timeout: 60_000,
    },
  )
  return page.evaluate(() => document.getElementById('shelf-for-you')!.dataset.attribution!)
}

/** The device's kept experiment record, read from its IndexedDB. */
async function keptRecord(page: Page): Promise<{ deviceId: string; arms: unknown[] }> {
  return (await readStoredRecord(page, 'meta', 'experiments')) as {
    deviceId: string
    arms: unknown[]
  }
}

describe.skipIf(skip)('A/B arms in headless Chromium (P30)', () => {
  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'pocketrec-arms-'))
    await exportSampleRelease(path.join(work, 'public'))
    const artifacts = path.join(work, 'public', 'artifacts')
    // The manifest as the server publishes it after PUT /v1/admin/experiments.
    const manifestFile = path.join(artifacts, 'manifest.json')
    const manifest = JSON.parse(await readFile(manifestFile, 'utf8'))
    await writeFile(manifestFile, JSON.stringify({ ...manifest, experiments: [holdout] }))
    await buildDist(path.join(work, 'public'), path.join(work, 'dist'))
    served = await serveDist(path.join(work, 'dist'))
  }, 180_000)

  afterAll(async () => {
    served?.close()
    if (work) await rm(work, { recursive: true, force: true })
  })

  it('places each device by the keyed hash of its kept id, and keeps the arm across reloads', async () => {
    const arms = new Set<string>()
    for (let device = 0; device < 16 && arms.size < 2; device++) {
      const log: string[] = []
      const { page, close } = await openProfile(log)
      try {
        await page.goto(`${served.origin}/`)
        await page.click('#consent-yes')
        const first = await forYouAttribution(page)
        const arm = /^[0-9a-f]{32}\.holdout:(model|pools)$/.exec(first)?.[1]
        expect(arm, `${first}\n${log.join('\n')}`).toBeDefined()
        const kept = await keptRecord(page)
        expect(kept.deviceId).toMatch(/^[A-Za-z0-9_-]{22}$/)
        expect(holdout.arms[placeDevice(holdout, kept.deviceId).arm]!.name).toBe(arm)
        expect(kept.arms).toEqual([{ experiment: 'holdout', key: 'browser-test', arm }])
        for (let reload = 0; reload < 2; reload++) {
          await page.reload()
          const again = await forYouAttribution(page)
          expect(again).not.toBe(first) // a new list
          expect(again.endsWith(`.holdout:${arm}`)).toBe(true)
        }
        expect((await keptRecord(page)).deviceId).toBe(kept.deviceId)
        arms.add(arm!)
      } finally {
        await close()
      }
    }
    // Sixteen devices all in one arm of two: a 1-in-32,768 fluke, or a broken hash. The loop
    // stops at the first device of the second arm (three devices on average).
    expect([...arms].sort()).toEqual(['model', 'pools'])
  }, 300_000)
})
