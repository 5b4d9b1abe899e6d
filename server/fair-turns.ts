// Fair scheduling of connections: requests are handled in arrival order, one per turn of the
// event loop. Node (libuv 1.46) accepted one new connection per turn in our measurement, and a
// turn that handled every ready upload at once (5 ms each) left a new device's connection
// waiting up to 15 s at 64 concurrent clients (BENCHMARKS.md); with one request per turn the
// loop gets back to its sockets between any two.
import type { MiddlewareHandler } from 'hono'

/** Bodies up to this size are read before the request waits for its turn (an update: 64 KB). */
export const PREREAD_MAX_BYTES = 256 * 1024

/**
 * Middleware: reads a small body first (so that the handler's work, not the socket reads, runs
 * in the turn), then waits for the request's turn. Larger or unsized bodies are left to the
 * route's own body limit.
 */
export function fairTurns(): MiddlewareHandler {
  const waiting: Array<() => void> = []
  const next = () => {
    // The handler runs in the microtasks after this callback; a setImmediate queued from here
    // runs in the following turn, after the loop has polled its sockets again.
    waiting.shift()!()
    if (waiting.length > 0) setImmediate(next)
  }
  return async (c, proceed) => {
    const length = Number(c.req.header('content-length') ?? NaN)
    if (length > 0 && length <= PREREAD_MAX_BYTES && !c.req.header('transfer-encoding')) {
      // Cached by hono: the handler's own c.req.arrayBuffer()/json() reads it from there.
      await c.req.arrayBuffer()
    }
    await new Promise<void>((resolve) => {
      waiting.push(resolve)
      if (waiting.length === 1) setImmediate(next)
    })
    await proceed()
  }
}
