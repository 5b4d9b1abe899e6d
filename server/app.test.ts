import { serve } from '@hono/node-server'
import { createHash } from 'node:crypto'
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ModelManifest } from '../shared/protocol'
import { writeTestRelease } from '../test/fixtures/exported-release'
import { setNodeBackend } from '../model/node-backend'
import { precompressDir } from '../scripts/precompress'
import { createApp } from './app'

// The static side of the server over real HTTP on 127.0.0.1: what a device and a CDN see.
let dir: string
let origin: string
let close: () => void
let manifest: ModelManifest

const WASM = 'node_modules/@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm'

const sha256 = (bytes: ArrayBuffer) =>
  createHash('sha256').update(new Uint8Array(bytes)).digest('hex')

describe('serving the release', () => {
  beforeAll(async () => {
    await setNodeBackend('cpu')
    dir = await mkdtemp(path.join(tmpdir(), 'pocketrec-server-'))
    manifest = (await writeTestRelease(8, path.join(dir, 'artifacts'))).manifest
    // What `npm run build` leaves in dist/: a worker chunk and tfjs' wasm, precompressed.
    await mkdir(path.join(dir, 'assets'))
    await writeFile(path.join(dir, 'assets', 'chunk.js'), 'export const a = 1;\n'.repeat(500))
    await copyFile(WASM, path.join(dir, 'backend.wasm'))
    await precompressDir(dir)
    const server = serve({
      fetch: createApp({ distDir: dir }).fetch,
      port: 0,
      hostname: '127.0.0.1',
    })
    await new Promise((resolve) => server.once('listening', resolve))
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    close = () => server.close()
  }, 60_000)

  afterAll(async () => {
    close?.()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('sends the gzip sibling to a client that accepts gzip, decoding to the hashed bytes', async () => {
    for (const ref of [manifest.catalogue, manifest.pools, manifest.rules, manifest.model]) {
      const response = await fetch(`${origin}/artifacts/${ref.url}`) // undici accepts gzip
      expect(response.status).toBe(200)
      expect(response.headers.get('content-encoding')).toBe('gzip')
      expect(response.headers.get('vary')).toMatch(/accept-encoding/i)
      expect(response.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
      const body = await response.arrayBuffer()
      expect(body.byteLength).toBe(ref.bytes)
      expect(sha256(body)).toBe(ref.sha256)
    }
  })

  it('sends the plain file to a client that does not accept gzip', async () => {
    const ref = manifest.catalogue
    const response = await fetch(`${origin}/artifacts/${ref.url}`, {
      headers: { 'accept-encoding': 'identity' },
    })
    expect(response.headers.get('content-encoding')).toBeNull()
    expect(Number(response.headers.get('content-length'))).toBe(ref.bytes)
    expect(sha256(await response.arrayBuffer())).toBe(ref.sha256)
  })

  it('sends the worker JS and the wasm brotli- or gzip-encoded, as the client accepts', async () => {
    const files = [
      ['assets/chunk.js', path.join(dir, 'assets', 'chunk.js'), /javascript/],
      ['backend.wasm', WASM, /^application\/wasm/],
    ] as const
    for (const [url, source, type] of files) {
      const plain = await readFile(source)
      for (const encoding of ['br', 'gzip']) {
        const response = await fetch(`${origin}/${url}`, {
          headers: { 'accept-encoding': encoding },
        })
        expect(response.status).toBe(200)
        expect(response.headers.get('content-encoding')).toBe(encoding)
        expect(response.headers.get('vary')).toMatch(/accept-encoding/i)
        expect(response.headers.get('content-type')).toMatch(type)
        // Hashed chunks (assets/) are cached for good; the wasm's name is not content-addressed:
        // revalidated on each visit.
        expect(response.headers.get('cache-control')).toBe(
          url.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
        )
        // Fewer bytes on the wire than the file, decoding to the file.
        expect(Number(response.headers.get('content-length'))).toBeLessThan(plain.byteLength)
        expect(Buffer.from(await response.arrayBuffer())).toEqual(plain)
      }
    }
  })

  it('answers 304 without a body for an unchanged wasm or top-level script the client holds', async () => {
    for (const encoding of ['br', 'identity']) {
      const first = await fetch(`${origin}/backend.wasm`, {
        headers: { 'accept-encoding': encoding },
      })
      const tag = first.headers.get('etag')
      expect(tag).toMatch(/^"[0-9a-f]+"$/)
      await first.arrayBuffer()
      const again = await fetch(`${origin}/backend.wasm`, {
        headers: { 'accept-encoding': encoding, 'if-none-match': tag! },
      })
      expect(again.status).toBe(304)
      expect((await again.arrayBuffer()).byteLength).toBe(0)
      expect(again.headers.get('cache-control')).toBe('no-cache')
      // Another version of the file (any other tag) is sent whole.
      const stale = await fetch(`${origin}/backend.wasm`, {
        headers: { 'accept-encoding': encoding, 'if-none-match': '"0"' },
      })
      expect(stale.status).toBe(200)
      expect((await stale.arrayBuffer()).byteLength).toBeGreaterThan(0)
    }
  })

  it('never lets the manifest be cached: it names the current artifacts', async () => {
    const response = await fetch(`${origin}/artifacts/manifest.json`)
    expect(response.headers.get('cache-control')).toBe('no-cache')
    expect(await response.json()).toEqual(manifest)
  })

  it('answers a Range with that part of the plain file, even to a client that accepts gzip', async () => {
    const ref = manifest.model
    const whole = await (await fetch(`${origin}/artifacts/${ref.url}`)).arrayBuffer()
    const from = Math.floor(ref.bytes / 3)
    const response = await fetch(`${origin}/artifacts/${ref.url}`, {
      headers: { range: `bytes=${from}-`, origin: 'https://shop.example' },
    })
    expect(response.status).toBe(206)
    expect(response.headers.get('content-encoding')).toBeNull()
    expect(response.headers.get('content-range')).toBe(
      `bytes ${from}-${ref.bytes - 1}/${ref.bytes}`,
    )
    // A page on another origin may read it: the device checks it before appending the part.
    expect(response.headers.get('access-control-expose-headers')).toMatch(/content-range/i)
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(new Uint8Array(whole, from))
    const past = await fetch(`${origin}/artifacts/${ref.url}`, {
      headers: { range: `bytes=${ref.bytes}-` },
    })
    expect(past.status).toBe(416)
    expect(past.headers.get('content-range')).toBe(`bytes */${ref.bytes}`)
  })

  it('lets a page on another origin read the artifacts (the blob worker fetches them)', async () => {
    const response = await fetch(`${origin}/artifacts/${manifest.rules.url}`, {
      headers: { origin: 'https://shop.example' },
    })
    expect(response.headers.get('access-control-allow-origin')).toBe('*')
  })

  it('answers an unknown path with a JSON 404', async () => {
    const response = await fetch(`${origin}/nothing-here.js`)
    expect(response.status).toBe(404)
    expect(await response.json()).toMatchObject({ error: 'E_NOT_FOUND' })
  })
})
