// The worker's memory as Chromium's DevTools protocol reports it: the JS heap in use and the
// backing stores of array buffers (typed arrays, and WASM memory, which never shrinks), after a
// forced garbage collection, so that what is counted is what the worker still holds.
import type { BrowserContext, Page } from 'playwright-core'

export interface WorkerHeap {
  /** Live objects on the worker's JS heap after a collection. */
  jsHeapBytes: number
  /** ArrayBuffer backing stores: typed arrays (the item table; tensors on the cpu backend). */
  arrayBufferBytes: number
  /** WebAssembly.Memory (tensors on the wasm backend); it grows and never shrinks. */
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
      const reply = new Promise<T>((resolve) => pending.set(id, resolve as (r: unknown) => void))
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

/** Every live WebAssembly.Memory's size (getHeapUsage leaves them out): queried by prototype. */
async function wasmMemoryBytes(call: Call): Promise<number> {
  const prototype = await call<{ result: { objectId: string } }>('Runtime.evaluate', {
    expression: 'WebAssembly.Memory.prototype',
  })
  const memories = await call<{ objects: { objectId: string } }>('Runtime.queryObjects', {
    prototypeObjectId: prototype.result.objectId,
  })
  const total = await call<{ result: { value: number } }>('Runtime.callFunctionOn', {
    objectId: memories.objects.objectId,
    functionDeclaration:
      'function () { return this.reduce((sum, memory) => sum + memory.buffer.byteLength, 0) }',
    returnByValue: true,
  })
  return total.result.value
}
