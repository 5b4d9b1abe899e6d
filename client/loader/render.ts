// The recommendation widget: a labelled <section> with a heading and a list of links (or buttons
// when the shop gives no product URL). Built with createElement, never innerHTML, so product
// names cannot inject markup and pages with Trusted Types still work.
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
  /** Called before the browser follows a link or the `pocketrec:select` event is dispatched. */
  onSelect(item: RecommendedItem): void
}

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
  ':where(.pocketrec-price){font-weight:600}'

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
  const title = options.title ?? DEFAULT_TITLES[response.scenario] ?? 'Recommended'
  const section = create(doc, 'section', 'pocketrec')
  section.setAttribute('aria-label', title)
  section.setAttribute('data-attribution-id', response.attributionId)
  section.append(create(doc, 'h2', 'pocketrec-title', title))
  const list = create(doc, 'ul', 'pocketrec-list')
  for (const item of response.items) {
    const control = options.href
      ? create(doc, 'a', 'pocketrec-link')
      : create(doc, 'button', 'pocketrec-link')
    if (options.href) {
      control.setAttribute('href', options.href.replace('{id}', encodeURIComponent(item.productId)))
    } else {
      control.setAttribute('type', 'button')
    }
    control.setAttribute('data-product-id', item.productId)
    // The space keeps the accessible name "Trail shoe €49.00", not "Trail shoe€49.00".
    control.append(
      create(doc, 'span', 'pocketrec-name', item.name),
      ' ',
      create(doc, 'span', 'pocketrec-price', formatPrice(item.price, options.currency)),
    )
    control.addEventListener('click', () => {
      options.onSelect(item)
      if (options.href) return
      const detail: SelectDetail = {
        productId: item.productId,
        attributionId: response.attributionId,
        scenario: response.scenario,
      }
      section.dispatchEvent(new CustomEvent('pocketrec:select', { bubbles: true, detail }))
    })
    const entry = create(doc, 'li', 'pocketrec-item')
    entry.append(control)
    list.append(entry)
  }
  section.append(list)
  return section
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
