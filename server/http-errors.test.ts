import { readFileSync } from 'node:fs'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { ERROR_CODES } from '../shared/errors'
import { answerError, answerNotFound, HTTP_STATUS, refuse } from './http-errors'

const protocol = readFileSync(new URL('../shared/PROTOCOL.md', import.meta.url), 'utf8')

/** PROTOCOL.md's "Error codes" table: code → status. */
function documentedStatuses(): Map<string, number> {
  const section = protocol.split(/^## Error codes$/m)[1]!.split(/^## /m)[0]!
  const rows = [...section.matchAll(/^\| `(E_[A-Z0-9_]+)` +\| +(\d{3}) \|/gm)]
  return new Map(rows.map(([, code, status]) => [code!, Number(status)]))
}

describe('refusals', () => {
  it('PROTOCOL.md lists every code the servers answer with, at the status they answer it', () => {
    expect(Object.fromEntries(documentedStatuses())).toEqual(HTTP_STATUS)
  })

  it('every code a server answers with is in the one code list', () => {
    const known = new Set<string>(ERROR_CODES)
    expect(Object.keys(HTTP_STATUS).filter((code) => !known.has(code))).toEqual([])
  })

  it('answers a refusal as its code says, with its fields and headers, and anything else as 500', async () => {
    const app = new Hono()
    app.get('/full', () =>
      refuse('E_HELPER_FULL', 'try later', { headers: { 'retry-after': '3600' } }),
    )
    app.get('/small', () => refuse('E_BATCH_SMALL', 'too few', { body: { excluded: [[0, 'x']] } }))
    app.get('/admin', () => refuse('E_VERSION_UNKNOWN', 'no version 9', { status: 404 }))
    app.get('/bug', () => {
      throw new TypeError('x is undefined')
    })
    app.notFound(answerNotFound)
    app.onError(answerError)
    const answer = async (path: string) => {
      const response = await app.request(path)
      return [response.status, await response.json(), response.headers.get('retry-after')]
    }
    expect(await answer('/full')).toEqual([
      503,
      { error: 'E_HELPER_FULL', message: 'try later' },
      '3600',
    ])
    expect(await answer('/small')).toEqual([
      409,
      { error: 'E_BATCH_SMALL', message: 'too few', excluded: [[0, 'x']] },
      null,
    ])
    expect((await answer('/admin'))[0]).toBe(404)
    expect(await answer('/bug')).toEqual([
      500,
      { error: 'E_INTERNAL', message: 'x is undefined' },
      null,
    ])
    expect(await answer('/nowhere')).toEqual([
      404,
      { error: 'E_NOT_FOUND', message: 'no route for /nowhere' },
      null,
    ])
  })
})
