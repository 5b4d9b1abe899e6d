// A release on the two-server channel (PROTOCOL.md P29–P29c), the leader's side: the buffered
// leader bodies become one batch, recorded in the store before the helper is asked so that a
// leader killed mid-batch asks again for the very same batch (the helper answers it once, from
// its record); the two shares are combined into the plaintext channel's sums, and each row
// steps by its own mean (applySparseSums). The per-row counts are the release's exact
// popularity (P28).
import { randomUUID } from 'node:crypto'
import { applySparseSums } from '../../shared/sparse-update'
import type { StoredUpdate } from '../storage/store'
import { createNodeCipher } from './node-cipher'
import type { Aggregated, CurrentWeights, PublisherDeps } from './publisher'
import { channelParams, negativesFor, type SecureChannelSettings } from './secure-channel'
import { HelperRefusal, sumSecureBatch } from './secure-release'

/** The store setting that holds the batch under way (PendingBatch as JSON), or empty. */
export const PENDING_BATCH = 'secure.pendingBatch'
/**
 * Buffered updates a refused batch showed can never be summed (a JSON array of keys): the next
 * batch consumes them unsummed, so that they cannot hold the buffer's head for ever.
 */
export const UNSUMMABLE = 'secure.unsummable'

/** A batch under way: everything its request to the helper is made of, fixed when claimed. */
interface PendingBatch {
  id: string
  /** Buffered updates the release consumes. */
  keys: string[]
  /** Those it sums: trained on `model` (the others, on another model, are consumed unsummed). */
  reports: string[]
  /** SHA-256 of the model the batch was formed on: its public negatives are the batch's. */
  model: string
}

/**
 * The release's aggregation, or null when the helper refused the batch as too small (nothing is
 * consumed; the next check forms a new batch with the updates that arrived meanwhile, and
 * consumes unsummed those the helper said can never be summed) or another replica claimed a batch
 * at the same moment.
 */
export async function aggregateSecure(
  deps: PublisherDeps,
  weights: CurrentWeights,
  secure: SecureChannelSettings,
): Promise<Aggregated | null> {
  const { store } = deps
  const buffered = await store.buffered()
  const byKey = new Map(buffered.map((u) => [u.key, u]))
  const recorded = await store.setting(PENDING_BATCH)
  const pending = readPending(recorded)
  // A batch recorded before a crash (or by another replica) is asked again as it was, unless a
  // version consumed it since. A new one is claimed atomically: a replica that finds another's
  // claim made meanwhile leaves this check (the next one takes that batch), so replicas never
  // record different batches, and none forgets another's (PROTOCOL.md P29c).
  let batch: PendingBatch
  let claim: string
  if (pending && recorded && pending.keys.every((key) => byKey.has(key))) {
    batch = pending
    claim = recorded
  } else {
    const unsummable = await unsummableOf(deps, byKey)
    // At most K summed: more could wrap the sums (P29, K · C < 2^15); the rest wait.
    const updates = buffered
      .filter((u) => !unsummable.has(u.key))
      .slice(0, deps.settings.bufferSize)
    // P29c: one release sums over one set of public negatives, the current model's; an update
    // trained on another model (accepted just before the last release) is consumed unsummed.
    const model = weights.record.manifest.model.sha256
    const models = await baseModels(deps, updates)
    batch = {
      id: `v${weights.record.version}-${randomUUID()}`,
      keys: [...unsummable, ...updates.map((u) => u.key)],
      reports: updates.filter((u) => models.get(u.baseVersion) === model).map((u) => u.key),
      model,
    }
    claim = JSON.stringify(batch)
    if (!(await store.replaceSetting(PENDING_BATCH, recorded, claim))) return null
  }
  const forget = async () => void (await store.replaceSetting(PENDING_BATCH, claim, ''))
  // The request is the recorded batch's, whatever happened since (a rollback): the helper
  // answers a batch only as it was first asked.
  const negatives = negativesFor(batch.model, secure.shape, secure.layout.negativeRows)
  let summed
  try {
    summed = await sumSecureBatch(
      { url: secure.helperLink, token: secure.helperToken },
      { id: batch.id, reports: batch.reports.map((key) => ({ key, body: byKey.get(key)!.body })) },
      channelParams(secure),
      negatives,
      createNodeCipher(),
    )
  } catch (error) {
    if (!(error instanceof HelperRefusal && error.code === 'E_BATCH_SMALL')) throw error
    // Too few reports could be summed. Those that never can (a device that sent the helper
    // nothing, or garbage) would head the next batch again and stall the release for ever: the
    // next batch consumes them unsummed, and waits for updates that arrive meanwhile.
    if (error.unsummable.length > 0) {
      const known = await unsummableOf(deps, byKey)
      await store.putSetting(
        UNSUMMABLE,
        JSON.stringify([...new Set([...known, ...error.unsummable])]),
      )
    }
    await forget()
    return null
  }
  const next = applySparseSums(weights, summed.sums, secure.step, weights.shape.embedDim)
  return {
    ...next,
    consumed: batch.keys,
    updates: summed.included.length,
    popularity: { release: Float32Array.from(summed.sums.counts), reports: summed.included.length },
    metrics: { leftOut: batch.keys.length - summed.included.length },
    published: forget,
  }
}

/** The keys UNSUMMABLE names that are still buffered. */
async function unsummableOf(
  deps: PublisherDeps,
  buffered: ReadonlyMap<string, StoredUpdate>,
): Promise<Set<string>> {
  const value = await deps.store.setting(UNSUMMABLE)
  const keys: unknown = value ? JSON.parse(value) : []
  return new Set(
    Array.isArray(keys)
      ? keys.filter((k): k is string => typeof k === 'string' && buffered.has(k))
      : [],
  )
}

/** The model each base version of `updates` was published with. */
async function baseModels(
  deps: PublisherDeps,
  updates: readonly StoredUpdate[],
): Promise<Map<number, string | undefined>> {
  const bases = [...new Set(updates.map((u) => u.baseVersion))]
  const records = await Promise.all(bases.map((v) => deps.store.version(v)))
  return new Map(bases.map((v, i) => [v, records[i]?.manifest.model.sha256]))
}

function readPending(value: string | null): PendingBatch | null {
  if (!value) return null
  const parsed = JSON.parse(value) as Partial<PendingBatch>
  const strings = (xs: unknown) => Array.isArray(xs) && xs.every((x) => typeof x === 'string')
  return typeof parsed.id === 'string' &&
    typeof parsed.model === 'string' &&
    strings(parsed.keys) &&
    strings(parsed.reports)
    ? (parsed as PendingBatch)
    : null
}
