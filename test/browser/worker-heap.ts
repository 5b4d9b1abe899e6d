// The worker's memory as Chromium's DevTools protocol reports it: the JS heap in use and the
// backing stores of array buffers (typed arrays, and WASM memory, which never shrinks), after a
// forced garbage collection, so that what is counted is what the worker still holds.
import type { BrowserContext, Page } from 'playwright-core'

export interface WorkerHeap {
  /** Live objects on the worker's JS heap after a collection. */
  jsHeapBytes: number
  /** ArrayBuffer backing stores: typed arrays (the item table; tensors on the cpu backend). */
  arrayBufferBytes: number
  /** The TF.js wasm backend's memory (its tensors); it grows and never shrinks. */
  wasmBytes: number
  totalBytes: number
}

/** Attaches to the page's first worker whose URL contains `urlPart` and asks it. */
export async function measureWorkerHeap(
  context: BrowserContext,
  page: Page,
  urlPart = 'pocketrec-worker',
): Promise<WorkerHeap> {
  const cdp = await context.newCDPSession(page)
  try {
    const { targetInfos } = await cdp.send('Target.getTargets')
    const worker = targetInfos.find((t) => t.type === 'worker' && t.url.includes(urlPart))
    if (!worker) {
      throw new Error(
        `expected a worker at a URL with ${urlPart}, got ${targetInfos.map((t) => `${t.type} ${t.url}`).join(', ')}`,
      )
    }
    // A dedicated worker's own commands go through the page's session (non-flat attach).
    const { sessionId } = await cdp.send('Target.attachToTarget', {
      targetId: worker.targetId,
      flatten: false,
    })
    let next = 1
    const pending = new Map<number, (result: unknown) => void>()
    cdp.on('Target.receivedMessageFromTarget', (event) => {
      const message = JSON.parse(event.message) as { id?: number; result?: unknown }
      if (message.id !== undefined) pending.get(message.id)?.(message.result)
    })
    const call: Call = <T>(method: string, params: object = {}): Promise<T> => {
      const id = next++
      const reply = new Promise<T>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`expected the worker to answer ${method} within 60 s`)),
          60_000,
        )
        pending.set(id, (result) => {
          clearTimeout(timer)
          resolve(result as T)
        })
      })
      const message = JSON.stringify({ id, method, params })
      void cdp.send('Target.sendMessageToTarget', { sessionId, message })
      return reply
    }
    await call('HeapProfiler.collectGarbage')
    const usage = await call<{ usedSize: number; backingStorageSize?: number }>(
      'Runtime.getHeapUsage',
    )
    const arrayBufferBytes = usage.backingStorageSize ?? 0
    const wasmBytes = await wasmMemoryBytes(call)
    return {
      jsHeapBytes: usage.usedSize,
      arrayBufferBytes,
      wasmBytes,
      totalBytes: usage.usedSize + arrayBufferBytes + wasmBytes,
    }
  } finally {
    await cdp.detach().catch(() => undefined)
  }
}

type Call = <T>(method: string, params?: object) => Promise<T>

/**
 * The TF.js wasm backend's memory (getHeapUsage leaves WebAssembly.Memory out). TF.js keeps its
 * engine on the global scope (`_tfengine`), so the worker's registered backends can be read from
 * there; querying every WebAssembly.Memory by prototype never answered in a busy worker.
 */
async function wasmMemoryBytes(call: Call): Promise<number> {
  const expression = `(() => {
    const registry = globalThis._tfengine?.registry ?? {}
    return Object.values(registry).reduce((sum, b) => sum + (b?.wasm?.HEAPU8?.buffer.byteLength ?? 0), 0)
  })()`
  const total = await call<{ result: { value: number } }>('Runtime.evaluate', {
    expression,
    returnByValue: true,
  })
  return total.result.value
}
