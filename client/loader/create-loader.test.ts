import { afterEach, describe, expect, it, vi } from 'vitest'
import { createLoader, type LoaderOptions } from './create-loader'
import type { PrivacyNavigator } from './privacy-signals'
import type { StatusError } from '../../shared/protocol'
import type { PocketrecWorkerApi } from '../worker/api'
import type { WorkerConnection } from './start-worker'
import * as widgets from './widgets'
import {
  asElement,
  createFakeWindow,
  createFakeWorker,
  fakeResponse,
  FakeDocument,
  FakeElement,
  flush,
  type FakeWindow,
} from './test-fakes'

const OPTIONS: LoaderOptions = { site: 'shop-1', endpoint: 'https://api.example' }
/** The widgets bundle, as the tag's `import()` would give it. */
const loadWidgets = () => Promise.resolve(widgets)

function setUp(
  options: {
    navigator?: PrivacyNavigator
    loader?: Partial<LoaderOptions>
    databases?: string[] | null
    idleCallback?: boolean
    items?: number
    loadWidgets?: () => Promise<typeof widgets>
    error?: StatusError
  } = {},
) {
  const win = createFakeWindow({ databases: options.databases, idleCallback: options.idleCallback })
  const worker = createFakeWorker({ items: options.items, error: options.error })
  const loader = createLoader({
    options: { ...OPTIONS, ...options.loader },
    window: win,
    navigator: options.navigator ?? {},
    startWorker: worker.startWorker,
    loadWidgets: options.loadWidgets ?? loadWidgets,
  })
  return { win, worker, loader }
}

/** Consent, then let the idle start and the worker's `setConsent(true)` happen. */
async function grant(win: FakeWindow, loader: ReturnType<typeof setUp>['loader']): Promise<void> {
  await loader.consent(true)
  win.runIdle()
  await flush()
}

afterEach(() => vi.restoreAllMocks())

describe('consent gating', () => {
  it('starts no worker and touches no storage before consent', async () => {
    const { win, worker, loader } = setUp({ databases: ['pocketrec-shop-1'] })
    await expect(loader.track('Product Viewed', { product_id: 'sku-1' })).resolves.toEqual({
      status: 'rejected',
      error: 'no consent: the event was dropped',
    })
    await expect(loader.recommend({ scenario: 'for-you' })).rejects.toMatchObject({
      name: 'ConsentRequiredError',
      code: 'E_CONSENT_REQUIRED',
    })
    win.runIdle()
    await flush()
    expect(worker.starts).toBe(0)
    expect(win.databasesCalls).toBe(0)
    expect(await loader.status()).toEqual({
      consent: 'unknown',
      blockedBy: null,
      mode: null,
      worker: null,
      error: null,
    })
  })

  it('drops events made before consent instead of replaying them later', async () => {
    const { win, worker, loader } = setUp()
    void loader.track('Product Viewed', { product_id: 'before' })
    await grant(win, loader)
    await loader.track('Product Viewed', { product_id: 'after' })
    const tracked = worker.calls.filter(([name]) => name === 'track')
    expect(tracked).toHaveLength(1)
    expect(tracked[0]![1]).toMatchObject({ properties: { product_id: 'after' } })
  })

  it('starts the worker once the page is idle after consent, then turns on its storage', async () => {
    const { win, worker, loader } = setUp()
    await loader.consent(true)
    expect(worker.starts).toBe(0)
    win.runIdle()
    await flush()
    expect(worker.names()).toEqual(['init', 'setConsent'])
    expect(worker.calls[0]).toEqual(['init', { site: 'shop-1', endpoint: 'https://api.example' }])
    expect(worker.calls[1]).toEqual(['setConsent', true])
    expect(await loader.status()).toMatchObject({ consent: 'granted', mode: 'worker' })
  })

  it('waits for requestIdleCallback with a deadline where the browser has it', async () => {
    const { win, worker, loader } = setUp({ idleCallback: true })
    await loader.consent(true)
    expect(win.idleOptions).toEqual([{ timeout: 2000 }])
    win.runIdle()
    await flush()
    expect(worker.starts).toBe(1)
  })

  it('hands events and requests to the worker in call order, stamped when made', async () => {
    const { win, worker, loader } = setUp()
    await loader.consent(true)
    const now = Date.now()
    const results = Promise.all([
      loader.track('Product Viewed', { product_id: 'a' }),
      loader.track('Product Added', { product_id: 'b' }, { attribution_id: 'attr-1' }),
      loader.recommend({ scenario: 'for-you', limit: 4 }),
    ])
    win.runIdle()
    const [viewed, added, response] = await results
    expect(viewed).toEqual({ status: 'stored' })
    expect(added).toEqual({ status: 'stored' })
    expect(response.scenario).toBe('for-you')
    expect(worker.names()).toEqual(['init', 'setConsent', 'track', 'track', 'recommend'])
    const event = worker.calls[3]![1] as Record<string, unknown>
    expect(event).toMatchObject({
      event: 'Product Added',
      properties: { product_id: 'b' },
      attribution_id: 'attr-1',
    })
    expect(event.timestamp).toBeGreaterThanOrEqual(now)
  })

  it('starts one worker however often consent is given', async () => {
    const { win, worker, loader } = setUp()
    await loader.consent(true)
    await loader.consent(true)
    win.runIdle()
    await loader.consent(true)
    await flush()
    expect(worker.starts).toBe(1)
  })

  it('takes consent from data-consent="granted" on the script tag', async () => {
    const { win, worker } = setUp({ loader: { consent: 'granted' } })
    win.runIdle()
    await flush()
    expect(worker.starts).toBe(1)
  })

  it('takes consent from a pocketrec:consent event, and ignores events it cannot read', async () => {
    const { win, worker, loader } = setUp()
    win.dispatch('pocketrec:consent', 'yes')
    win.dispatch('pocketrec:consent', { granted: 'true' })
    expect(win.pendingIdle()).toBe(0)
    win.dispatch('pocketrec:consent', { granted: true })
    win.runIdle()
    await flush()
    expect(worker.starts).toBe(1)
    win.dispatch('pocketrec:consent', false)
    await flush()
    expect(worker.terminated).toBe(1)
    expect((await loader.status()).consent).toBe('denied')
  })

  it('rejects a consent value that is not a boolean rather than read it as a withdrawal', async () => {
    const { win, worker, loader } = setUp()
    await grant(win, loader)
    await expect(loader.run('consent', ['no'])).rejects.toMatchObject({
      name: 'InvalidRequestError',
    })
    expect(worker.names()).not.toContain('forget')
    expect((await loader.status()).consent).toBe('granted')
  })
})

describe('Do Not Track and Global Privacy Control', () => {
  it.each([
    ['do-not-track', { doNotTrack: '1' }],
    ['global-privacy-control', { globalPrivacyControl: true }],
  ] as const)('%s keeps pocketrec off even after consent', async (signal, navigator) => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const { win, worker, loader } = setUp({ navigator, loader: { consent: 'granted' } })
    await loader.consent(true)
    win.dispatch('pocketrec:consent', { granted: true })
    win.runIdle()
    await flush()
    expect(worker.starts).toBe(0)
    expect(await loader.status()).toMatchObject({ consent: 'unknown', blockedBy: signal })
    await expect(loader.recommend({ scenario: 'trending' })).rejects.toThrow(
      `expected consent before recommend; the browser sends ${signal}`,
    )
    expect(warn).toHaveBeenCalled()
  })

  it('deletes what an earlier visit stored, through a worker that then stops', async () => {
    const { worker } = setUp({ navigator: { doNotTrack: '1' }, databases: ['pocketrec-shop-1'] })
    await flush()
    expect(worker.names()).toEqual(['init', 'forget'])
    expect(worker.terminated).toBe(1)
  })

  it('starts nothing when no pocketrec database exists', async () => {
    const { win, worker } = setUp({ navigator: { doNotTrack: '1' }, databases: ['other-app'] })
    await flush()
    expect(win.databasesCalls).toBe(1)
    expect(worker.starts).toBe(0)
  })

  it('starts nothing when the browser cannot list databases (it may repeat on every page)', async () => {
    const { worker } = setUp({ navigator: { globalPrivacyControl: true }, databases: null })
    await flush()
    expect(worker.starts).toBe(0)
  })
})

describe('withdrawal', () => {
  it('calls forget and terminates the running worker', async () => {
    const { win, worker, loader } = setUp()
    await grant(win, loader)
    await loader.consent(false)
    expect(worker.names()).toEqual(['init', 'setConsent', 'forget'])
    expect(worker.terminated).toBe(1)
    expect(await loader.status()).toMatchObject({ consent: 'denied', mode: null, worker: null })
    await expect(loader.track('Product Viewed', { product_id: 'sku-1' })).resolves.toMatchObject({
      status: 'rejected',
    })
    await expect(loader.recommend({ scenario: 'for-you' })).rejects.toMatchObject({
      name: 'ConsentRequiredError',
    })
  })

  it('cancels a start still waiting for idle, and fails the calls waiting on it', async () => {
    const { win, worker, loader } = setUp()
    await loader.consent(true)
    const waiting = loader.recommend({ scenario: 'for-you' })
    await loader.consent(false)
    win.runIdle()
    await expect(waiting).rejects.toMatchObject({ name: 'ConsentRequiredError' })
    expect(worker.starts).toBe(0)
  })

  it('forgets through a worker that was still starting', async () => {
    const { win, worker, loader } = setUp()
    await loader.consent(true)
    win.runIdle()
    await loader.consent(false)
    expect(worker.names()).toEqual(['init', 'setConsent', 'forget'])
    expect(worker.terminated).toBe(1)
  })

  it("deletes an earlier visit's database although no worker runs", async () => {
    const { worker, loader } = setUp({ databases: ['pocketrec-shop-1'] })
    await loader.consent(false)
    expect(worker.names()).toEqual(['init', 'forget'])
    expect(worker.terminated).toBe(1)
  })

  it('starts a worker to forget when it cannot tell, only for an explicit withdrawal', async () => {
    const atLoad = setUp({ loader: { consent: 'denied' }, databases: null })
    await flush()
    expect(atLoad.worker.starts).toBe(0)
    await atLoad.loader.consent(false)
    expect(atLoad.worker.names()).toEqual(['init', 'forget'])
  })

  it('lets consent be given again after a withdrawal', async () => {
    const { win, worker, loader } = setUp()
    await grant(win, loader)
    await loader.consent(false)
    await grant(win, loader)
    expect(worker.starts).toBe(2)
    await expect(loader.recommend({ scenario: 'trending' })).resolves.toMatchObject({
      scenario: 'trending',
    })
  })
})

describe('commands', () => {
  it('forget deletes data and keeps the worker running while consent stands', async () => {
    const { win, worker, loader } = setUp()
    await grant(win, loader)
    await loader.run('forget', [])
    expect(worker.names()).toEqual(['init', 'setConsent', 'forget'])
    expect(worker.terminated).toBe(0)
  })

  it('status reports the worker and how it runs', async () => {
    const { win, loader } = setUp()
    await grant(win, loader)
    expect(await loader.run('status', [])).toMatchObject({
      consent: 'granted',
      blockedBy: null,
      mode: 'worker',
      worker: { backend: 'wasm', modelVersion: 'v1' },
    })
  })

  it("issue 14: names the page view (the page's URL) in every recommend; a request's own wins", async () => {
    const { win, worker, loader } = setUp()
    await grant(win, loader)
    await loader.recommend({ scenario: 'trending' })
    win.location.href = 'https://shop.example/#/cart' // a single-page shop's next view
    await loader.recommend({ scenario: 'for-you' })
    await loader.recommend({ scenario: 'for-you', pageView: 'view-7' })
    expect(worker.calls.filter(([name]) => name === 'recommend').map(([, r]) => r)).toEqual([
      { scenario: 'trending', pageView: 'https://shop.example/products/sku-9' },
      { scenario: 'for-you', pageView: 'https://shop.example/#/cart' },
      { scenario: 'for-you', pageView: 'view-7' },
    ])
  })

  it('rejects an unknown command, naming the known ones', async () => {
    const { loader } = setUp()
    await expect(loader.run('identify', ['user-1'])).rejects.toThrow(
      'expected a command (consent, track, recommend, render, forget, status), got identify',
    )
  })

  it('reports a worker that cannot start in status and in the calls waiting on it', async () => {
    vi.spyOn(console, 'warn').mockImplementation(() => {})
    const win = createFakeWindow()
    const loader = createLoader({
      options: OPTIONS,
      window: win,
      navigator: {},
      startWorker: () => Promise.reject(new Error('blocked')),
      loadWidgets,
    })
    await loader.consent(true)
    win.runIdle()
    await expect(loader.recommend({ scenario: 'for-you' })).rejects.toThrow('blocked')
    await expect(loader.track('Product Viewed', { product_id: 'a' })).resolves.toEqual({
      status: 'rejected',
      error: 'Error: blocked',
    })
    const error = { code: 'E_WORKER_START', message: 'Error: blocked' }
    expect((await loader.status()).error).toEqual(error)
    // Reported once, however often status() is read.
    expect(win.dispatched.map((e) => [e.type, e.detail])).toEqual([['pocketrec:error', error]])
  })

  it('reports what the worker says it lacks as soon as it is ready, once, and in status', async () => {
    const error: StatusError = { code: 'E_WASM_BLOCKED', message: 'WebAssembly refused' }
    const { win, loader } = setUp({ error })
    await grant(win, loader)
    expect(win.dispatched.map((e) => [e.type, e.detail])).toEqual([['pocketrec:error', error]])
    // Recommendations still work; status says why they come from a slower backend.
    await expect(loader.recommend({ scenario: 'trending' })).resolves.toMatchObject({})
    expect((await loader.status()).error).toEqual(error)
    expect(win.dispatched).toHaveLength(1)
  })

  it('reports a failure the worker finds later (an upload the CSP refused) as it comes, lists going on', async () => {
    const { win, worker, loader } = setUp()
    await grant(win, loader)
    expect(win.dispatched).toEqual([])
    const error: StatusError = {
      code: 'E_CSP_CONNECT',
      message: 'uploads to the federation helper (https://helper.example) are blocked; …',
    }
    worker.failLater(error)
    await flush()
    expect(win.dispatched.map((e) => [e.type, e.detail])).toEqual([['pocketrec:error', error]])
    await expect(loader.recommend({ scenario: 'trending' })).resolves.toMatchObject({})
  })

  it('reports no error for a worker that lacks nothing', async () => {
    const { win, loader } = setUp()
    await grant(win, loader)
    expect((await loader.status()).error).toBeNull()
    expect(win.dispatched).toEqual([])
  })

  it('destroy removes its listener and stops the worker', async () => {
    const { win, worker, loader } = setUp()
    await grant(win, loader)
    loader.destroy()
    await flush()
    expect(worker.terminated).toBe(1)
    win.dispatch('pocketrec:consent', false)
    await flush()
    expect(worker.names()).not.toContain('forget')
  })
})

describe('a worker that dies after starting', () => {
  /** Workers whose calls hang (crashed: not even `status` answers) until `alive` is set. */
  function setUpDying(databases?: string[]) {
    const win = createFakeWindow({ databases })
    let alive = false
    let starts = 0
    let terminated = 0
    let forgot = 0
    const never = () => new Promise<never>(() => {})
    const startWorker = async (): Promise<WorkerConnection> => {
      starts++
      const dead = !alive
      const api = {
        init: async () => ({}) as never,
        setConsent: async () => {},
        status: dead ? never : async () => ({ consent: true }) as never,
        ready: dead ? never : async () => ({ consent: true }) as never,
        nextError: never,
        recommend: dead ? never : async (request) => fakeResponse(request),
        track: dead ? never : async () => ({ status: 'stored' as const }),
        forget: dead ? never : async () => void forgot++,
      } as PocketrecWorkerApi
      return { api, mode: 'worker', status: {} as never, terminate: () => void terminated++ }
    }
    const loader = createLoader({
      options: OPTIONS,
      window: win,
      navigator: {},
      startWorker,
      loadWidgets,
    })
    return {
      win,
      loader,
      revive: () => (alive = true),
      counts: () => ({ starts, terminated }),
      forgot: () => forgot,
    }
  }

  it('withdrawal stops a worker that answers neither forget nor a ping, and deletes through a fresh one', async () => {
    const { win, loader, revive, counts, forgot } = setUpDying(['pocketrec-shop-1'])
    await grant(win, loader)
    let settled = false
    const withdrawn = loader.consent(false).then(() => (settled = true))
    await flush()
    revive() // the worker started to delete will answer
    win.runIdle() // 5 s: forget unanswered, a status ping goes out
    await flush()
    expect(settled).toBe(false)
    win.runIdle() // 5 s more: no answer to the ping either
    await flush()
    expect(settled).toBe(true)
    await withdrawn
    expect(counts()).toEqual({ starts: 2, terminated: 2 })
    expect(forgot()).toBe(1)
    expect(await loader.status()).toMatchObject({ consent: 'denied', mode: null, worker: null })
  })

  it('replaces a worker that answers neither the call nor a ping, and retries the call', async () => {
    const { win, loader, revive, counts } = setUpDying()
    await grant(win, loader)
    const pending = loader.recommend({ scenario: 'trending' })
    await flush()
    revive() // the next worker started will answer
    win.runIdle() // 5 s: no answer, a status ping goes out
    await flush()
    win.runIdle() // 5 s more: no answer to the ping either; the worker is replaced
    await flush()
    expect(counts()).toEqual({ starts: 1, terminated: 1 })
    win.runIdle() // the fresh worker starts when the page is idle
    await flush()
    await expect(pending).resolves.toMatchObject({ attributionId: 'attr-trending' })
    expect(counts()).toEqual({ starts: 2, terminated: 1 })
  })

  it('keeps waiting for a slow call while the worker answers pings', async () => {
    const { win, worker, loader } = setUp()
    let answer: (value: ReturnType<typeof fakeResponse>) => void = () => {}
    worker.api.recommend = () => new Promise((resolve) => (answer = resolve))
    await grant(win, loader)
    const pending = loader.recommend({ scenario: 'trending' })
    await flush()
    win.runIdle() // ping
    await flush()
    win.runIdle() // the ping was answered: nothing happens
    await flush()
    answer(fakeResponse({ scenario: 'trending' }))
    await expect(pending).resolves.toMatchObject({ scenario: 'trending' })
    expect(worker.starts).toBe(1)
    expect(worker.terminated).toBe(0)
    expect(worker.names().filter((n) => n === 'status')).toHaveLength(1)
  })

  it('gives up after three replacements and says so in status and in the calls', async () => {
    vi.spyOn(console, 'warn').mockImplementation(() => {})
    const { win, loader, counts } = setUpDying()
    const drain = async () => {
      for (let i = 0; i < 10; i++) {
        win.runIdle()
        await flush()
      }
    }
    await grant(win, loader)
    // Each call may use two workers: the one it found and, once that died, a fresh one.
    const first = loader.recommend({ scenario: 'trending' }).catch((error: unknown) => error)
    await drain()
    const second = loader.recommend({ scenario: 'trending' }).catch((error: unknown) => error)
    await drain()
    expect(counts()).toEqual({ starts: 4, terminated: 4 })
    expect(await first).toMatchObject({ message: 'the worker stopped answering' })
    expect(await second).toMatchObject({ message: 'the worker stopped answering' })
    const third = loader.recommend({ scenario: 'trending' }).catch((error: unknown) => error)
    await drain()
    expect(await third).toMatchObject({ name: 'WorkerStartError' })
    expect(counts().starts).toBe(4)
    expect((await loader.status()).error).toEqual({
      code: 'E_WORKER_START',
      message: 'the worker stopped answering 4 times',
    })
  })
})

describe('render', () => {
  function slot(win: ReturnType<typeof createFakeWindow>, fallback?: string): FakeElement {
    const doc = win.document as unknown as FakeDocument
    const el = doc.createElement('div')
    el.setAttribute('id', 'recs')
    if (fallback) el.textContent = fallback
    doc.body.append(el)
    return el
  }

  it('renders an accessible list of buttons with names and prices', async () => {
    const { win, worker, loader } = setUp()
    const el = slot(win)
    await grant(win, loader)
    const result = await loader.render({
      slot: 'similar',
      el: '#recs',
      productId: 'sku-9',
      limit: 2,
    })
    expect(result.status).toBe('rendered')
    expect(worker.calls.at(-1)).toEqual([
      'recommend',
      {
        scenario: 'similar',
        productId: 'sku-9',
        limit: 2,
        pageView: 'https://shop.example/products/sku-9',
      },
    ])
    const [section] = el.children
    expect(section!.tagName).toBe('section')
    expect(section!.getAttribute('aria-label')).toBe('Similar items')
    expect(section!.findAll('h2')[0]!.textContent).toBe('Similar items')
    const buttons = section!.findAll('ul')[0]!.findAll('button')
    expect(buttons.map((b) => [b.getAttribute('type'), b.textContent])).toEqual([
      ['button', 'Product 1 10.00'],
      ['button', 'Product 2 11.00'],
    ])
  })

  it("tracks a click with the list's attribution id and tells the page which product", async () => {
    const { win, worker, loader } = setUp()
    const el = slot(win)
    await grant(win, loader)
    await loader.render({ slot: 'for-you', el: asElement(el) })
    const selected: unknown[] = []
    el.addEventListener('pocketrec:select', (event) => selected.push((event as CustomEvent).detail))
    el.findAll('button')[1]!.click()
    await flush()
    expect(selected).toEqual([
      { productId: 'sku-2', attributionId: 'attr-for-you', scenario: 'for-you' },
    ])
    expect(worker.calls.at(-1)).toMatchObject([
      'track',
      {
        event: 'Product Clicked',
        properties: { product_id: 'sku-2', category: 'shoes', price: 11 },
        attribution_id: 'attr-for-you',
      },
    ])
  })

  it('renders links from the product URL template, escaping the id', async () => {
    const { win, loader } = setUp({ loader: { productUrl: '/products/{id}', currency: 'EUR' } })
    const el = slot(win)
    await grant(win, loader)
    await loader.render({ slot: 'trending', el: asElement(el), title: 'Hot today' })
    const links = el.findAll('a')
    expect(links.map((a) => a.getAttribute('href'))).toEqual(['/products/sku-1', '/products/sku-2'])
    expect(el.children[0]!.getAttribute('aria-label')).toBe('Hot today')
    expect(links[0]!.findAll('span')[1]!.textContent).toMatch(/10[.,]00/)
  })

  it("keeps the shop's fallback until consent, then renders by itself", async () => {
    const { win, loader } = setUp()
    const el = slot(win, 'Our bestsellers')
    await expect(loader.render({ slot: 'for-you', el: '#recs' })).resolves.toEqual({
      status: 'waiting-for-consent',
    })
    expect(el.textContent).toBe('Our bestsellers')
    await grant(win, loader)
    expect(el.findAll('section')).toHaveLength(1)
  })

  it('puts the fallback back on withdrawal', async () => {
    const { win, loader } = setUp()
    const el = slot(win, 'Our bestsellers')
    await grant(win, loader)
    await loader.render({ slot: 'for-you', el: '#recs' })
    expect(el.findAll('section')).toHaveLength(1)
    await loader.consent(false)
    expect(el.textContent).toBe('Our bestsellers')
  })

  it('leaves the fallback when there is nothing to recommend', async () => {
    const { win, loader } = setUp({ items: 0 })
    const el = slot(win, 'Our bestsellers')
    await grant(win, loader)
    expect((await loader.render({ slot: 'for-you', el: '#recs' })).status).toBe('empty')
    expect(el.textContent).toBe('Our bestsellers')
  })

  it('lets the latest render of an element win', async () => {
    const { win, loader } = setUp()
    const el = slot(win)
    await grant(win, loader)
    const first = loader.render({ slot: 'for-you', el: '#recs' })
    const second = loader.render({ slot: 'trending', el: '#recs' })
    expect((await first).status).toBe('superseded')
    expect((await second).status).toBe('rendered')
    expect(el.children[0]!.getAttribute('aria-label')).toBe('Trending now')
  })

  it('forgets an element that left the page instead of rendering into it', async () => {
    const { win, worker, loader } = setUp()
    const el = slot(win)
    await loader.render({ slot: 'for-you', el: '#recs' })
    el.isConnected = false
    await grant(win, loader)
    expect(worker.names()).not.toContain('recommend')
  })

  it('leaves an element alone on withdrawal when it never showed our widget', async () => {
    const { win, loader } = setUp()
    const el = slot(win, 'Our bestsellers')
    await loader.render({ slot: 'for-you', el: '#recs' })
    el.textContent = 'Changed by the shop'
    await loader.consent(false)
    expect(el.textContent).toBe('Changed by the shop')
  })

  it("issue 14: before consent leaves the shop's fallback markup as it was, with no error text", async () => {
    const { win, worker, loader } = setUp()
    const el = slot(win)
    const doc = win.document as unknown as FakeDocument
    const fallback = [doc.createElement('p'), doc.createElement('a')]
    fallback[0]!.textContent = 'Our bestsellers'
    fallback[1]!.setAttribute('href', '/bestsellers')
    el.append(...fallback)
    await expect(
      loader.render({ slot: 'similar', el: '#recs', productId: 'sku-1' }),
    ).resolves.toEqual({ status: 'waiting-for-consent' })
    // A shop calling recommend itself gets the error; the page's markup does not.
    await expect(
      loader.recommend({ scenario: 'similar', productId: 'sku-1' }),
    ).rejects.toMatchObject({ name: 'ConsentRequiredError' })
    expect(el.childNodes).toHaveLength(2)
    expect(el.childNodes[0]).toBe(fallback[0])
    expect(el.childNodes[1]).toBe(fallback[1])
    expect(el.textContent).toBe('Our bestsellers')
    expect(worker.names()).not.toContain('recommend')
  })

  it('issue 14: a worker that fails to recommend leaves the fallback markup too', async () => {
    const { win, worker, loader } = setUp()
    const el = slot(win, 'Our bestsellers')
    const [text] = el.childNodes
    worker.api.recommend = () => Promise.reject(new Error('model unavailable'))
    await grant(win, loader)
    await expect(loader.render({ slot: 'for-you', el: '#recs' })).rejects.toThrow(
      'model unavailable',
    )
    expect(el.childNodes).toEqual([text])
    expect(el.textContent).toBe('Our bestsellers')
  })

  it('fetches the widgets bundle only once a widget has items to show', async () => {
    let loads = 0
    const counted = () => (loads++, loadWidgets())
    const empty = setUp({ items: 0, loadWidgets: counted })
    await empty.loader.render({ slot: 'for-you', el: asElement(slot(empty.win)) })
    await grant(empty.win, empty.loader)
    expect((await empty.loader.render({ slot: 'for-you', el: '#recs' })).status).toBe('empty')
    // Before consent and with nothing to show, the page never asks for it.
    expect(loads).toBe(0)
    const { win, loader } = setUp({ loadWidgets: counted })
    await grant(win, loader)
    expect((await loader.render({ slot: 'for-you', el: asElement(slot(win)) })).status).toBe(
      'rendered',
    )
    expect(loads).toBe(1)
  })

  it("keeps the shop's content and rejects when the widgets bundle cannot load", async () => {
    const blocked = new TypeError('Failed to fetch dynamically imported module')
    const { win, loader } = setUp({ loadWidgets: () => Promise.reject(blocked) })
    const el = slot(win, 'Our bestsellers')
    await grant(win, loader)
    await expect(loader.render({ slot: 'for-you', el: '#recs' })).rejects.toBe(blocked)
    expect(el.textContent).toBe('Our bestsellers')
  })

  it("renders the shop's item template and still credits its clicks to the list", async () => {
    const { win, worker, loader } = setUp({ loader: { productUrl: '/p/{id}' } })
    const el = slot(win)
    await grant(win, loader)
    const doc = win.document as unknown as FakeDocument
    const given: unknown[] = []
    await loader.render({
      slot: 'similar',
      el: '#recs',
      productId: 'sku-9',
      template: (item) => {
        given.push(item)
        const card = doc.createElement('a')
        card.className = 'my-card'
        card.setAttribute('href', item.url!)
        card.textContent = `${item.name} (${item.priceText})`
        return card as unknown as Node
      },
    })
    expect(given[1]).toEqual({
      productId: 'sku-2',
      name: 'Product 2',
      category: 'shoes',
      price: 11,
      priceText: '11.00',
      imageUrl: undefined,
      url: '/p/sku-2',
      attributionId: 'attr-similar',
      scenario: 'similar',
      position: 1,
    })
    const cards = el.findAll('a')
    expect(cards.map((a) => [a.className, a.textContent])).toEqual([
      ['my-card', 'Product 1 (10.00)'],
      ['my-card', 'Product 2 (11.00)'],
    ])
    cards[1]!.click()
    await flush()
    expect(worker.calls.at(-1)).toMatchObject([
      'track',
      {
        event: 'Product Clicked',
        properties: { product_id: 'sku-2' },
        attribution_id: 'attr-similar',
      },
    ])
  })

  it('rejects a selector that matches nothing', async () => {
    const { loader } = setUp()
    await expect(loader.render({ slot: 'for-you', el: '#missing' })).rejects.toThrow(
      "expected render's el to be an element or a selector that matches one, got #missing",
    )
  })
})

describe('data-backend', () => {
  it('passes a known backend to the worker, which then skips the probe', async () => {
    const { win, worker, loader } = setUp({ loader: { backend: 'webgl' } })
    await grant(win, loader)
    expect(worker.calls[0]).toEqual(['init', { ...OPTIONS, backend: 'webgl' }])
  })

  it('passes any other value on as written: the worker checks it (create-worker-api.test.ts)', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const { win, worker, loader } = setUp({ loader: { backend: 'gpu' } })
    await grant(win, loader)
    expect(worker.calls[0]).toEqual(['init', { ...OPTIONS, backend: 'gpu' }])
    expect(warn).not.toHaveBeenCalled()
  })
})
