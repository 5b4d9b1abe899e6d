import { describe, expect, it } from 'vitest'
import type { RecommendedItem } from '../../shared/protocol'
import {
  buildWidget,
  DEFAULT_TITLES,
  ensureStyles,
  escapeHtml,
  formatPrice,
  html,
  WIDGET_CSS,
  type ItemTemplate,
} from './render'
import { asDocument, FakeDocument, FakeElement, fakeResponse } from './test-fakes'

function widget(
  options: { href?: string; items?: number; images?: string[]; template?: ItemTemplate } = {},
) {
  const doc = new FakeDocument()
  const selected: RecommendedItem[] = []
  const response = fakeResponse({ scenario: 'frequently-bought-together' }, options.items ?? 3)
  options.images?.forEach((url, i) => (response.items[i]!.imageUrl = url))
  const section = buildWidget(asDocument(doc), response, {
    href: options.href,
    template: options.template,
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

  it('shows the catalogue’s picture in each item that has one, shaped before it loads', () => {
    const { section } = widget({
      href: '/p/{id}',
      images: ['https://cdn.example/1.jpg?a=1&b="2"', '', '/images/3.jpg'],
    })
    const links = section.findAll('a')
    const [img] = links[0]!.children
    expect(img!.tagName).toBe('img')
    expect(Object.fromEntries(img!.attributes)).toEqual({
      // Set as an attribute value, never parsed as markup: quotes and & stay as they are.
      src: 'https://cdn.example/1.jpg?a=1&b="2"',
      alt: '',
      loading: 'lazy',
      decoding: 'async',
      width: '160',
      height: '160',
    })
    expect(img!.className).toBe('pocketrec-image')
    // The name stays the link's text: the picture adds nothing a screen reader would repeat.
    expect(links[0]!.textContent).toBe('Product 1 10.00')
    expect(links[1]!.findAll('img')).toEqual([])
    expect(links[2]!.findAll('img')[0]!.getAttribute('src')).toBe('/images/3.jpg')
    expect(WIDGET_CSS).toMatch(/\.pocketrec-image\)\{[^}]*aspect-ratio:1/)
  })

  it('shows no picture whose URL is not http(s) or a path, whoever built the response', () => {
    const { section } = widget({
      images: ['javascript:alert(1)', 'data:image/png;base64,AAAA', 'https:// x'],
    })
    expect(section.findAll('img')).toEqual([])
  })

  it('puts a template’s Node in each item and credits a click anywhere in it', () => {
    const doc = new FakeDocument()
    const template: ItemTemplate = (item) => {
      const card = doc.createElement('div')
      card.className = 'card'
      const buy = doc.createElement('span')
      buy.textContent = `${item.name} #${item.position}`
      card.append(buy)
      return card as unknown as Node
    }
    const { section, selected } = widget({ template })
    const events: unknown[] = []
    section.addEventListener('pocketrec:select', (e) => events.push((e as CustomEvent).detail))
    const items = section.findAll('li')
    expect(items.map((li) => [li.className, li.getAttribute('data-product-id')])).toEqual([
      ['pocketrec-item', 'sku-1'],
      ['pocketrec-item', 'sku-2'],
      ['pocketrec-item', 'sku-3'],
    ])
    expect(items.map((li) => li.textContent)).toEqual([
      'Product 1 #0',
      'Product 2 #1',
      'Product 3 #2',
    ])
    expect(section.findAll('button')).toEqual([])
    items[2]!.findAll('span')[0]!.click()
    expect(selected.map((item) => item.productId)).toEqual(['sku-3'])
    // Without a product URL the page is told, with the list's attribution id.
    expect(events).toEqual([
      {
        productId: 'sku-3',
        attributionId: 'attr-frequently-bought-together',
        scenario: 'frequently-bought-together',
      },
    ])
  })

  it('sets a template’s string as the item’s HTML; the html helper escapes every value', () => {
    // `h`, not `html`: prettier would reformat an html`…` literal as markup.
    const { section } = widget({
      href: '/p/{id}',
      images: ['/i/1.jpg'],
      items: 1,
      template: (item, { html: h }) =>
        h`<a class="mine" href="${item.url}"><img src="${item.imageUrl}" alt="">${item.name}</a>`,
    })
    expect(section.findAll('li')[0]!.html).toBe(
      '<a class="mine" href="/p/sku-1"><img src="/i/1.jpg" alt="">Product 1</a>',
    )
    const h = html
    expect(String(h`<b title="${'" onmouseover="x'}">${'<img src=x onerror=alert(1)>'}</b>`)).toBe(
      '<b title="&quot; onmouseover=&quot;x">&lt;img src=x onerror=alert(1)&gt;</b>',
    )
    expect(String(h`${1}${null}${undefined}`)).toBe('1')
    // Markup it made goes into another html`…` as it is; a string that looks like it does not.
    const picture = h`<img src="${'/a.jpg?x=1&y=2'}">`
    expect(String(h`<a>${picture}${'<img src=x>'}</a>`)).toBe(
      '<a><img src="/a.jpg?x=1&amp;y=2">&lt;img src=x&gt;</a>',
    )
    expect(escapeHtml(`&<>"'`)).toBe('&amp;&lt;&gt;&quot;&#39;')
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
