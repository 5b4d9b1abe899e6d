// The loader's logic, with the platform injected so it runs in tests without a browser: consent
// gating, when the worker starts and stops, commands, and the widgets it keeps up to date.
import type { EventName } from '../../shared/events'
import type {
  BackendName,
  RecommendRequest,
  RecommendResponse,
  Scenario,
  TrackResult,
  WorkerStatus,
} from '../../shared/protocol'
import type { PocketrecWorkerApi, WorkerConfig } from '../worker/api'
import { ConsentRequiredError, InvalidRequestError, WorkerStartError } from './errors'
import { readPrivacySignal, type PrivacyNavigator, type PrivacySignal } from './privacy-signals'
import { buildWidget, ensureStyles } from './render'
import { messageOf, warn } from './report'
import type { WorkerConnection, WorkerMode } from './start-worker'

/** Every database the worker creates starts with this (see `forget` in client/worker/api.ts). */
const DATABASE_PREFIX = 'pocketrec'
/** requestIdleCallback's deadline: a busy page still gets recommendations within seconds. */
const IDLE_TIMEOUT_MS = 2000
const BACKENDS: readonly string[] = ['wasm', 'cpu', 'webgl', 'webgpu'] satisfies BackendName[]
/**
 * A call unanswered after PING_MS gets a `status` ping; a worker that answers neither within
 * another PING_MS has died (crashed, killed for memory) and is replaced, at most MAX_RESTARTS
 * times a page. Its data is in IndexedDB, so the fresh one carries on; the call is retried once.
 * A live worker answers a ping within milliseconds: it yields between training slices and
 * downloads asynchronously.
 */
const PING_MS = 5000
const MAX_RESTARTS = 3

export type ConsentState = 'unknown' | 'granted' | 'denied'

export interface LoaderOptions extends Omit<WorkerConfig, 'backend'> {
  /** From `data-backend`, unchecked: one of wasm, cpu, webgl, webgpu skips the probe. */
  backend?: string
  /** From `data-consent`: a consent manager that knows the answer when the page is rendered. */
  consent?: 'granted' | 'denied'
  /** Product page URL with `{id}`, for widget links (`data-product-url`). */
  productUrl?: string
  /** ISO 4217 code for widget prices (`data-currency`). */
  currency?: string
  /** `false` (`data-styles="none"`) leaves all widget styling to the shop. */
  styles?: boolean
}

/** The part of `window` the loader touches. */
export interface LoaderWindow {
  document?: Document
  /** Only `databases()` is used, to find data an earlier visit left behind. */
  indexedDB?: { databases?: () => Promise<Array<{ name?: string }>> }
  addEventListener(type: string, listener: (event: Event) => void): void
  removeEventListener(type: string, listener: (event: Event) => void): void
  setTimeout(handler: () => void, timeoutMs: number): number
  clearTimeout(id: number): void
  requestIdleCallback?(callback: () => void, options?: { timeout: number }): number
  cancelIdleCallback?(id: number): void
}

export interface LoaderDeps {
  options: LoaderOptions
  window: LoaderWindow
  navigator: PrivacyNavigator
  /** Starts the worker and answers once its `init` did (start-worker.ts). */
  startWorker(config: WorkerConfig): Promise<WorkerConnection>
}

export interface RenderOptions {
  /** The scenario this slot shows. */
  slot: Scenario
  el: Element | string
  productId?: string
  limit?: number
  title?: string
  href?: string
  currency?: string
}

export type RenderResult =
  | { status: 'rendered'; response: RecommendResponse }
  /** Nothing to show: the element keeps the shop's own content. */
  | { status: 'empty'; response: RecommendResponse }
  /** Remembered: it renders as soon as consent is given. */
  | { status: 'waiting-for-consent' }
  /** A later render of the same element replaced this one. */
  | { status: 'superseded' }

export interface LoaderStatus {
  consent: ConsentState
  /** Set when Do Not Track or Global Privacy Control keeps pocketrec off, whatever the consent. */
  blockedBy: PrivacySignal | null
  mode: WorkerMode | null
  worker: WorkerStatus | null
  /** Why the worker could not start. */
  error: string | null
}

export interface Loader {
  /** Runs one command as `pocketrec(name, ...args)` does. */
  run(name: string, args: unknown[]): Promise<unknown>
  consent(granted: boolean): Promise<void>
  track(event: EventName, properties: object, extra?: object): Promise<TrackResult>
  recommend(request: RecommendRequest): Promise<RecommendResponse>
  render(options: RenderOptions): Promise<RenderResult>
  /** Forgets an element (it left the page); its content is left as it is. */
  unmount(el: Element): void
  forget(): Promise<void>
  status(): Promise<LoaderStatus>
  /** Removes listeners and timers and stops the worker, keeping stored data. */
  destroy(): void
}

interface Mount {
  options: RenderOptions
  /** The shop's own content (a placeholder, static links), put back when we have nothing. */
  fallback: Node[]
  /** Bumped by every render and by withdrawal, so a late answer never overwrites a newer one. */
  token: number
  waiting: boolean
  /** Our widget is in the element now. */
  shown: boolean
}

/** Nothing about the shopper is kept before consent: not even in memory, to send later. */
const DROPPED: TrackResult = { status: 'rejected', error: 'no consent: the event was dropped' }

/**
 * Creates the command handler behind `window.pocketrec`.
 * @example
 * const loader = createLoader({ options, window, navigator, startWorker: (c) => startWorker(c, env) })
 * await loader.consent(true)
 * const { items } = await loader.recommend({ scenario: 'for-you', limit: 8 })
 */
export function createLoader(deps: LoaderDeps): Loader {
  const { options, window: win } = deps
  const config: WorkerConfig = { site: options.site, endpoint: options.endpoint }
  const { backend } = options
  // A typo must not break the shop: the worker probes as if the attribute were absent.
  if (backend && BACKENDS.includes(backend)) config.backend = backend as BackendName
  else if (backend) warn(`ignored backend "${backend}"; expected one of ${BACKENDS.join(', ')}`)
  const blockedBy = readPrivacySignal(deps.navigator)
  const mounts = new Map<Element, Mount>()
  let consentState: ConsentState = 'unknown'
  let worker: Promise<WorkerConnection> | null = null
  let connection: WorkerConnection | null = null
  let cancelStart: (() => void) | null = null
  let startError: string | null = null
  let restarts = 0

  function getWorker(): Promise<WorkerConnection> {
    if (worker) return worker
    const started = new Promise<WorkerConnection>((resolve, reject) => {
      const cancelIdle = whenIdle(win, () => {
        cancelStart = null
        deps
          .startWorker(config)
          .then(async (c) => {
            await c.api.setConsent(true)
            return c
          })
          .then(resolve, reject)
      })
      cancelStart = () => {
        cancelIdle()
        reject(new ConsentRequiredError('consent was withdrawn before the worker started'))
      }
    })
    worker = started
    started.then(
      (c) => {
        if (worker === started) connection = c
      },
      (error: unknown) => {
        if (worker !== started) return
        startError = messageOf(error)
        warn(error)
      },
    )
    return started
  }

  /** Runs `use` on the worker; if the worker died meanwhile, once more on a fresh one. */
  function call<T>(use: (api: PocketrecWorkerApi) => Promise<T>): Promise<T> {
    const attempt = (c: WorkerConnection) => supervise(c, use(c.api))
    return getWorker().then((c) =>
      attempt(c).catch((error: unknown) => {
        if (error !== LOST) throw error
        return getWorker().then(attempt)
      }),
    )
  }

  /** Settles as `pending` does, or rejects with LOST after replacing a worker that died. */
  function supervise<T>(c: WorkerConnection, pending: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let settled = false
      let answered = false
      const timer = win.setTimeout(() => {
        if (settled) return
        c.api.status().then(
          () => (answered = true),
          () => (answered = true),
        )
        win.setTimeout(() => {
          if (settled || answered) return
          settled = true
          reject(LOST)
          if (connection !== c) return
          c.terminate()
          worker = connection = null
          if (++restarts > MAX_RESTARTS) {
            startError = `the worker stopped answering ${restarts} times`
            worker = Promise.reject(new WorkerStartError(startError))
            worker.catch(() => {})
          }
        }, PING_MS)
      }, PING_MS)
      const done =
        <V>(settle: (value: V) => void) =>
        (value: V) => {
          settled = true
          win.clearTimeout(timer)
          settle(value)
        }
      pending.then(done(resolve), done(reject))
    })
  }

  async function withdraw(explicit: boolean): Promise<void> {
    const running = worker
    worker = null
    connection = null
    cancelStart?.()
    cancelStart = null
    for (const [el, mount] of liveMounts()) {
      mount.token++
      mount.waiting = true
      if (mount.shown) el.replaceChildren(...mount.fallback)
      mount.shown = false
    }
    const c = running && (await running.catch(() => null))
    if (c) {
      try {
        await c.api.forget()
      } finally {
        c.terminate()
      }
      return
    }
    await forgetStoredData(explicit)
  }

  /**
   * Deletes what an earlier visit stored, without keeping a worker. Without `databases()` (Firefox
   * before 126) we cannot tell whether anything is there: only an explicit request starts one.
   */
  async function forgetStoredData(evenIfUnknown: boolean): Promise<void> {
    const idb = win.indexedDB
    if (!idb) return
    if (idb.databases) {
      const names = (await idb.databases()).map((db) => db.name ?? '')
      if (!names.some((name) => name.startsWith(DATABASE_PREFIX))) return
    } else if (!evenIfUnknown) {
      return
    }
    const c = await deps.startWorker(config)
    try {
      await c.api.forget()
    } finally {
      c.terminate()
    }
  }

  function setConsent(granted: boolean, explicit = true): Promise<void> {
    if (!granted) {
      consentState = 'denied'
      return withdraw(explicit)
    }
    if (blockedBy) {
      warn(`consent ignored: the browser sends ${blockedBy}`)
      return Promise.resolve()
    }
    if (consentState !== 'granted') {
      consentState = 'granted'
      startError = null
      void getWorker().catch(() => {})
      for (const [el, mount] of liveMounts()) if (mount.waiting) refresh(el, mount).catch(warn)
    }
    return Promise.resolve()
  }

  function track(event: EventName, properties: object, extra?: object): Promise<TrackResult> {
    if (consentState !== 'granted') return Promise.resolve(DROPPED)
    // Stamped now: the worker may start (and store it) seconds later.
    const body = { timestamp: Date.now(), ...extra, event, properties }
    return call((api) => api.track(body)).then(
      (result) => {
        if (result.status === 'rejected') warn(`${event} rejected: ${result.error}`)
        return result
      },
      (error: unknown): TrackResult => ({ status: 'rejected', error: messageOf(error) }),
    )
  }

  function recommend(request: RecommendRequest): Promise<RecommendResponse> {
    if (consentState !== 'granted') {
      const why = blockedBy ? `the browser sends ${blockedBy}` : `consent is ${consentState}`
      return Promise.reject(new ConsentRequiredError(`expected consent before recommend; ${why}`))
    }
    return call((api) => api.recommend(request))
  }

  async function render(renderOptions: RenderOptions): Promise<RenderResult> {
    const target = renderOptions?.el
    const el = typeof target === 'string' ? (win.document?.querySelector(target) ?? null) : target
    if (!el || typeof el.replaceChildren !== 'function') {
      throw new InvalidRequestError(
        `expected render's el to be an element or a selector that matches one, got ${String(target)}`,
      )
    }
    let mount = mounts.get(el)
    if (!mount) {
      mount = {
        options: renderOptions,
        fallback: Array.from(el.childNodes),
        token: 0,
        waiting: false,
        shown: false,
      }
      mounts.set(el, mount)
    }
    mount.options = renderOptions
    return refresh(el, mount)
  }

  /** The mounts whose element is still in the page; the others are dropped (SPA navigation). */
  function liveMounts(): Array<[Element, Mount]> {
    for (const el of mounts.keys()) if (!el.isConnected) mounts.delete(el)
    return [...mounts]
  }

  async function refresh(el: Element, mount: Mount): Promise<RenderResult> {
    const token = ++mount.token
    mount.waiting = consentState !== 'granted'
    if (mount.waiting) return { status: 'waiting-for-consent' }
    const { slot, productId, limit, title, href, currency } = mount.options
    let response: RecommendResponse
    try {
      response = await recommend({ scenario: slot, productId, limit })
    } catch (error) {
      // Withdrawal while waiting rejects the request; that is not this caller's error.
      if (token !== mount.token) return { status: 'superseded' }
      throw error
    }
    if (token !== mount.token || mounts.get(el) !== mount) return { status: 'superseded' }
    const doc = el.ownerDocument
    mount.shown = response.items.length > 0
    if (!mount.shown) {
      el.replaceChildren(...mount.fallback)
      return { status: 'empty', response }
    }
    if (options.styles !== false) ensureStyles(doc)
    const widget = buildWidget(doc, response, {
      title,
      href: href ?? options.productUrl,
      currency: currency ?? options.currency,
      onSelect: (item) => {
        const product = { product_id: item.productId, category: item.category, price: item.price }
        void track('Product Clicked', product, { attribution_id: response.attributionId })
      },
    })
    el.replaceChildren(widget)
    return { status: 'rendered', response }
  }

  async function status(): Promise<LoaderStatus> {
    const c = connection
    return {
      consent: consentState,
      blockedBy,
      mode: c?.mode ?? null,
      worker: c ? await call((api) => api.status()) : null,
      error: startError,
    }
  }

  function forget(): Promise<void> {
    return worker ? call((api) => api.forget()) : forgetStoredData(true)
  }

  const run = (name: string, args: unknown[]): Promise<unknown> => {
    try {
      switch (name) {
        case 'consent':
          // Strict: a typo must never read as a withdrawal, which deletes the shopper's data.
          if (typeof args[0] !== 'boolean') {
            throw new InvalidRequestError(
              `expected consent to be true or false, got ${String(args[0])}`,
            )
          }
          return setConsent(args[0])
        case 'track':
          return track(args[0] as EventName, args[1] as object, args[2] as object | undefined)
        case 'recommend':
          return recommend(args[0] as RecommendRequest)
        case 'render':
          return render(args[0] as RenderOptions)
        case 'forget':
          return forget()
        case 'status':
          return status()
      }
      throw new InvalidRequestError(
        `expected a command (consent, track, recommend, render, forget, status), got ${String(name)}`,
      )
    } catch (error) {
      return Promise.reject(error)
    }
  }

  const onConsentEvent = (event: Event): void => {
    const detail = (event as CustomEvent<unknown>).detail
    const granted =
      typeof detail === 'object' && detail ? (detail as { granted?: unknown }).granted : detail
    if (typeof granted === 'boolean') setConsent(granted).catch(warn)
  }
  win.addEventListener('pocketrec:consent', onConsentEvent)

  if (blockedBy) forgetStoredData(false).catch(warn)
  // A page-load signal is not a withdrawal the shopper just made: it may repeat on every page.
  else if (options.consent) setConsent(options.consent === 'granted', false).catch(warn)

  return {
    run,
    consent: (granted) => setConsent(granted),
    track,
    recommend,
    render,
    unmount: (el) => {
      const mount = mounts.get(el)
      if (mount) mount.token++
      mounts.delete(el)
    },
    forget,
    status,
    destroy: () => {
      const running = worker
      win.removeEventListener('pocketrec:consent', onConsentEvent)
      cancelStart?.()
      worker = null
      connection = null
      running?.then(
        (c) => c.terminate(),
        () => {},
      )
    },
  }
}

/** A supervised call's worker died; `call` retries on a fresh one. */
const LOST = new Error('the worker stopped answering')

/** Runs `task` when the page is idle; returns a function that cancels it. */
function whenIdle(win: LoaderWindow, task: () => void): () => void {
  if (win.requestIdleCallback && win.cancelIdleCallback) {
    const id = win.requestIdleCallback(task, { timeout: IDLE_TIMEOUT_MS })
    return () => win.cancelIdleCallback!(id)
  }
  const id = win.setTimeout(task, 1)
  return () => win.clearTimeout(id)
}
