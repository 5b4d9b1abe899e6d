// The recommendation widget: a labelled <section> with a heading and a list of links (or buttons
// when the shop gives no product URL), each with the product's picture when the catalogue has
// one. Built with createElement, never innerHTML, so product names and URLs cannot inject markup
// and pages with Trusted Types still work; a shop's own item template (`template`) is the one
// exception, and its HTML is the shop's. Not in the tag: the second bundle,
// dist/pocketrec-widgets.js (widgets.ts), fetched the first time a widget has items to show.
import type { RecommendResponse, RecommendedItem, Scenario } from '../../shared/protocol'

export const DEFAULT_TITLES: Record<Scenario, string> = {
  'for-you': 'Recommended for you',
  similar: 'Similar items',
  'frequently-bought-together': 'Frequently bought together',
  trending: 'Trending now',
  'recently-viewed': 'Recently viewed',
}

export interface WidgetOptions {
  title?: string
  /** Product page URL with `{id}` for the product id; without it items are buttons. */
  href?: string
  /** ISO 4217 code; without it prices print with two decimals. */
  currency?: string
  /**
   * The shop's markup for one item, in place of the default link or button: a function, or a
   * `<template>` element filled by its data-pocketrec-* attributes (fillTemplate).
   */
  template?: ItemTemplate | HTMLTemplateElement
  /** Called before the browser follows a link or the `pocketrec:select` event is dispatched. */
  onSelect(item: RecommendedItem): void
}

/** What an item template is given: the item, ready to show, and how the list is credited. */
export interface TemplateItem {
  productId: string
  name: string
  category: string
  price: number
  /** The price as the default widget prints it (with `currency` when given). */
  priceText: string
  /** The catalogue's picture: an http(s) URL or a path from the shop's root; or absent. */
  imageUrl?: string
  /** The product page (`href` with the id filled in); absent without one. */
  url?: string
  /** The list's attribution id: clicks in the item are tracked with it by the widget. */
  attributionId: string
  scenario: Scenario
  /** 0-based place in the list. */
  position: number
}

export interface TemplateHelpers {
  /**
   * A tagged template that escapes every value it is given, except markup it made itself:
   * html`<b>${item.name}</b>`, html`${item.imageUrl ? html`<img src="${item.imageUrl}">` : ''}`.
   */
  html(strings: TemplateStringsArray, ...values: unknown[]): Markup
}

/**
 * The shop's markup for one item, as Algolia's `templates.item`: a Node is put in as it is; a
 * string is the shop's own HTML and set as the item's innerHTML, so values in it must be escaped
 * (`html` does). Either sits in the widget's `<li class="pocketrec-item">`, whose clicks are
 * tracked with the list's attribution id.
 */
export type ItemTemplate = (item: TemplateItem, helpers: TemplateHelpers) => string | Markup | Node

/** Details of the `pocketrec:select` event a button item dispatches (it bubbles). */
export interface SelectDetail {
  productId: string
  attributionId: string
  scenario: Scenario
}

// Zero-specificity rules (`:where`) lose to any rule a shop writes, even a bare `a {}`.
export const WIDGET_CSS =
  ':where(.pocketrec-list){list-style:none;margin:0;padding:0;display:grid;' +
  'grid-template-columns:repeat(auto-fill,minmax(9rem,1fr));gap:.75rem}' +
  ':where(.pocketrec-link){display:flex;flex-direction:column;gap:.25rem;box-sizing:border-box;' +
  'width:100%;height:100%;padding:.75rem;border:1px solid #ccc;border-radius:.5rem;' +
  'background:none;color:inherit;font:inherit;text-align:start;text-decoration:none;cursor:pointer}' +
  ':where(.pocketrec-price){font-weight:600}' +
  // Square until the picture loads, so the list does not jump when it does.
  ':where(.pocketrec-image){display:block;width:100%;height:auto;aspect-ratio:1;object-fit:cover}'

export function formatPrice(price: number, currency?: string): string {
  if (currency) {
    try {
      return new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(price)
    } catch {
      // An unknown currency code is the shop's typo; a bare number still reads fine.
    }
  }
  return price.toFixed(2)
}

/** Builds the widget for one response; the caller puts it into the page. */
export function buildWidget(
  doc: Document,
  response: RecommendResponse,
  options: WidgetOptions,
): HTMLElement {
  const { href, onSelect } = options
  const given = options.template
  const template = typeof given === 'function' ? given : given && fillTemplate(given)
  const title = options.title ?? DEFAULT_TITLES[response.scenario] ?? 'Recommended'
  const section = create(doc, 'section', 'pocketrec')
  section.setAttribute('aria-label', title)
  section.setAttribute('data-attribution-id', response.attributionId)
  section.append(create(doc, 'h2', 'pocketrec-title', title))
  const list = create(doc, 'ul', 'pocketrec-list')
  response.items.forEach((item, position) => {
    const url = href ? href.replace('{id}', encodeURIComponent(item.productId)) : undefined
    const priceText = formatPrice(item.price, options.currency)
    const entry = create(doc, 'li', 'pocketrec-item')
    entry.setAttribute('data-product-id', item.productId)
    const select = () => {
      onSelect(item)
      if (url) return
      const detail: SelectDetail = {
        productId: item.productId,
        attributionId: response.attributionId,
        scenario: response.scenario,
      }
      section.dispatchEvent(new CustomEvent('pocketrec:select', { bubbles: true, detail }))
    }
    if (template) {
      const { productId, name, category, price, imageUrl } = item
      const view: TemplateItem = {
        productId,
        name,
        category,
        price,
        priceText,
        imageUrl,
        url,
        attributionId: response.attributionId,
        scenario: response.scenario,
        position,
      }
      const markup = template(view, { html })
      // A Node as it is; a string, `html`'s Markup or a TrustedHTML is the shop's own HTML.
      if (markup && typeof markup === 'object' && 'nodeType' in markup) entry.append(markup)
      else entry.innerHTML = String(markup)
      // Any click in the item: its links and buttons are the shop's.
      entry.addEventListener('click', select)
    } else {
      const control = url
        ? create(doc, 'a', 'pocketrec-link')
        : create(doc, 'button', 'pocketrec-link')
      if (url) control.setAttribute('href', url)
      else control.setAttribute('type', 'button')
      control.setAttribute('data-product-id', item.productId)
      if (item.imageUrl && IMAGE_URL.test(item.imageUrl)) control.append(image(doc, item.imageUrl))
      // The space keeps the accessible name "Trail shoe €49.00", not "Trail shoe€49.00".
      control.append(
        create(doc, 'span', 'pocketrec-name', item.name),
        ' ',
        create(doc, 'span', 'pocketrec-price', priceText),
      )
      control.addEventListener('click', select)
      entry.append(control)
    }
    list.append(entry)
  })
  section.append(list)
  return section
}

/**
 * A shop's `<template>` as an item template, for pages that place markup but run no code (inside
 * `<pocketrec-recs>`). Each copy's elements are filled from the item by attribute, never parsed:
 * `data-pocketrec-text="name"` sets the text, `data-pocketrec-href="url"` and
 * `data-pocketrec-src="imageUrl"` the link and the picture (an image the item has none for is
 * removed). Field names are TemplateItem's.
 */
export function fillTemplate(element: HTMLTemplateElement): ItemTemplate {
  return (item) => {
    const copy = element.content.cloneNode(true) as DocumentFragment
    const field = (name: string | null) =>
      name !== null && Object.prototype.hasOwnProperty.call(item, name)
        ? (item as unknown as Record<string, unknown>)[name]
        : undefined
    for (const el of copy.querySelectorAll('[data-pocketrec-text]')) {
      el.textContent = String(field(el.getAttribute('data-pocketrec-text')) ?? '')
    }
    for (const el of copy.querySelectorAll('[data-pocketrec-href]')) {
      const url = field(el.getAttribute('data-pocketrec-href'))
      if (typeof url === 'string') el.setAttribute('href', url)
    }
    // No picture rather than a broken one.
    for (const el of copy.querySelectorAll('[data-pocketrec-src]')) {
      const src = field(el.getAttribute('data-pocketrec-src'))
      if (typeof src === 'string' && IMAGE_URL.test(src)) el.setAttribute('src', src)
      else el.remove()
    }
    return copy
  }
}

/** What the catalogue guard lets through (shared/artifacts.ts IMAGE_URL): http(s) or a path. */
const IMAGE_URL = /^(https?:\/\/[^\s/?#]+|\/)\S*$/

/**
 * The product's picture. Its alt text is empty: the product's name is the next thing in the same
 * link, and a screen reader would otherwise read it twice (WCAG technique H2). The width and
 * height give the browser its shape before it loads.
 */
function image(doc: Document, src: string): HTMLElement {
  const img = create(doc, 'img', 'pocketrec-image')
  img.setAttribute('src', src)
  img.setAttribute('alt', '')
  img.setAttribute('loading', 'lazy')
  img.setAttribute('decoding', 'async')
  img.setAttribute('width', '160')
  img.setAttribute('height', '160')
  return img
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
}

/** Text safe inside HTML text and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ESCAPES[c]!)
}

/** What `html` returns: HTML whose values were escaped, put into another html`…` as it is. */
export class Markup {
  constructor(readonly value: string) {}

  toString(): string {
    return this.value
  }
}

/** The `html` helper item templates get: the literal parts as written, every value escaped. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Markup {
  return new Markup(
    strings.reduce((out, part, i) => {
      const value = values[i - 1]
      return out + (value instanceof Markup ? value.value : escapeHtml(value)) + part
    }),
  )
}

const styled = new WeakSet<Document>()

/**
 * Adds WIDGET_CSS once per document. A constructed stylesheet is not subject to CSP's
 * `style-src`; the <style> fallback (older Safari) is, and the widget then stays unstyled.
 */
export function ensureStyles(doc: Document): void {
  if (styled.has(doc)) return
  styled.add(doc)
  const Sheet = doc.defaultView?.CSSStyleSheet
  if (Sheet && 'replaceSync' in Sheet.prototype && Array.isArray(doc.adoptedStyleSheets)) {
    const sheet = new Sheet()
    sheet.replaceSync(WIDGET_CSS)
    doc.adoptedStyleSheets = [...doc.adoptedStyleSheets, sheet]
    return
  }
  const style = create(doc, 'style', 'pocketrec-style', WIDGET_CSS)
  // First in <head>, so a shop rule of equal specificity still comes later and wins.
  doc.head?.prepend(style)
}

function create(doc: Document, tag: string, className: string, text?: string): HTMLElement {
  const el = doc.createElement(tag)
  el.className = className
  if (text !== undefined) el.textContent = text
  return el
}
