import { describe, expect, it, vi } from 'vitest'
import type { RenderOptions } from './widget-mounts'
import { defineRecsElement } from './recs-element'

/** Just what the element class uses of HTMLElement. */
class FakeHTMLElement {
  isConnected = true
  readonly attrs = new Map<string, string>()
  /** The element's children, by selector: only `template` is asked for. */
  readonly children = new Map<string, unknown>()
  getAttribute(name: string): string | null {
    return this.attrs.get(name) ?? null
  }
  querySelector(selector: string): unknown {
    return this.children.get(selector) ?? null
  }
}

interface RecsElement extends FakeHTMLElement {
  connectedCallback(): void
  attributeChangedCallback(): void
  disconnectedCallback(): void
}

function define() {
  const defined = new Map<string, new () => RecsElement>()
  const registry = {
    get: (name: string) => defined.get(name),
    define: (name: string, ctor: new () => RecsElement) => defined.set(name, ctor),
  }
  const win = { customElements: registry, HTMLElement: FakeHTMLElement }
  const loader = {
    render: vi.fn((_options: RenderOptions) => Promise.resolve({ status: 'superseded' as const })),
    unmount: vi.fn(),
  }
  defineRecsElement(win as unknown as Window & typeof globalThis, loader)
  return { defined, loader, win }
}

describe('<pocketrec-recs>', () => {
  it('renders once per upgrade from its attributes', async () => {
    const { defined, loader } = define()
    const Recs = defined.get('pocketrec-recs')!
    const el = new Recs()
    el.attrs.set('scenario', 'similar')
    el.attrs.set('product-id', 'sku-7')
    el.attrs.set('limit', '4')
    el.attrs.set('heading', 'You may also like')
    // An upgrade reports each attribute, then connects.
    el.attributeChangedCallback()
    el.attributeChangedCallback()
    el.connectedCallback()
    await Promise.resolve()
    expect(loader.render).toHaveBeenCalledTimes(1)
    expect(loader.render).toHaveBeenCalledWith({
      slot: 'similar',
      el,
      productId: 'sku-7',
      limit: 4,
      title: 'You may also like',
      template: undefined,
    })
  })

  it('renders with its own <template>, kept after the widget replaced its children', async () => {
    const { defined, loader } = define()
    const el = new (defined.get('pocketrec-recs')!)()
    const template = { tagName: 'template' }
    el.children.set('template', template)
    el.connectedCallback()
    await Promise.resolve()
    el.children.clear()
    el.attrs.set('limit', '3')
    el.attributeChangedCallback()
    await Promise.resolve()
    expect(loader.render.mock.calls.map(([options]) => options.template)).toEqual([
      template,
      template,
    ])
  })

  it('defaults to for-you, ignores a bad limit, and unmounts when removed', async () => {
    const { defined, loader } = define()
    const el = new (defined.get('pocketrec-recs')!)()
    el.attrs.set('limit', 'lots')
    el.connectedCallback()
    await Promise.resolve()
    expect(loader.render.mock.calls[0]![0]).toMatchObject({ slot: 'for-you', limit: undefined })
    el.disconnectedCallback()
    expect(loader.unmount).toHaveBeenCalledWith(el)
  })

  it('leaves an element another copy defined alone', () => {
    const { defined, loader, win } = define()
    const first = defined.get('pocketrec-recs')
    defineRecsElement(win as unknown as Window & typeof globalThis, loader)
    expect(defined.get('pocketrec-recs')).toBe(first)
  })
})
