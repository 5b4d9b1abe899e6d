// The widgets in Debian Chromium against the real server (issue 14): the tag fetches the widgets
// bundle (dist/pocketrec-widgets.js) only once a widget has items to show, from its own origin
// or another's (CORS), shows each product's picture with its box reserved before it loads, and
// renders a shop's item template whose clicks still carry the list's attribution id.
import { catalogueFrom } from '../fixtures/read-artifact'
import { decodePools, encodeCatalogue, encodePools } from '../../shared/compact-artifacts'
import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { setNodeBackend } from '../../model/node-backend'
import { artifactName } from '../../shared/artifacts'
import type { ModelManifest } from '../../shared/protocol'
import { writeTestRelease } from '../fixtures/exported-release'
import { chromiumSkipReason } from './harness'
import { buildDist, openProfile, serveDist, waitForTag } from './tag-page'

const skip = chromiumSkipReason()
/** A function template (#mine) and, for pages that run no code, a <template> in the element. */
const BODY =
  '<div id="recs">Our bestsellers</div><div id="mine"></div>' +
  '<pocketrec-recs scenario="trending" limit="2"><template><a class="t" data-pocketrec-href="url">' +
  '<img data-pocketrec-src="imageUrl" alt=""><span data-pocketrec-text="name"></span>' +
  '<i data-pocketrec-text="constructor"></i></a></template>Our picks</pocketrec-recs>'

let work: string
let server: { origin: string; close(): void }
let shop: { server: Server; origin: string }

/** Gives every product of the release's catalogue a picture (a path on the shop's server). */
async function addImages(artifacts: string): Promise<void> {
  const manifestFile = path.join(artifacts, 'manifest.json')
  const manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as ModelManifest
  const catalogue = catalogueFrom(await readFile(path.join(artifacts, manifest.catalogue.url)))
  for (const item of catalogue.items) item.imageUrl = `/images/${encodeURIComponent(item.id)}.jpg`
  // The pools carry the first lists' catalogue entries (P2c): they get their pictures too.
  const pools = decodePools(await readFile(path.join(artifacts, manifest.pools.url)))
  if (!pools.ok) throw new Error(pools.error)
  for (const [kind, bytes] of [
    ['catalogue', encodeCatalogue(catalogue)],
    ['pools', encodePools(pools.value.pools, catalogue)],
  ] as const) {
    const sha256 = createHash('sha256').update(bytes).digest('hex')
    const url = artifactName(sha256, kind, 'bin')
    await writeFile(path.join(artifacts, url), bytes)
    manifest[kind] = { url, sha256, bytes: bytes.length }
  }
  await writeFile(manifestFile, JSON.stringify(manifest))
}

const page = (tagOrigin: string) =>
  '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>shop</title>' +
  '<script>window.pocketrec = window.pocketrec || []</script>' +
  `<script async src="${tagOrigin}/pocketrec.js" data-site="test-shop" data-endpoint="${tagOrigin}/" data-backend="wasm"></script>\n` +
  BODY

interface Seen {
  before: string
  widgetsFetchedBefore: number
  statuses: string[]
  widgetsFetched: number
  images: Array<{ src: string | null; alt: string | null; loading: string | null; height: number }>
  names: string[]
  template: { cards: number; text: string; select: unknown; attribution: string | null }
  element: { before: string; cards: Array<{ src: string | null; name: string; proto: string }> }
}

/** In the page: render before consent, then after, then with a template; what the page shows. */
async function renderWidgets(): Promise<Seen> {
  type Command = (name: string, ...args: unknown[]) => Promise<{ status: string }>
  const pocketrec = (window as unknown as { pocketrec: Command }).pocketrec
  const fetched = () =>
    performance
      .getEntriesByType('resource')
      .filter((entry) => entry.name.endsWith('/pocketrec-widgets.js')).length
  const recs = document.querySelector('#recs')!
  const element = document.querySelector('pocketrec-recs')!
  const elementBefore = element.textContent ?? ''
  const waiting = await pocketrec('render', { slot: 'trending', el: '#recs', limit: 4 })
  const before = `${waiting.status}: ${recs.textContent}`
  const widgetsFetchedBefore = fetched()
  await pocketrec('consent', true)
  const statuses = [(await pocketrec('render', { slot: 'trending', el: '#recs', limit: 4 })).status]
  const images = [...recs.querySelectorAll('img')].map((img) => ({
    src: img.getAttribute('src'),
    alt: img.getAttribute('alt'),
    loading: img.getAttribute('loading'),
    // The pictures do not exist: their box must hold its shape anyway.
    height: img.getBoundingClientRect().height,
  }))
  const names = [...recs.querySelectorAll('.pocketrec-name')].map((el) => el.textContent ?? '')
  let select: unknown = null
  const mine = document.querySelector('#mine')!
  mine.addEventListener('pocketrec:select', (event) => (select = (event as CustomEvent).detail))
  const rendered = await pocketrec('render', {
    slot: 'trending',
    el: '#mine',
    limit: 3,
    // `h`, not `html`: prettier would reformat an html`…` literal, spaces and all.
    template: (
      item: { name: string; imageUrl?: string; position: number },
      { html: h }: { html: (s: TemplateStringsArray, ...v: unknown[]) => string },
    ) => h`<button class="card"><img src="${item.imageUrl}" alt="">${item.name}</button>`,
  })
  statuses.push(rendered.status)
  const cards = mine.querySelectorAll('button.card')
  ;(cards[2] as HTMLButtonElement).click()
  // The element renders by itself once consent is given.
  for (let waited = 0; !element.querySelector('section') && waited < 10_000; waited += 50) {
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return {
    before,
    widgetsFetchedBefore,
    statuses,
    widgetsFetched: fetched(),
    images,
    names,
    template: {
      cards: cards.length,
      text: cards[0]!.textContent ?? '',
      select,
      attribution: mine.querySelector('section')!.getAttribute('data-attribution-id'),
    },
    element: {
      before: elementBefore,
      cards: [...element.querySelectorAll('a.t')].map((a) => ({
        src: a.querySelector('img')?.getAttribute('src') ?? null,
        name: a.querySelector('span')?.textContent ?? '',
        proto: a.querySelector('i')?.textContent ?? '',
      })),
    },
  }
}

describe.skipIf(skip)('the widgets in headless Chromium', () => {
  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'pocketrec-widgets-'))
    await setNodeBackend('cpu')
    const publicDir = path.join(work, 'public')
    await writeTestRelease(16, path.join(publicDir, 'artifacts'))
    await addImages(path.join(publicDir, 'artifacts'))
    const distDir = path.join(work, 'dist')
    await buildDist(publicDir, distDir)
    server = await serveDist(distDir)
    await writeFile(path.join(distDir, 'widgets.html'), page(''))
    const http = createServer((_, res) =>
      res.writeHead(200, { 'content-type': 'text/html' }).end(page(server.origin)),
    )
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
    shop = { server: http, origin: `http://127.0.0.1:${(http.address() as AddressInfo).port}` }
  }, 120_000)

  afterAll(async () => {
    server?.close()
    shop?.server.close()
    if (work) await rm(work, { recursive: true, force: true })
  })

  for (const where of ['the shop’s origin', 'another origin'] as const) {
    it(`renders pictures and both kinds of item template, fetching the widgets only once there is something to show, with the tag from ${where}`, async () => {
      const log: string[] = []
      const profile = await openProfile(log)
      try {
        const url = where === 'another origin' ? `${shop.origin}/` : `${server.origin}/widgets.html`
        await profile.page.goto(url)
        await waitForTag(profile.page)
        const seen = await profile.page.evaluate(renderWidgets)
        expect(seen.before, log.join('\n')).toBe('waiting-for-consent: Our bestsellers')
        expect(seen.widgetsFetchedBefore).toBe(0)
        expect(seen.statuses, log.join('\n')).toEqual(['rendered', 'rendered'])
        expect(seen.widgetsFetched).toBe(1)
        expect(seen.images).toHaveLength(4)
        for (const image of seen.images) {
          expect(image).toMatchObject({ alt: '', loading: 'lazy' })
          expect(image.src).toMatch(/^\/images\/.+\.jpg$/)
          expect(image.height).toBeGreaterThan(50)
        }
        expect(seen.names.every((name) => name.length > 0)).toBe(true)
        // The shop's template, parsed by the browser, and its click credited to the list.
        expect(seen.template.cards).toBe(3)
        expect(seen.template.text).toBe(seen.names[0])
        expect(seen.template.select).toMatchObject({
          attributionId: seen.template.attribution,
          scenario: 'trending',
        })
        expect(seen.template.attribution).toMatch(/^[0-9a-f]{32}$/)
        // <pocketrec-recs> with the shop's own <template>, filled by attribute.
        expect(seen.element.before).toBe('Our picks')
        expect(seen.element.cards).toHaveLength(2)
        for (const card of seen.element.cards) {
          expect(card.src).toMatch(/^\/images\/.+\.jpg$/)
          expect(card.name.length).toBeGreaterThan(0)
          // A field name that is no field of the item shows nothing, not the prototype's.
          expect(card.proto).toBe('')
        }
        expect(seen.widgetsFetched).toBe(1)
      } finally {
        await profile.close()
      }
    }, 90_000)
  }
})
