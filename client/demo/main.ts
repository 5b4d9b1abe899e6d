// The demo storefront. It is an ordinary shop page: it knows pocketrec only through the script
// tag's `window.pocketrec(...)` commands, exactly as a real shop would, and renders what the
// worker returns with the "why" (recall source) of each item beside it.
import { decodeCatalogue, decodePools } from '../../shared/compact-artifacts'
import { own } from '../../shared/own'
import type {
  CandidatePools,
  DeviceCatalogueItem,
  ModelManifest,
  RecommendResponse,
  Scenario,
  WorkerStatus,
} from '../../shared/protocol'
import { drawProductImage } from './product-image'
import { renderPanel, type PanelState } from './side-panel'

type PocketrecCall = (command: string, ...args: unknown[]) => Promise<unknown>

declare global {
  interface Window {
    pocketrec: PocketrecCall | unknown[]
  }
}

const CART_KEY = 'pocket-market-cart'
const page = document.querySelector<HTMLElement>('#page')!
const panel = document.querySelector<HTMLElement>('#panel')!
const panelState: PanelState = { status: null, last: null, error: null }

let catalogue: DeviceCatalogueItem[] = []
let byId = new Map<string, DeviceCatalogueItem>()
let pools: CandidatePools | null = null

/** The script tag loads asynchronously; until then `window.pocketrec` is the queue array. */
async function call<T>(command: string, ...args: unknown[]): Promise<T> {
  for (let waited = 0; typeof window.pocketrec !== 'function'; waited += 50) {
    if (waited > 20_000) throw new Error('the pocketrec script tag did not load')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return (window.pocketrec as PocketrecCall)(command, ...args) as Promise<T>
}

function track(event: string, properties: Record<string, unknown>, attributionId?: string) {
  const extra = attributionId ? [{ attribution_id: attributionId }] : []
  void call('track', event, properties, ...extra).catch((error: unknown) => showError(error))
}

function showError(error: unknown) {
  panelState.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
  renderPanel(panel, panelState)
}

function readCart(): string[] {
  try {
    const raw = JSON.parse(sessionStorage.getItem(CART_KEY) ?? '[]')
    return Array.isArray(raw) ? raw.filter((id): id is string => typeof id === 'string') : []
  } catch {
    return []
  }
}

function writeCart(ids: string[]) {
  sessionStorage.setItem(CART_KEY, JSON.stringify(ids))
  document.querySelector('#cart-count')!.textContent = String(ids.length)
}

function price(value: number): string {
  return `€${value.toFixed(2)}`
}

function escapeHtml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

function productCard(item: DeviceCatalogueItem, why?: string, attributionId?: string): string {
  const attribution = attributionId ? ` data-attribution="${attributionId}"` : ''
  return (
    `<li class="card"><a href="#/product/${encodeURIComponent(item.id)}" data-product="${escapeHtml(item.id)}"${attribution}>` +
    `${drawProductImage(item.name, item.category, 140)}<span class="name">${escapeHtml(item.name)}</span></a>` +
    `<span class="meta">${escapeHtml(item.brand)} · ${price(item.price)}</span>` +
    (why ? `<span class="why" title="recall source">${escapeHtml(why)}</span>` : '') +
    `</li>`
  )
}

/** One recommendation shelf, filled asynchronously so the page never waits for the model. */
function shelf(title: string, scenario: Scenario, productId?: string): string {
  const id = `shelf-${scenario}`
  queueMicrotask(() => void fillShelf(id, scenario, productId))
  return `<section class="shelf" aria-labelledby="${id}-title"><h2 id="${id}-title">${title}</h2><ul id="${id}" class="cards" aria-busy="true"></ul></section>`
}

async function fillShelf(id: string, scenario: Scenario, productId?: string) {
  const list = document.getElementById(id)
  if (!list) return
  try {
    const response = await call<RecommendResponse>('recommend', { scenario, productId, limit: 8 })
    panelState.last = response
    renderPanel(panel, panelState)
    const cards = response.items
      .map((item) => byId.get(item.productId))
      .filter((item): item is DeviceCatalogueItem => item !== undefined)
      .map((item, i) => productCard(item, response.items[i]!.source, response.attributionId))
    list.innerHTML =
      cards.join('') || '<li class="empty">Nothing to show yet — browse a little.</li>'
    list.dataset.attribution = response.attributionId
  } catch (error) {
    // A shop shows shoppers its own page, never an error name: the shelf stays out of sight
    // (before consent there is nothing to show at all) and the console says why.
    console.warn(`Pocket Market: the ${scenario} shelf is hidden:`, error)
    list.closest('section')?.setAttribute('hidden', '')
  } finally {
    list.removeAttribute('aria-busy')
  }
}

function homePage(): string {
  return (
    `<h1>Welcome to Pocket Market</h1><p class="lead">Every shelf below is ranked by a model running in your browser.</p>` +
    shelf('Picked for this visit', 'for-you') +
    shelf('Trending now', 'trending') +
    shelf('Recently viewed', 'recently-viewed')
  )
}

function categoryPage(category: string): string {
  const indices = (pools && own(pools.byCategory, category)) ?? []
  const items = indices
    .slice(0, 24)
    .map((i) => catalogue[i]!)
    .filter(Boolean)
  track('Product List Viewed', {
    category,
    products: items.map((item) => ({ product_id: item.id })),
  })
  return `<h1>${escapeHtml(category)}</h1><ul class="cards grid">${items.map((item) => productCard(item)).join('')}</ul>`
}

function productPage(item: DeviceCatalogueItem): string {
  track('Product Viewed', {
    product_id: item.id,
    category: item.category,
    brand: item.brand,
    price: item.price,
  })
  return (
    `<article class="product">${drawProductImage(item.name, item.category, 280)}<div>` +
    `<h1>${escapeHtml(item.name)}</h1><p class="meta">${escapeHtml(item.brand)} · <a href="#/category/${encodeURIComponent(item.category)}">${escapeHtml(item.category)}</a></p>` +
    `<p class="price">${price(item.price)}</p>` +
    (item.inStock
      ? `<button type="button" id="add-to-cart" data-product="${escapeHtml(item.id)}">Add to cart</button>`
      : `<p class="out">Out of stock</p>`) +
    `</div></article>` +
    shelf('Similar items', 'similar', item.id) +
    shelf('Frequently bought together', 'frequently-bought-together', item.id) +
    shelf('Picked for this visit', 'for-you')
  )
}

function cartPage(): string {
  const items = readCart()
    .map((id) => byId.get(id))
    .filter((item): item is DeviceCatalogueItem => item !== undefined)
  const total = items.reduce((sum, item) => sum + item.price, 0)
  const rows = items
    .map(
      (item) =>
        `<li>${escapeHtml(item.name)} · ${price(item.price)} <button type="button" data-remove="${escapeHtml(item.id)}">Remove</button></li>`,
    )
    .join('')
  return (
    `<h1>Your cart</h1>` +
    (items.length
      ? `<ul class="cart">${rows}</ul><p class="price">Total ${price(total)}</p><button type="button" id="checkout">Complete order</button>`
      : '<p>Your cart is empty.</p>') +
    shelf('Picked for this visit', 'for-you')
  )
}

function route() {
  const [, kind, rawArg] = location.hash.split('/')
  const arg = rawArg ? decodeURIComponent(rawArg) : ''
  if (kind === 'product' && byId.has(arg)) page.innerHTML = productPage(byId.get(arg)!)
  else if (kind === 'category' && arg) page.innerHTML = categoryPage(arg)
  else if (kind === 'cart') page.innerHTML = cartPage()
  else page.innerHTML = homePage()
  page.focus()
  window.scrollTo(0, 0)
}

function onClick(event: MouseEvent) {
  const target = event.target as HTMLElement
  const link = target.closest<HTMLAnchorElement>('a[data-attribution]')
  if (link) track('Product Clicked', { product_id: link.dataset.product }, link.dataset.attribution)
  const add = target.closest<HTMLButtonElement>('#add-to-cart')
  if (add) {
    const item = byId.get(add.dataset.product!)!
    writeCart([...readCart(), item.id])
    track('Product Added', {
      product_id: item.id,
      category: item.category,
      price: item.price,
      quantity: 1,
    })
    add.textContent = 'Added ✓'
  }
  const remove = target.closest<HTMLButtonElement>('[data-remove]')
  if (remove) {
    const id = remove.dataset.remove!
    const cart = readCart()
    cart.splice(cart.indexOf(id), 1)
    writeCart(cart)
    track('Product Removed', { product_id: id })
    route()
  }
  if (target.closest('#checkout')) {
    const products = readCart().map((id) => ({ product_id: id, price: byId.get(id)?.price }))
    track('Order Completed', { order_id: `o-${Date.now()}`, products })
    writeCart([])
    page.innerHTML = `<h1>Thank you!</h1><p>Your order is on its way.</p>${shelf('Picked for this visit', 'for-you')}`
  }
}

function askConsent() {
  const dialog = document.querySelector<HTMLElement>('#consent')!
  if (localStorage.getItem('pocket-market-consent') === 'granted') {
    void call('consent', true)
    return
  }
  dialog.hidden = false
  dialog.querySelector('#consent-yes')!.addEventListener('click', () => {
    localStorage.setItem('pocket-market-consent', 'granted')
    dialog.hidden = true
    void call('consent', true).then(route)
  })
  dialog.querySelector('#consent-no')!.addEventListener('click', () => {
    dialog.hidden = true
  })
}

async function pollStatus() {
  try {
    // The tag's status wraps the worker's own (null until the worker runs).
    panelState.status = (await call<{ worker: WorkerStatus | null }>('status')).worker
    renderPanel(panel, panelState)
  } catch {
    // The panel shows the last status; a missed poll is not worth an error.
  }
  setTimeout(() => void pollStatus(), 1000)
}

function decoded<T>(result: { ok: true; value: T } | { ok: false; error: string }): T {
  if (!result.ok) throw new Error(result.error)
  return result.value
}

async function main() {
  const manifestUrl = new URL('/artifacts/manifest.json', location.href)
  const manifest = (await (await fetch(manifestUrl)).json()) as ModelManifest
  // The same compact artifacts the worker downloads (P2b): columns, decoded and checked here.
  const bytes = (url: string) =>
    fetch(new URL(url, manifestUrl)).then(async (r) => new Uint8Array(await r.arrayBuffer()))
  const [catalogueBytes, poolsBytes] = await Promise.all([
    bytes(manifest.catalogue.url),
    bytes(manifest.pools.url),
  ])
  const catalogueFile = decoded(decodeCatalogue(catalogueBytes))
  const poolsFile = decoded(decodePools(poolsBytes)).pools
  catalogue = catalogueFile.items
  byId = new Map(catalogue.map((item) => [item.id, item]))
  pools = poolsFile
  const categories = Object.keys(pools.byCategory).sort().slice(0, 12)
  document.querySelector('#categories')!.innerHTML = categories
    .map((c) => `<a href="#/category/${encodeURIComponent(c)}">${escapeHtml(c)}</a>`)
    .join('')
  writeCart(readCart())
  document.addEventListener('click', onClick)
  window.addEventListener('hashchange', route)
  panel.addEventListener('click', (event) => {
    if ((event.target as HTMLElement).closest('#forget')) {
      localStorage.removeItem('pocket-market-consent')
      void call('consent', false).then(() => location.reload())
    }
  })
  askConsent()
  route()
  void pollStatus()
}

main().catch(showError)
