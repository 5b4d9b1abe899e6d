// The demo storefront end to end, every part real: artifacts exported by the trainer, the vite
// build of the demo and worker, the script tag, the Hono server on 127.0.0.1, Debian Chromium
// with real IndexedDB. Every request the page sends is captured: none may carry a viewed id.
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CHROMIUM_ARGS, CHROMIUM_PATH, chromiumSkipReason } from './harness'
import { buildDist, exportSampleRelease, serveDist } from './tag-page'

const SCREENSHOTS = path.resolve('test-results/screenshots')
const skip = chromiumSkipReason()

let work: string
let served: { origin: string; close(): void }
let origin: string
let context: BrowserContext
let page: Page
/** Every request the browser sent: method, URL without fragment, body. */
const requestBodies: string[] = []

async function shelfIds(id: string): Promise<string[]> {
  const list = page.locator(`#shelf-${id}`)
  await page.waitForFunction(
    (sel) =>
      document.querySelector(sel)?.getAttribute('aria-busy') === null &&
      document.querySelectorAll(`${sel} li`).length > 0,
    `#shelf-${id}`,
    { timeout: 60_000 },
  )
  return list
    .locator('a[data-product]')
    .evaluateAll((links) => links.map((a) => (a as HTMLElement).dataset.product!))
}

async function pocketrecDatabases(): Promise<string[]> {
  return page.evaluate(async () =>
    (await indexedDB.databases()).map((d) => d.name ?? '').filter((n) => n.startsWith('pocketrec')),
  )
}

describe.skipIf(skip)('demo storefront in headless Chromium', () => {
  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'pocketrec-e2e-'))
    const publicDir = path.join(work, 'public')
    await exportSampleRelease(publicDir)
    const distDir = path.join(work, 'dist')
    await buildDist(publicDir, distDir)
    served = await serveDist(distDir)
    origin = served.origin
    context = await chromium.launchPersistentContext(path.join(work, 'profile'), {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1300, height: 900 },
    })
    context.on('request', (request) => {
      // The fragment (#/product/…) never leaves the browser; everything else does.
      const url = new URL(request.url())
      url.hash = ''
      requestBodies.push(`${request.method()} ${url.href}\n${request.postData() ?? ''}`)
    })
    page = context.pages()[0] ?? (await context.newPage())
    await mkdir(SCREENSHOTS, { recursive: true })
  }, 180_000)

  afterAll(async () => {
    await context?.close()
    served?.close()
    if (work) await rm(work, { recursive: true, force: true })
  })

  it('stores nothing before consent, then recommends and reacts to the session', async () => {
    await page.goto(`${origin}/`)
    await page.waitForSelector('#consent:not([hidden])')
    expect(await pocketrecDatabases()).toEqual([])
    // Issue 14: before consent the shelves stay out of sight, with no error text for shoppers.
    await page.waitForFunction(() => document.querySelectorAll('.shelf[hidden]').length === 3)
    expect(await page.locator('#page').innerText()).not.toMatch(/Error|unavailable/)

    await page.click('#consent-yes')
    const coldStart = await shelfIds('for-you')
    expect(coldStart.length).toBeGreaterThan(0)
    await expect
      .poll(() => page.locator('#panel-backend').innerText(), { timeout: 30_000 })
      .toMatch(/^(wasm|cpu|webgl|webgpu)$/)
    await page.screenshot({ path: path.join(SCREENSHOTS, 'home.png') })

    // Browse: open two products from the trending shelf; the visit's list must change.
    const trending = await shelfIds('trending')
    const viewed = trending.slice(0, 2)
    for (const id of viewed) {
      await page.goto(`${origin}/#/product/${encodeURIComponent(id)}`)
      // Issue 14: the product page's three shelves, requested together, share no item.
      const shelves = await Promise.all(
        ['similar', 'frequently-bought-together', 'for-you'].map((shelf) => shelfIds(shelf)),
      )
      expect(shelves[0]!.length).toBeGreaterThan(0)
      const all = shelves.flat()
      expect(new Set(all).size).toBe(all.length)
    }
    await page.screenshot({ path: path.join(SCREENSHOTS, 'product.png') })
    await page.locator('#panel').screenshot({ path: path.join(SCREENSHOTS, 'panel.png') })
    await page.goto(`${origin}/#/`)
    const afterBrowsing = await shelfIds('for-you')
    expect(afterBrowsing).not.toEqual(coldStart)
    expect(afterBrowsing).not.toContain(viewed.at(-1))

    // A reload keeps the history: the recently-viewed shelf lists what was opened, newest first.
    await page.reload()
    const recent = await shelfIds('recently-viewed')
    expect(recent.slice(0, 2)).toEqual([...viewed].reverse())
    expect(await pocketrecDatabases()).toEqual(['pocketrec'])

    // Nothing the page sent (URLs and bodies) carries an id the shopper viewed.
    expect(requestBodies.length).toBeGreaterThan(5)
    for (const sent of requestBodies) for (const id of viewed) expect(sent).not.toContain(id)
  }, 180_000)

  it('forget deletes the on-device database', async () => {
    await page.click('#forget')
    await page.waitForLoadState('load')
    await expect.poll(() => pocketrecDatabases(), { timeout: 30_000 }).toEqual([])
  }, 60_000)
})
