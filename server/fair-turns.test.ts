import { Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { describe, expect, it } from 'vitest'
import { fairTurns, PREREAD_MAX_BYTES } from './fair-turns'

describe('fair turns', () => {
  it('handles requests in arrival order, one per turn of the event loop', async () => {
    const seen: string[] = []
    const app = new Hono()
    app.use('/*', fairTurns())
    app.get('/:name', (c) => {
      seen.push(c.req.param('name'))
      return c.text('ok')
    })
    const answered = ['a', 'b', 'c'].map((name) => app.request(`/${name}`))
    // Queued after the requests: it runs after the first, before the second.
    setImmediate(() => seen.push('other work'))
    await Promise.all(answered)
    expect(seen).toEqual(['a', 'other work', 'b', 'c'])
  })

  it('reads a small body before the turn for the handler; a larger one is left to the route', async () => {
    const app = new Hono()
    app.use('/*', fairTurns())
    app.post('/echo', bodyLimit({ maxSize: 2 * PREREAD_MAX_BYTES }), async (c) => {
      const [json, bytes] = [await c.req.json(), await c.req.arrayBuffer()]
      return c.json({ json, bytes: bytes.byteLength })
    })
    app.post(
      '/small',
      bodyLimit({ maxSize: 8, onError: (c) => c.text('too large', 413) }),
      async (c) => c.text(await c.req.text()),
    )
    const post = (route: string, body: string) => app.request(route, { method: 'POST', body })
    expect(await (await post('/echo', '{"a": 1}')).json()).toEqual({ json: { a: 1 }, bytes: 8 })
    const large = JSON.stringify('x'.repeat(PREREAD_MAX_BYTES + 10))
    expect(await (await post('/echo', large)).json()).toMatchObject({ bytes: large.length })
    expect((await post('/small', '12345678')).status).toBe(200)
    expect((await post('/small', '123456789')).status).toBe(413)
  })
})
