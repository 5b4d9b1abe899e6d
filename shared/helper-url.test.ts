import { describe, expect, it } from 'vitest'
import { helperRoute } from './helper-url'

describe('helperRoute', () => {
  it('keeps the path a helper is mounted at, and resolves a relative one against the manifest', () => {
    expect(String(helperRoute('https://h.example', 'shares'))).toBe('https://h.example/v1/shares')
    expect(String(helperRoute('https://h.example/pocketrec', 'aggregate'))).toBe(
      'https://h.example/pocketrec/v1/aggregate',
    )
    const manifest = new URL('http://127.0.0.1:8787/artifacts/manifest.json')
    expect(String(helperRoute('/helper', 'shares', manifest))).toBe(
      'http://127.0.0.1:8787/helper/v1/shares',
    )
  })
})
