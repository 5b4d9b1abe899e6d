// Test doubles for the loader's unit tests: a DOM just big enough for the widget (no happy-dom
// or jsdom here; real-DOM checks belong to the browser tests), a window with a manual idle
// queue, and a worker API that records every call.
import type {
  RecommendRequest,
  RecommendResponse,
  StatusError,
  WorkerStatus,
} from '../../shared/protocol'
import type { PocketrecWorkerApi, WorkerConfig } from '../worker/api'
import type { LoaderWindow } from './create-loader'
import type { WorkerConnection } from './start-worker'

export class FakeText {
  parentNode: FakeElement | null = null
  constructor(public data: string) {}
  get textContent(): string {
    return this.data
  }
}

type FakeNode = FakeElement | FakeText

export class FakeElement {
  readonly nodeType = 1
  className = ''
  /** What was last set as innerHTML (not parsed: the fake has no HTML parser). */
  html: string | undefined
  parentNode: FakeElement | null = null
  readonly attributes = new Map<string, string>()
  childNodes: FakeNode[] = []
  readonly listeners = new Map<string, Array<(event: Event) => void>>()
  isConnected = true

  constructor(
    readonly tagName: string,
    readonly ownerDocument: FakeDocument,
  ) {}

  get children(): FakeElement[] {
    return this.childNodes.filter((node): node is FakeElement => node instanceof FakeElement)
  }

  get textContent(): string {
    return this.childNodes.map((node) => node.textContent).join('')
  }

  set textContent(text: string) {
    this.replaceChildren(new FakeText(text))
  }

  set innerHTML(markup: string) {
    this.childNodes = []
    this.html = String(markup)
  }

  setAttribute(name: string, value: string): void {
    this.attributes.set(name, value)
  }

  getAttribute(name: string): string | null {
    return this.attributes.get(name) ?? null
  }

  append(...nodes: Array<FakeNode | string>): void {
    for (const item of nodes) {
      const node = typeof item === 'string' ? new FakeText(item) : item
      node.parentNode = this
      this.childNodes.push(node)
    }
  }

  prepend(...nodes: FakeNode[]): void {
    for (const node of nodes) node.parentNode = this
    this.childNodes.unshift(...nodes)
  }

  replaceChildren(...nodes: FakeNode[]): void {
    this.childNodes = []
    this.append(...nodes)
  }

  addEventListener(type: string, listener: (event: Event) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener])
  }

  dispatchEvent(event: Event): boolean {
    for (const listener of this.listeners.get(event.type) ?? []) listener(event)
    if (event.bubbles) this.parentNode?.dispatchEvent(event)
    return true
  }

  click(): void {
    this.dispatchEvent(new Event('click', { bubbles: true }))
  }

  /** Every descendant with this tag name, in document order. */
  findAll(tagName: string): FakeElement[] {
    return this.children.flatMap((child) => [
      ...(child.tagName === tagName ? [child] : []),
      ...child.findAll(tagName),
    ])
  }
}

export class FakeDocument {
  readonly head = new FakeElement('head', this)
  readonly body = new FakeElement('body', this)
  readonly defaultView = null

  createElement(tagName: string): FakeElement {
    return new FakeElement(tagName, this)
  }

  /** Only `#id` selectors, matched against the `id` attribute. */
  querySelector(selector: string): FakeElement | null {
    const id = selector.replace(/^#/, '')
    return this.body.findAll('div').find((el) => el.getAttribute('id') === id) ?? null
  }
}

export const asElement = (el: FakeElement): Element => el as unknown as Element
export const asDocument = (doc: FakeDocument): Document => doc as unknown as Document

export interface FakeWindow extends LoaderWindow {
  /** Runs the idle callbacks scheduled so far. */
  runIdle(): void
  pendingIdle(): number
  dispatch(type: string, detail: unknown): void
  databasesCalls: number
  /** Every event the loader dispatched on the window, in order. */
  dispatched: CustomEvent[]
}

export function createFakeWindow(
  options: { databases?: string[] | null; idleCallback?: boolean } = {},
): FakeWindow & { document: Document; idleOptions: unknown[] } {
  const doc = new FakeDocument()
  const listeners = new Map<string, Set<(event: Event) => void>>()
  const idle = new Map<number, () => void>()
  const idleOptions: unknown[] = []
  let lastId = 0
  const schedule = (task: () => void): number => {
    idle.set(++lastId, task)
    return lastId
  }
  const win: FakeWindow & { document: Document; idleOptions: unknown[] } = {
    document: asDocument(doc),
    location: { href: 'https://shop.example/products/sku-9' },
    idleOptions,
    databasesCalls: 0,
    dispatched: [],
    dispatchEvent: (event) => {
      win.dispatched.push(event as CustomEvent)
      return true
    },
    addEventListener: (type, listener) =>
      listeners.set(type, (listeners.get(type) ?? new Set()).add(listener)),
    removeEventListener: (type, listener) => listeners.get(type)?.delete(listener),
    setTimeout: (task) => schedule(task),
    clearTimeout: (id) => idle.delete(id),
    runIdle: () => {
      const tasks = [...idle.values()]
      idle.clear()
      for (const task of tasks) task()
    },
    pendingIdle: () => idle.size,
    dispatch: (type, detail) => {
      for (const listener of listeners.get(type) ?? []) listener(new CustomEvent(type, { detail }))
    },
  }
  if (options.idleCallback) {
    win.requestIdleCallback = (task, idleOpts) => {
      idleOptions.push(idleOpts)
      return schedule(task)
    }
    win.cancelIdleCallback = (id) => idle.delete(id)
  }
  const names = options.databases
  if (names !== undefined) {
    win.indexedDB = names
      ? {
          databases: async () => {
            win.databasesCalls++
            return names.map((name) => ({ name }))
          },
        }
      : {}
  }
  return win
}

export const WORKER_STATUS: WorkerStatus = {
  consent: false,
  backend: 'wasm',
  backendReason: 'fastest correct backend',
  probes: [],
  modelVersion: 'v1',
  lists: 'model',
  events: 0,
  sessions: 0,
  training: { state: 'idle', steps: 0, losses: [] },
  recallIndex: { state: 'exact' },
  error: null,
}

export function fakeResponse(request: RecommendRequest, count = 2): RecommendResponse {
  return {
    attributionId: `attr-${request.scenario}`,
    scenario: request.scenario,
    items: Array.from({ length: count }, (_, i) => ({
      productId: `sku-${i + 1}`,
      name: `Product ${i + 1}`,
      category: 'shoes',
      price: 10 + i,
      score: 1 - i / 10,
      source: 'trending' as const,
    })),
    modelVersion: 'v1',
    backend: 'wasm',
    latencyMs: 1,
    coldStart: true,
  }
}

/** A worker that records calls in order; `startWorker` counts starts and terminations. */
export function createFakeWorker(options: { items?: number; error?: StatusError } = {}) {
  const calls: Array<[keyof PocketrecWorkerApi, ...unknown[]]> = []
  const configs: WorkerConfig[] = []
  let terminated = 0
  let announce: (error: StatusError) => void = () => {}
  const api: PocketrecWorkerApi = {
    init: async (config) => {
      calls.push(['init', config])
      return WORKER_STATUS
    },
    track: async (event) => {
      calls.push(['track', event])
      return { status: 'stored' }
    },
    recommend: async (request) => {
      calls.push(['recommend', request])
      return fakeResponse(request, options.items)
    },
    status: async () => {
      calls.push(['status'])
      return { ...WORKER_STATUS, consent: true, error: options.error ?? null }
    },
    // Not recorded: the supervisor asks it after every start, which would interleave every
    // test's sequence of calls.
    ready: async () => ({ ...WORKER_STATUS, consent: true, error: options.error ?? null }),
    // Not recorded either; `options.error`, then what `failLater` hands it.
    nextError: (seen) =>
      new Promise((resolve) => {
        if (options.error && options.error.message !== seen) resolve(options.error)
        else announce = resolve
      }),
    setConsent: async (granted) => {
      calls.push(['setConsent', granted])
    },
    forget: async () => {
      calls.push(['forget'])
    },
  }
  const startWorker = async (config: WorkerConfig): Promise<WorkerConnection> => {
    configs.push(config)
    const status = await api.init(config)
    return { api, mode: 'worker', status, terminate: () => void terminated++ }
  }
  return {
    api,
    calls,
    startWorker,
    /** How many times a worker was started. */
    get starts() {
      return configs.length
    },
    get terminated() {
      return terminated
    },
    /** The worker finds a failure after its start: its pending nextError() answers. */
    failLater: (error: StatusError) => announce(error),
    names: () => calls.map(([name]) => name),
  }
}

/** Lets every pending promise callback run. */
export const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))
