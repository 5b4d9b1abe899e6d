// `<pocketrec-recs scenario="similar" product-id="sku-1" limit="8" heading="…">`: the widget as an
// element, for shops whose templates can place markup but not run code. Light DOM, so the shop's
// CSS applies; whatever it contains stays as the fallback until recommendations arrive.
import type { Scenario } from '../../shared/protocol'
import type { Loader } from './create-loader'
import { warn } from './report'

// Elements with a render already queued for this microtask.
const scheduled = new WeakSet<Element>()
// Each element's own <template> (render.ts fillTemplate), kept: the widget replaces the children.
const templates = new WeakMap<Element, HTMLTemplateElement>()

export function defineRecsElement(
  win: Window & typeof globalThis,
  loader: Pick<Loader, 'render' | 'unmount'>,
): void {
  const registry = win.customElements
  if (!registry || registry.get('pocketrec-recs')) return
  registry.define(
    'pocketrec-recs',
    class extends win.HTMLElement {
      // A getter, not a static field: lowered to ES2019 a field costs the tag a helper.
      static get observedAttributes(): string[] {
        return ['scenario', 'product-id', 'limit', 'heading']
      }

      connectedCallback(): void {
        this.update()
      }

      attributeChangedCallback(): void {
        if (this.isConnected) this.update()
      }

      disconnectedCallback(): void {
        loader.unmount(this)
      }

      // An upgrade reports every attribute, then connects: coalesce them into one render.
      private update(): void {
        if (scheduled.has(this)) return
        scheduled.add(this)
        queueMicrotask(() => {
          scheduled.delete(this)
          if (!this.isConnected) return
          const limit = Number(this.getAttribute('limit'))
          const template = templates.get(this) || this.querySelector('template')
          if (template) templates.set(this, template)
          loader
            .render({
              slot: (this.getAttribute('scenario') ?? 'for-you') as Scenario,
              el: this,
              productId: this.getAttribute('product-id') ?? undefined,
              limit: limit > 0 ? limit : undefined,
              title: this.getAttribute('heading') ?? undefined,
              template: template || undefined,
            })
            .catch(warn)
        })
      }
    },
  )
}
