// The page's half of comlink's wire protocol (comlink 4.4.2, src/protocol.ts): APPLY messages out,
// RAW values or thrown errors back. comlink's own `wrap` costs 1.8 KB gzip, a third of the tag's
// budget, for proxies and callbacks the tag never uses; the worker keeps `Comlink.expose`, and
// worker-rpc.test.ts runs this client against it.
import type { PocketrecWorkerApi } from '../worker/api'

/** A Worker or a MessagePort. */
export interface RpcEndpoint {
  postMessage(message: unknown): void
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void
  start?(): void
}

type Reply =
  | { id: string; type: 'RAW'; value: unknown }
  | { id: string; type: 'HANDLER'; name: 'throw'; value: { isError: boolean; value: unknown } }

// A Record, not a list, so a method added to the interface and not here fails to compile.
const METHODS: Record<keyof PocketrecWorkerApi, 0> = {
  init: 0,
  track: 0,
  recommend: 0,
  status: 0,
  ready: 0,
  nextError: 0,
  setConsent: 0,
  forget: 0,
}

/** Calls the API an endpoint exposes with `Comlink.expose(api)`. */
export function connectRpc(endpoint: RpcEndpoint): PocketrecWorkerApi {
  const pending = new Map<string, [(value: never) => void, (error: unknown) => void]>()
  let lastId = 0
  endpoint.addEventListener('message', ({ data }) => {
    const reply = data as Reply | null
    const settle = reply && pending.get(reply.id)
    if (!settle) return
    pending.delete(reply.id)
    if (reply.type === 'RAW') settle[0](reply.value as never)
    // The one HANDLER reply comlink sends is `throw`: an Error as its name, message and stack,
    // anything else thrown as it was.
    else
      settle[1](
        reply.value.isError ? Object.assign(new Error(), reply.value.value) : reply.value.value,
      )
  })
  endpoint.start?.()
  const api = {} as Record<string, (...args: unknown[]) => Promise<unknown>>
  for (const method of Object.keys(METHODS)) {
    api[method] = (...args) =>
      new Promise((resolve, reject) => {
        const id = `pocketrec-${++lastId}`
        pending.set(id, [resolve, reject])
        endpoint.postMessage({
          id,
          type: 'APPLY',
          path: [method],
          argumentList: args.map((value) => ({ type: 'RAW', value })),
        })
      })
  }
  return api as unknown as PocketrecWorkerApi
}
