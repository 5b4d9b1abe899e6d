import { describe, expect, it } from 'vitest'
import type { RecommendedItem } from '../../shared/protocol'
import { buildWidget, DEFAULT_TITLES, ensureStyles, formatPrice, WIDGET_CSS } from './render'
import { asDocument, FakeDocument, FakeElement, fakeResponse } from './test-fakes'

function widget(options: { href?: string; items?: number } = {}) {
  const doc = new FakeDocument()
  const selected: RecommendedItem[] = []
  const response = fakeResponse({ scenario: 'frequently-bought-together' }, options.items ?? 3)
  const section = buildWidget(asDocument(doc), response, {
    href: options.href,
    onSelect: (item) => selected.push(item),
  }) as unknown as FakeElement
  return { section, selected, response }
}

describe('buildWidget', () => {
  it('labels the section with its heading and lists every item in order', () => {
    const { section } = widget()
    expect(section.tagName).toBe('section')
    expect(section.className).toBe('pocketrec')
    expect(section.getAttribute('aria-label')).toBe('Frequently bought together')
    expect(section.getAttribute('data-attribution-id')).toBe('attr-frequently-bought-together')
    const [heading, list] = section.children
    expect([heading!.tagName, heading!.className]).toEqual(['h2', 'pocketrec-title'])
    expect([list!.tagName, list!.className]).toEqual(['ul', 'pocketrec-list'])
    expect(list!.children.map((li) => [li.tagName, li.className])).toEqual([
      ['li', 'pocketrec-item'],
      ['li', 'pocketrec-item'],
      ['li', 'pocketrec-item'],
    ])
    const names = list!.findAll('span').filter((s) => s.className === 'pocketrec-name')
    expect(names.map((s) => s.textContent)).toEqual(['Product 1', 'Product 2', 'Product 3'])
  })

  it('names every control by product name and price, with classes to style', () => {
    const { section } = widget({ href: '/p/{id}?ref=recs' })
    const link = section.findAll('a')[0]!
    expect(link.className).toBe('pocketrec-link')
    expect(link.getAttribute('href')).toBe('/p/sku-1?ref=recs')
    expect(link.getAttribute('data-product-id')).toBe('sku-1')
    expect(link.children.map((span) => [span.className, span.textContent])).toEqual([
      ['pocketrec-name', 'Product 1'],
      ['pocketrec-price', '10.00'],
    ])
    expect(link.textContent).toBe('Product 1 10.00')
  })

  it('puts a product name in as text, never as markup', () => {
    const doc = new FakeDocument()
    const response = fakeResponse({ scenario: 'for-you' }, 1)
    response.items[0]!.name = '<img src=x onerror=alert(1)>'
    response.items[0]!.productId = 'a/b?c'
    const section = buildWidget(asDocument(doc), response, {
      href: '/p/{id}',
      onSelect: () => {},
    }) as unknown as FakeElement
    const link = section.findAll('a')[0]!
    expect(link.findAll('img')).toEqual([])
    expect(link.children[0]!.textContent).toBe('<img src=x onerror=alert(1)>')
    expect(link.getAttribute('href')).toBe('/p/a%2Fb%3Fc')
  })

  it('reports a selected item, dispatching pocketrec:select only for buttons', () => {
    const buttons = widget()
    const events: unknown[] = []
    buttons.section.addEventListener('pocketrec:select', (e) =>
      events.push((e as CustomEvent).detail),
    )
    buttons.section.findAll('button')[2]!.click()
    expect(buttons.selected.map((item) => item.productId)).toEqual(['sku-3'])
    expect(events).toEqual([
      {
        productId: 'sku-3',
        attributionId: 'attr-frequently-bought-together',
        scenario: 'frequently-bought-together',
      },
    ])
    const links = widget({ href: '/p/{id}' })
    const linkEvents: unknown[] = []
    links.section.addEventListener('pocketrec:select', (e) => linkEvents.push(e))
    links.section.findAll('a')[0]!.click()
    expect(links.selected).toHaveLength(1)
    expect(linkEvents).toEqual([])
  })

  it('has a default title for every scenario', () => {
    expect(Object.keys(DEFAULT_TITLES).sort()).toEqual([
      'for-you',
      'frequently-bought-together',
      'recently-viewed',
      'similar',
      'trending',
    ])
  })
})

describe('formatPrice', () => {
  it('formats with the currency when one is given, and plainly otherwise', () => {
    expect(formatPrice(12.5)).toBe('12.50')
    expect(formatPrice(12.5, 'EUR')).toMatch(/12[.,]50/)
    expect(formatPrice(12.5, 'EUR')).toMatch(/€/)
  })

  it('falls back to the plain number for an unknown currency code', () => {
    expect(formatPrice(3, 'euro')).toBe('3.00')
  })
})

describe('ensureStyles', () => {
  it('adds one zero-specificity stylesheet per document', () => {
    const doc = new FakeDocument()
    ensureStyles(asDocument(doc))
    ensureStyles(asDocument(doc))
    expect(doc.head.children.map((el) => el.tagName)).toEqual(['style'])
    expect(doc.head.children[0]!.textContent).toBe(WIDGET_CSS)
    // Every rule sits inside :where(), so any rule a shop writes wins.
    for (const rule of WIDGET_CSS.split('}').filter(Boolean)) expect(rule).toMatch(/^:where\(/)
  })
})
