// Co-visitation on demand (PROTOCOL.md P2b): a large catalogue's neighbour lists travel in shards
// of consecutive items, and the worker fetches a shard (verified like every artifact) the first
// time a recommendation needs one of its items: the product on screen or one the shopper viewed.
// Lists land in the pools' coVisitation record that recall reads, so recall code is unchanged.
// A shard that fails to arrive leaves co-visitation out of that list; the next request tries again.
import { decodeCoVisitationShard } from '../../shared/compact-artifacts'
import type { CandidatePools, CoVisitationShards } from '../../shared/protocol'
import { accept, fetchArtifact, ReleaseError } from './sync-release'

export interface CoVisitationLoader {
  /** Fetches the shards holding these item indices that have not arrived yet. */
  ensure(indices: Iterable<number>): Promise<void>
  /** Shards in place, for status() and tests. */
  loaded(): number
}

export function createCoVisitationLoader(options: {
  /** The manifest's shards; absent (older releases): the pools carry co-visitation already. */
  shards: CoVisitationShards | undefined
  pools: CandidatePools
  nItems: number
  manifestUrl: URL
  fetch: typeof fetch
}): CoVisitationLoader {
  const { shards, pools, nItems } = options
  const done = new Set<number>()
  const pending = new Map<number, Promise<void>>()

  async function load(s: number): Promise<void> {
    const ref = shards!.shards[s]!
    const bytes = await fetchArtifact(ref, options.manifestUrl, options.fetch)
    const shard = accept(decodeCoVisitationShard(bytes, { nItems }))
    const first = s * shards!.itemsPerShard
    if (shard.first !== first) {
      throw new ReleaseError(`expected shard ${s} to start at item ${first}, got ${shard.first}`)
    }
    // Keys are item indices as strings, as in the JSON form (recall reads own properties).
    shard.lists.forEach((list, i) => {
      if (list.length > 0) pools.coVisitation[String(first + i)] = list
    })
    done.add(s)
  }

  return {
    async ensure(indices) {
      if (!shards) return
      const wanted = new Set<number>()
      for (const index of indices) {
        const s = Math.floor(index / shards.itemsPerShard)
        if (Number.isInteger(s) && s >= 0 && s < shards.shards.length && !done.has(s)) {
          wanted.add(s)
        }
      }
      await Promise.all(
        [...wanted].map((s) => {
          let loading = pending.get(s)
          if (!loading) {
            loading = load(s)
              .catch(() => {
                // Recall runs without these lists this time; a later request fetches again.
              })
              .finally(() => pending.delete(s))
            pending.set(s, loading)
          }
          return loading
        }),
      )
    },
    loaded: () => done.size,
  }
}
