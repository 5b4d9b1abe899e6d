// The page elements that show recommendations. Each keeps the shop's own content as its fallback
// until there is something to show, waits for consent, and shows only its newest answer.
// The widget's markup is render.ts, in the widgets bundle: fetched (`loadWidgets`) the first
// time a widget has items to show.
import type { EventName } from '../../shared/events'
import type {
  RecommendRequest,
  RecommendResponse,
  Scenario,
  TrackResult,
} from '../../shared/protocol'
import { InvalidRequestError } from './errors'
import type { ItemTemplate } from './render'
import { warn } from './report'
import type { Widgets } from './widgets'

export interface RenderOptions {
  /** The scenario this slot shows. */
  slot: Scenario
  el: Element | string
  productId?: string
  limit?: number
  title?: string
  href?: string
  currency?: string
  /**
   * The shop's markup for each item (render.ts): a function, or a `<template>` element filled
   * by its data-pocketrec-* attributes; default: a link or button.
   */
  template?: ItemTemplate | HTMLTemplateElement
}

export type RenderResult =
  | { status: 'rendered'; response: RecommendResponse }
  /** Nothing to show: the element keeps the shop's own content. */
  | { status: 'empty'; response: RecommendResponse }
  /** Remembered: it renders as soon as consent is given. */
  | { status: 'waiting-for-consent' }
  /** A later render of the same element replaced this one. */
  | { status: 'superseded' }

/** The part of `window` the mounts touch: `render`'s `el` may be a selector. */
export interface MountsWindow {
  document?: Document
}

/** The tag's widget defaults (see LoaderOptions). */
export interface WidgetDefaults {
  productUrl?: string
  currency?: string
  styles?: boolean
  /** The widgets bundle (widgets.ts): `import()`ed beside the tag; the module itself in tests. */
  loadWidgets(): Promise<Widgets>
}

export interface WidgetMounts {
  render(options: RenderOptions): Promise<RenderResult>
  /** Forgets an element (it left the page); its content is left as it is. */
  unmount(el: Element): void
  /**
   * Consent was given: renders every element that waited for it; or withdrawn: puts the shop's
   * content back and waits for consent again.
   */
  setConsent(granted: boolean): void
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

/** `recommend` fills the elements; `track` reports clicks on their items. */
export function createWidgetMounts(
  win: MountsWindow,
  options: WidgetDefaults,
  recommend: (request: RecommendRequest) => Promise<RecommendResponse>,
  track: (event: EventName, properties: object, extra?: object) => Promise<TrackResult>,
): WidgetMounts {
  const mounts = new Map<Element, Mount>()
  let granted = false

  async function render(renderOptions: RenderOptions): Promise<RenderResult> {
    const target = renderOptions?.el
    const el =
      typeof target === 'string'
        ? win.document
          ? win.document.querySelector(target)
          : null
        : target
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
    mount.waiting = !granted
    if (mount.waiting) return { status: 'waiting-for-consent' }
    const { slot, productId, limit, title, href, currency, template } = mount.options
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
    if (response.items.length === 0) {
      mount.shown = false
      el.replaceChildren(...mount.fallback)
      return { status: 'empty', response }
    }
    let widgets: Widgets
    try {
      widgets = await options.loadWidgets()
    } catch (error) {
      // Unloadable (offline, or the page's CSP leaves it out): the element keeps what it shows.
      if (token !== mount.token) return { status: 'superseded' }
      throw error
    }
    const { buildWidget, ensureStyles } = widgets
    if (token !== mount.token || mounts.get(el) !== mount) return { status: 'superseded' }
    mount.shown = true
    if (options.styles !== false) ensureStyles(doc)
    const widget = buildWidget(doc, response, {
      title,
      href: href ?? options.productUrl,
      currency: currency ?? options.currency,
      template,
      onSelect: (item) => {
        const product = { product_id: item.productId, category: item.category, price: item.price }
        void track('Product Clicked', product, { attribution_id: response.attributionId })
      },
    })
    el.replaceChildren(widget)
    return { status: 'rendered', response }
  }

  return {
    render,
    unmount: (el) => {
      const mount = mounts.get(el)
      if (mount) mount.token++
      mounts.delete(el)
    },
    setConsent: (given) => {
      granted = given
      for (const [el, mount] of liveMounts()) {
        if (granted) {
          if (mount.waiting) refresh(el, mount).catch(warn)
        } else {
          mount.token++
          mount.waiting = true
          if (mount.shown) el.replaceChildren(...mount.fallback)
          mount.shown = false
        }
      }
    },
  }
}
