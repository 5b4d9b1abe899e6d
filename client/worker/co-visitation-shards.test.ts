import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { encodeCoVisitationShard } from '../../shared/compact-artifacts'
import type { ArtifactRef, CandidatePools, CoVisitationShards } from '../../shared/protocol'
import { createCoVisitationLoader } from './co-visitation-shards'

// Ten items in shards of four: items 0–3, 4–7, 8–9; item i's neighbour is (i + 1) % 10.
const N = 10
const PER = 4
const base = new URL('http://shop.test/artifacts/manifest.json')

function serve(options: { damaged?: number } = {}) {
  const files = new Map<string, Uint8Array>()
  const shards: ArtifactRef[] = []
  for (let first = 0, s = 0; first < N; first += PER, s++) {
    const lists = Array.from({ length: Math.min(PER, N - first) }, (_, i) => [(first + i + 1) % N])
    const bytes = encodeCoVisitationShard({ first, lists })
    const sha256 = createHash('sha256').update(bytes).digest('hex')
    const url = `shard-${s}.bin`
    if (options.damaged === s) bytes[bytes.byteLength - 1]! ^= 1
    files.set(`/artifacts/${url}`, bytes)
    shards.push({ url, sha256, bytes: bytes.byteLength })
  }
  const requests: string[] = []
  const fetcher = (async (input: URL | RequestInfo) => {
    const path = new URL(String(input)).pathname
    requests.push(path)
    const body = files.get(path)
    return body
      ? new Response(body as Uint8Array<ArrayBuffer>)
      : new Response('no', { status: 404 })
  }) as typeof fetch
  const manifest: CoVisitationShards = { itemsPerShard: PER, shards }
  return { manifest, requests, fetcher }
}

const emptyPools = (): CandidatePools => ({
  type: 'pocketrec-pools',
  trending: [],
  popular: [],
  new: [],
  byCategory: {},
  coVisitation: {},
})

describe('co-visitation shards on demand', () => {
  it('fetches only the shards of the items asked for, once, and fills their lists', async () => {
    const { manifest, requests, fetcher } = serve()
    const pools = emptyPools()
    const loader = createCoVisitationLoader({
      shards: manifest,
      pools,
      nItems: N,
      manifestUrl: base,
      fetch: fetcher,
    })
    await Promise.all([loader.ensure([5]), loader.ensure([6, 7])])
    expect(requests).toEqual(['/artifacts/shard-1.bin'])
    expect(pools.coVisitation).toEqual({ '4': [5], '5': [6], '6': [7], '7': [8] })
    await loader.ensure([4, 9])
    expect(requests).toEqual(['/artifacts/shard-1.bin', '/artifacts/shard-2.bin'])
    expect(pools.coVisitation['9']).toEqual([0])
    expect(loader.loaded()).toBe(2)
  })

  it('leaves a shard that fails its hash out, and fetches it again next time', async () => {
    const { manifest, requests, fetcher } = serve({ damaged: 0 })
    const pools = emptyPools()
    const loader = createCoVisitationLoader({
      shards: manifest,
      pools,
      nItems: N,
      manifestUrl: base,
      fetch: fetcher,
    })
    await loader.ensure([1])
    expect(pools.coVisitation).toEqual({})
    await loader.ensure([2])
    expect(requests).toEqual(['/artifacts/shard-0.bin', '/artifacts/shard-0.bin'])
    expect(loader.loaded()).toBe(0)
  })

  it('fetches nothing for a release without shards (its pools carry co-visitation)', async () => {
    const { requests, fetcher } = serve()
    const pools = { ...emptyPools(), coVisitation: { '1': [2] } }
    const loader = createCoVisitationLoader({
      shards: undefined,
      pools,
      nItems: N,
      manifestUrl: base,
      fetch: fetcher,
    })
    await loader.ensure([1, 5])
    expect(requests).toEqual([])
    expect(pools.coVisitation).toEqual({ '1': [2] })
  })
})
