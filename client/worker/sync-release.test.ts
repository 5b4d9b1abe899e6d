import 'fake-indexeddb/auto'
import path from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import type { ModelManifest } from '../../shared/protocol'
import { exportTestRelease } from '../../test/fixtures/exported-release'
import { setNodeBackend } from '../../model/node-backend'
import { openStorage, type Storage } from './storage'
import { decodeCatalogue, decodePools, encodePools } from '../../shared/compact-artifacts'
import {
  decodeFirstLists,
  fetchArtifact,
  keepEveryBytes,
  syncRelease,
  withCatalogue,
} from './sync-release'

const BASE = new URL('http://127.0.0.1/artifacts/manifest.json')
let files: Map<string, Uint8Array>

/** A fetch over the exported files, with per-test tampering. */
function createFetch(tamper: (name: string, bytes: Uint8Array) => Uint8Array = (_, b) => b) {
  const requested: string[] = []
  const fetcher = (async (input: URL | RequestInfo) => {
    const name = path.basename(new URL(String(input)).pathname)
    requested.push(name)
    const bytes = files.get(name)
    if (!bytes) return new Response('missing', { status: 404 })
    return new Response(tamper(name, bytes.slice()) as Uint8Array<ArrayBuffer>)
  }) as typeof fetch
  return { fetcher, requested }
}

async function freshStorage(): Promise<Storage> {
  return openStorage({ name: `pocketrec-sync-${Math.random()}` })
}

describe('syncRelease', () => {
  beforeAll(async () => {
    await setNodeBackend('cpu')
    files = (await exportTestRelease(8)).files
  }, 60_000)

  it('downloads, verifies and stores a release, then reuses it while the version holds', async () => {
    const storage = await freshStorage()
    const first = createFetch()
    const release = await syncRelease(BASE, storage, first.fetcher)
    expect(release.catalogue.items.length).toBe(2933)
    expect(first.requested).toHaveLength(5)
    const second = createFetch()
    const again = await syncRelease(BASE, storage, second.fetcher)
    expect(second.requested).toEqual(['manifest.json'])
    expect(again.manifest.version).toBe(release.manifest.version)
    await storage.forget()
  })

  it('hands the first lists over before the catalogue, the shop before the model, on a first download only', async () => {
    const storage = await freshStorage()
    const order: string[] = []
    const counted = createFetch()
    const fetcher = (async (input: URL | RequestInfo, init?: RequestInit) => {
      order.push(path.basename(new URL(String(input)).pathname).split('.')[1] ?? '')
      return counted.fetcher(input, init)
    }) as typeof fetch
    const early: string[] = []
    await syncRelease(BASE, storage, fetcher, {
      onFirstLists(first) {
        early.push(`first ${first.manifest.version}`)
        // Handed over before the catalogue was requested: the first list does not wait for it.
        expect(order).not.toContain('catalogue')
        expect(order).not.toContain('model')
        // The catalogue's entries of every item trending, popular and new list, and no other.
        const listed = new Set([
          ...first.pools.trending,
          ...first.pools.popular,
          ...first.pools.new,
        ])
        expect(first.items.items.length).toBeGreaterThan(0)
        expect(first.items.items.every((item) => listed.has(item.index))).toBe(true)
      },
      onShop(shop) {
        early.push(`shop ${shop.manifest.version}`)
        expect(order).not.toContain('model')
        expect(shop.catalogue.items.length).toBe(2933)
      },
    })
    expect(early).toEqual(['first v1', 'shop v1'])
    expect(order.slice(1)).toEqual(['pools', 'rules', 'catalogue', 'model'])
    // A device holding v1 that syncs v2 keeps waiting for the whole release.
    const manifest = JSON.parse(
      new TextDecoder().decode(files.get('manifest.json')),
    ) as ModelManifest
    files.set('next.json', new TextEncoder().encode(JSON.stringify({ ...manifest, version: 'v2' })))
    const next = new URL('http://127.0.0.1/artifacts/next.json')
    const update = await syncRelease(next, storage, createFetch().fetcher, {
      onFirstLists: () => early.push('v2'),
      onShop: () => early.push('v2'),
    })
    expect(update.manifest.version).toBe('v2')
    expect(early).toEqual(['first v1', 'shop v1'])
    await storage.forget()
  })

  it("refuses a release whose pools' first-list items differ from its catalogue", async () => {
    const manifest = JSON.parse(
      new TextDecoder().decode(files.get('manifest.json')),
    ) as ModelManifest
    const poolsName = path.basename(manifest.pools.url)
    const catalogueName = path.basename(manifest.catalogue.url)
    const decoded = decodePools(files.get(poolsName)!)
    const catalogue = decodeCatalogue(files.get(catalogueName)!)
    if (!decoded.ok || !catalogue.ok) throw new Error('expected the fixture to decode')
    const first = decoded.value.pools.trending[0]!
    // The pools written against a catalogue whose price of one first-list item differs.
    const changed = {
      ...catalogue.value,
      items: catalogue.value.items.map((item) =>
        item.index === first ? { ...item, price: item.price + 1 } : item,
      ),
    }
    const wrong = encodePools(decoded.value.pools, changed)
    const firstLists = await decodeFirstLists(
      manifest,
      wrong,
      files.get(path.basename(manifest.rules.url))!,
    )
    await expect(withCatalogue(firstLists, files.get(catalogueName)!)).rejects.toThrow(
      new RegExp(`expected the pools' first-list item ${first} .* to match the catalogue's entry`),
    )
  })

  it('keeps each artifact as it arrives: after a failed model download only the model travels again', async () => {
    const storage = await freshStorage()
    // The connection drops during the model; the other three arrive and verify.
    const broken = createFetch()
    const dropping = (async (input: URL | RequestInfo, init?: RequestInit) => {
      if (String(input).includes('.model.')) throw new TypeError('Failed to fetch')
      return broken.fetcher(input, init)
    }) as typeof fetch
    await expect(syncRelease(BASE, storage, dropping)).rejects.toThrow('Failed to fetch')
    expect(await storage.artifacts.loadRelease()).toBeNull()
    const resumed = createFetch()
    const release = await syncRelease(BASE, storage, resumed.fetcher)
    expect(resumed.requested).toEqual(['manifest.json', expect.stringMatching(/\.model\.prw$/)])
    expect(release.catalogue.items.length).toBe(2933)
    // The saved release holds them now: the kept copies are gone, a third sync fetches nothing.
    expect(await storage.artifacts.loadDownload(release.manifest.catalogue.sha256)).toBeNull()
    const third = createFetch()
    await syncRelease(BASE, storage, third.fetcher)
    expect(third.requested).toEqual(['manifest.json'])
    await storage.forget()
  })

  describe('an artifact interrupted part-way', () => {
    const catalogueRef = () =>
      (JSON.parse(new TextDecoder().decode(files.get('manifest.json'))) as ModelManifest).catalogue

    /** Files served in 4 KB chunks; the catalogue's body breaks off after `cutAt` bytes. */
    function cutting(cutAt: number) {
      return (async (input: URL | RequestInfo, init?: RequestInit) => {
        const name = path.basename(new URL(String(input)).pathname)
        const bytes = files.get(name)!
        if (name !== catalogueRef().url) return new Response(bytes.slice())
        let at = 0
        const body = new ReadableStream<Uint8Array>({
          pull(controller) {
            if (at >= cutAt) return controller.error(new TypeError('network error'))
            controller.enqueue(bytes.slice(at, (at = Math.min(at + 4096, cutAt))))
          },
        })
        expect(new Headers(init?.headers).get('range')).toBeNull()
        return new Response(body)
      }) as typeof fetch
    }

    /** A server that answers Range as app.ts does (`ranges` false: one that ignores it). */
    function ranged(options: { ranges: boolean; damage?: boolean }) {
      const asked: Array<{ name: string; range: string | null; sent: number }> = []
      const fetcher = (async (input: URL | RequestInfo, init?: RequestInit) => {
        const name = path.basename(new URL(String(input)).pathname)
        const bytes = files.get(name)!.slice()
        const range = new Headers(init?.headers).get('range')
        const from = options.ranges && range ? Number(/^bytes=(\d+)-$/.exec(range)![1]) : null
        const body = from === null ? bytes : bytes.subarray(from)
        asked.push({ name, range, sent: body.byteLength })
        if (from === null) return new Response(body)
        const contentRange = `bytes ${from}-${bytes.byteLength - 1}/${bytes.byteLength}`
        return new Response(body, { status: 206, headers: { 'content-range': contentRange } })
      }) as typeof fetch
      return { fetcher, asked }
    }

    it('keeps the bytes that arrived, and a reload asks for only the rest with a Range', async () => {
      const storage = await freshStorage()
      const ref = catalogueRef()
      const cutAt = Math.floor(ref.bytes * 0.7)
      await expect(syncRelease(BASE, storage, cutting(cutAt))).rejects.toThrow('network error')
      const kept = (await storage.artifacts.loadDownload(ref.sha256))!
      // Kept every eighth of the file or so: at most that much is lost (and one 4 KB chunk).
      expect(kept.byteLength).toBeLessThanOrEqual(cutAt)
      expect(kept.byteLength).toBeGreaterThan(cutAt - keepEveryBytes(ref.bytes) - 4096)
      expect(kept).toEqual(files.get(ref.url)!.subarray(0, kept.byteLength))
      const server = ranged({ ranges: true })
      const release = await syncRelease(BASE, storage, server.fetcher)
      expect(release.catalogue.items.length).toBe(2933)
      const catalogue = server.asked.filter((a) => a.name === ref.url)
      expect(catalogue).toEqual([
        { name: ref.url, range: `bytes=${kept.byteLength}-`, sent: ref.bytes - kept.byteLength },
      ])
      await storage.forget()
    })

    it('takes the whole file from a server that ignores the Range', async () => {
      const storage = await freshStorage()
      const ref = catalogueRef()
      await expect(syncRelease(BASE, storage, cutting(ref.bytes - 10))).rejects.toThrow()
      const server = ranged({ ranges: false })
      const release = await syncRelease(BASE, storage, server.fetcher)
      expect(release.catalogue.items.length).toBe(2933)
      expect(server.asked.find((a) => a.name === ref.url)).toMatchObject({ sent: ref.bytes })
      await storage.forget()
    })

    it('starts over once when the kept bytes were damaged: the joined file does not verify', async () => {
      const storage = await freshStorage()
      const ref = catalogueRef()
      const damaged = files.get(ref.url)!.slice(0, keepEveryBytes(ref.bytes))
      damaged[10]! ^= 1
      await storage.artifacts.saveDownload(ref.sha256, damaged)
      const server = ranged({ ranges: true })
      const release = await syncRelease(BASE, storage, server.fetcher)
      expect(release.catalogue.items.length).toBe(2933)
      expect(server.asked.filter((a) => a.name === ref.url)).toEqual([
        {
          name: ref.url,
          range: `bytes=${damaged.byteLength}-`,
          sent: ref.bytes - damaged.byteLength,
        },
        { name: ref.url, range: null, sent: ref.bytes },
      ])
      await storage.forget()
    })

    it('refuses a part whose Content-Range is not the rest it asked for, then starts over', async () => {
      const ref = catalogueRef()
      const prefix = files.get(ref.url)!.slice(0, 1000)
      const wrong = (async () =>
        new Response(files.get(ref.url)!.slice(999), {
          status: 206,
          headers: { 'content-range': `bytes 999-${ref.bytes - 1}/${ref.bytes}` },
        })) as typeof fetch
      await expect(fetchArtifact(ref, BASE, wrong, { prefix })).rejects.toThrow(
        `expected Content-Range bytes 1000-${ref.bytes - 1}/${ref.bytes}`,
      )
      const longer = (async () => new Response(new Uint8Array(ref.bytes + 1))) as typeof fetch
      await expect(fetchArtifact(ref, BASE, longer)).rejects.toThrow(
        `expected ${ref.bytes} bytes at /artifacts/${ref.url}, got ${ref.bytes + 1}`,
      )
    })
  })

  it('fetches a kept artifact again when its bytes no longer verify', async () => {
    const storage = await freshStorage()
    const manifest = JSON.parse(
      new TextDecoder().decode(files.get('manifest.json')),
    ) as ModelManifest
    const damaged = files.get(manifest.catalogue.url)!.slice()
    damaged[50]! ^= 1
    await storage.artifacts.saveDownload(manifest.catalogue.sha256, damaged)
    const fetched = createFetch()
    const release = await syncRelease(BASE, storage, fetched.fetcher)
    expect(fetched.requested).toContain(manifest.catalogue.url)
    expect(release.catalogue.items.length).toBe(2933)
    await storage.forget()
  })

  it.each([
    [
      'a flipped byte in the model',
      (name: string, b: Uint8Array) => (name.includes('.model.') ? ((b[100]! ^= 1), b) : b),
      /expected sha256/,
    ],
    [
      'a truncated catalogue',
      (name: string, b: Uint8Array) => (name.includes('.catalogue.') ? b.subarray(0, 100) : b),
      /expected \d+ bytes/,
    ],
    [
      'a manifest that is not JSON',
      (name: string, b: Uint8Array) =>
        name === 'manifest.json' ? new TextEncoder().encode('{"type":') : b,
      /manifest|JSON/i,
    ],
  ])('refuses %s with a clear error and stores nothing', async (_, tamper, message) => {
    const storage = await freshStorage()
    await expect(syncRelease(BASE, storage, createFetch(tamper).fetcher)).rejects.toThrow(message)
    expect(await storage.artifacts.loadRelease()).toBeNull()
    await storage.forget()
  })

  it('refuses a manifest whose artifact hash matches but whose content breaks the guards', async () => {
    const manifest = JSON.parse(
      new TextDecoder().decode(files.get('manifest.json')),
    ) as ModelManifest
    const bogus = new TextEncoder().encode(
      JSON.stringify({ type: 'pocketrec-rules', excludePurchasedDays: -1 }),
    )
    const digest = await crypto.subtle.digest('SHA-256', bogus)
    const sha = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('')
    const tampered = {
      ...manifest,
      rules: { url: 'bogus.rules.json', sha256: sha, bytes: bogus.byteLength },
    }
    files.set('bogus.rules.json', bogus)
    files.set('tampered.json', new TextEncoder().encode(JSON.stringify(tampered)))
    const storage = await freshStorage()
    const url = new URL('http://127.0.0.1/artifacts/tampered.json')
    await expect(syncRelease(url, storage, createFetch().fetcher)).rejects.toMatchObject({
      name: 'ModelUnavailableError',
    })
    expect(await storage.artifacts.loadRelease()).toBeNull()
    await storage.forget()
  })

  it('hands no first lists over for pools without their items (JSON, an older release): the catalogue first', async () => {
    const manifest = JSON.parse(
      new TextDecoder().decode(files.get('manifest.json')),
    ) as ModelManifest
    const decoded = decodePools(files.get(path.basename(manifest.pools.url))!)
    if (!decoded.ok) throw new Error(decoded.error)
    const json = new TextEncoder().encode(JSON.stringify(decoded.value.pools))
    const digest = await crypto.subtle.digest('SHA-256', json)
    const sha = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('')
    files.set('old.pools.json', json)
    const old = {
      ...manifest,
      pools: { url: 'old.pools.json', sha256: sha, bytes: json.byteLength },
    }
    files.set('old.json', new TextEncoder().encode(JSON.stringify(old)))
    const storage = await freshStorage()
    const early: string[] = []
    const release = await syncRelease(
      new URL('http://127.0.0.1/artifacts/old.json'),
      storage,
      createFetch().fetcher,
      { onFirstLists: () => early.push('first'), onShop: () => early.push('shop') },
    )
    expect(early).toEqual(['shop'])
    expect(release.pools.trending).toEqual(decoded.value.pools.trending)
    await storage.forget()
  })
})
