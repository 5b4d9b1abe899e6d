// The loader's commands behind consent: where consent comes from (the command, the
// `pocketrec:consent` event, `data-consent`), what overrules it (Do Not Track, GPC), and what each
// command does without it. Withdrawal deletes the shopper's data and puts the widgets' content back.
import type { EventName } from '../../shared/events'
import type { RecommendRequest, RecommendResponse, TrackResult } from '../../shared/protocol'
import { ConsentRequiredError } from './errors'
import { readPrivacySignal, type PrivacyNavigator, type PrivacySignal } from './privacy-signals'
import { messageOf, warn } from './report'
import {
  createWidgetMounts,
  type MountsWindow,
  type RenderOptions,
  type RenderResult,
  type WidgetDefaults,
} from './widget-mounts'
import type { SupervisorStatus, WorkerSupervisor } from './worker-supervisor'

export type ConsentState = 'unknown' | 'granted' | 'denied'

export interface LoaderStatus extends SupervisorStatus {
  consent: ConsentState
  /** Set when Do Not Track or Global Privacy Control keeps pocketrec off, whatever the consent. */
  blockedBy: PrivacySignal | null
}

/** The part of `window` the gate and its mounts touch: the consent manager's event. */
export interface ConsentWindow extends MountsWindow {
  /** Its URL names the page view a recommend belongs to. */
  location: { href: string }
  addEventListener(type: string, listener: (event: Event) => void): void
  removeEventListener(type: string, listener: (event: Event) => void): void
}

export interface ConsentGateOptions extends WidgetDefaults {
  /** From `data-consent`: a consent manager that knows the answer when the page is rendered. */
  consent?: 'granted' | 'denied'
}

/** The loader's commands; `Loader` adds `run`, which calls them by name. */
export interface ConsentGate {
  consent(granted: boolean): Promise<void>
  /** Before consent, dropped: resolves `{ status: 'rejected' }`. */
  track(event: EventName, properties: object, extra?: object): Promise<TrackResult>
  /** Before consent, rejects with ConsentRequiredError. */
  recommend(request: RecommendRequest): Promise<RecommendResponse>
  /** Before consent, resolves `waiting-for-consent` and renders once consent is given. */
  render(options: RenderOptions): Promise<RenderResult>
  /** Forgets an element (it left the page); its content is left as it is. */
  unmount(el: Element): void
  forget(): Promise<void>
  status(): Promise<LoaderStatus>
  /** Removes listeners and timers and stops the worker, keeping stored data. */
  destroy(): void
}

/** Nothing about the shopper is kept before consent: not even in memory, to send later. */
const DROPPED: TrackResult = { status: 'rejected', error: 'no consent: the event was dropped' }

/** Creates the gate, then applies the page's own signals: DNT/GPC, else `options.consent`. */
export function createConsentGate(
  win: ConsentWindow,
  navigator: PrivacyNavigator,
  options: ConsentGateOptions,
  supervisor: WorkerSupervisor,
): ConsentGate {
  // The widgets wait for consent too; they call back into the gated track and recommend.
  const mounts = createWidgetMounts(win, options, recommend, track)
  const blockedBy = readPrivacySignal(navigator)
  let consentState: ConsentState = 'unknown'

  function setConsent(granted: boolean, explicit = true): Promise<void> {
    if (!granted) {
      consentState = 'denied'
      mounts.setConsent(false)
      return supervisor.withdraw(explicit)
    }
    if (blockedBy) {
      warn(`consent ignored: the browser sends ${blockedBy}`)
    } else if (consentState !== 'granted') {
      consentState = 'granted'
      supervisor.start()
      mounts.setConsent(true)
    }
    return Promise.resolve()
  }

  function track(event: EventName, properties: object, extra?: object): Promise<TrackResult> {
    if (consentState !== 'granted') return Promise.resolve(DROPPED)
    // Stamped now: the worker may start (and store it) seconds later.
    const body = { timestamp: Date.now(), ...extra, event, properties }
    return supervisor
      .call((api) => api.track(body))
      .then(
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
    // The page view is the URL (the worker is this page's alone, and a single-page shop changes
    // the URL per view): the page's lists then never share an item. A request's own one wins.
    const withPage = { pageView: win.location.href, ...request }
    return supervisor.call((api) => api.recommend(withPage))
  }

  const onConsentEvent = (event: Event): void => {
    const detail = (event as CustomEvent<unknown>).detail
    const granted =
      typeof detail === 'object' && detail ? (detail as { granted?: unknown }).granted : detail
    if (typeof granted === 'boolean') setConsent(granted).catch(warn)
  }
  win.addEventListener('pocketrec:consent', onConsentEvent)

  // Do Not Track is a standing withdrawal: what an earlier visit stored goes.
  if (blockedBy) supervisor.withdraw(false).catch(warn)
  // A page-load signal is not a withdrawal the shopper just made: it may repeat on every page.
  else if (options.consent) setConsent(options.consent === 'granted', false).catch(warn)

  return {
    consent: (granted) => setConsent(granted),
    track,
    recommend,
    render: mounts.render,
    unmount: mounts.unmount,
    forget: supervisor.forget,
    status: async () => ({ consent: consentState, blockedBy, ...(await supervisor.status()) }),
    destroy: () => {
      win.removeEventListener('pocketrec:consent', onConsentEvent)
      supervisor.destroy()
    },
  }
}
