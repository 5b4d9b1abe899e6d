// The server's own evaluation of versions (PROTOCOL.md P26): the operator uploads held-out
// sessions (product ids, never shown to devices); every candidate is scored on them with the
// offline protocol (full ranking, Recall@20 and MRR@20, model/eval) and, under `evaluated`
// promotion, made current only if it is not worse than the current version by more than a
// tolerance. Results go into the version's metrics, tagged with the set they came from. The
// version is scored as devices rank with it: its scoring bonuses on, the co-visitation bonus
// reading the version's own co-visitation lists.
import {
  decodeCatalogue,
  decodeCoVisitationShard,
  decodePools,
} from '../../shared/compact-artifacts'
import { createHash } from 'node:crypto'
import * as tf from '@tensorflow/tfjs-core'
import type { DeviceCatalogue } from '../../shared/protocol'
import { decodeWeights } from '../../shared/weights-codec'
import { evaluateWeights } from '../../model/eval/gru-scorer'
import { setNodeBackend } from '../../model/node-backend'
import type { FederationStore, VersionRecord } from '../storage/store'
import type { EvaluationSettings } from '../federated/defaults'
import { checkDocument } from '../federated/documents'

export interface ValidationSet {
  type: 'pocketrec-validation'
  /** Each session's product ids in order (the catalogue's `id`s). */
  sessions: string[][]
}

/** The store setting naming the current validation set's artifact (its SHA-256). */
const VALIDATION_SETTING = 'validation'

export type PutValidationResult =
  | { status: 'stored'; sha256: string; sessions: number; usable: number; cases: number }
  | { status: 'refused'; code: 'E_VALIDATION'; message: string }

/** Checks and stores a validation set, and makes it the one versions are scored on. */
export async function putValidationSet(
  store: FederationStore,
  raw: unknown,
): Promise<PutValidationResult> {
  const refuse = (message: string) =>
    ({ status: 'refused', code: 'E_VALIDATION', message }) as const
  const checked = checkDocument<ValidationSet>('validation', raw)
  if (!checked.ok) return refuse(checked.message)
  const set = checked.value
  const current = await store.current()
  if (!current) throw new Error('expected a current version: seed the store first')
  const usable = toIndices(set, await catalogueOf(store, current))
  const cases = usable.reduce((n, s) => n + s.length - 1, 0)
  if (cases === 0) {
    const message =
      'expected sessions with at least two products of the current catalogue; none had them'
    return refuse(message)
  }
  const bytes = new TextEncoder().encode(JSON.stringify(set))
  const sha256 = createHash('sha256').update(bytes).digest('hex')
  await store.putArtifact(sha256, bytes)
  await store.putSetting(VALIDATION_SETTING, sha256)
  return { status: 'stored', sha256, sessions: set.sessions.length, usable: usable.length, cases }
}

/**
 * Scores a version on the stored validation set and records the result in its metrics
 * (`validationRecall20`, `validationMrr20` in percent, `validationCases`, `validationSet`: the
 * set's hash prefix as a number). Null when no set is stored.
 */
export async function evaluateVersion(
  store: FederationStore,
  record: VersionRecord,
  settings: EvaluationSettings,
): Promise<Record<string, number> | null> {
  const setSha = await store.setting(VALIDATION_SETTING)
  if (!setSha) return null
  const setBytes = await store.artifact(setSha)
  if (!setBytes) throw new Error(`expected the validation set ${setSha} in the store`)
  const set = JSON.parse(new TextDecoder().decode(setBytes)) as ValidationSet
  const sessions = toIndices(set, await catalogueOf(store, record))
  const modelBytes = await store.artifact(record.manifest.model.sha256)
  if (!modelBytes) throw new Error(`expected the model of v${record.version} in the store`)
  await ensureBackend()
  const file = decodeWeights(modelBytes)
  const nItems = Number(file.meta.nItems)
  const report = await evaluateWeights(file, sessions, {
    // Only popShare@20 reads counts, and it is not reported here.
    trainCounts: new Int32Array(nItems),
    maxCases: settings.maxCases,
    // The lists are read only for a model that adds their bonus.
    ...(Number(file.meta.coVisitBonus ?? 0) > 0
      ? { coVisitation: await versionCoVisitation(store, record, nItems) }
      : {}),
  })
  const metrics = {
    validationRecall20: report.metrics['recall@20']! * 100,
    validationMrr20: report.metrics['mrr@20']! * 100,
    validationCases: report.cases,
    validationSet: setId(setSha),
  }
  await store.recordMetrics(record.version, metrics)
  return metrics
}

export type CandidateDecision =
  | { version: number; decision: 'promoted' | 'kept-back'; recall20: number; current: number }
  | { version: number; decision: 'superseded' }

/**
 * `evaluated` promotion, run by the publisher loop: each candidate built on "current" and not
 * yet scored on the present set is scored (and "current" too, when it lacks a score on it), then
 * promoted if it trails "current" by at most the tolerance. A candidate built on a version that
 * is no longer current is left alone (its updates were averaged onto other weights).
 */
export async function reviewCandidates(
  store: FederationStore,
  settings: EvaluationSettings,
): Promise<CandidateDecision[]> {
  const setSha = await store.setting(VALIDATION_SETTING)
  if (!setSha) return []
  const id = setId(setSha)
  const scored = async (record: VersionRecord) =>
    record.metrics.validationSet === id
      ? record.metrics.validationRecall20!
      : (await evaluateVersion(store, record, settings))!.validationRecall20!
  const decisions: CandidateDecision[] = []
  for (;;) {
    const current = (await store.current())!
    // `reviewedOn` marks a decision taken on this set: a candidate the operator scored by hand
    // (POST /v1/admin/evaluate) is still reviewed, one already decided is not.
    const candidates = (await store.versions()).filter(
      (v) => v.version > current.version && v.metrics.reviewedOn !== id,
    )
    const next = candidates[0]
    if (!next) return decisions
    if (next.parent !== current.version) {
      // Scored anyway, so the operator sees how it did.
      await scored(next)
      await store.recordMetrics(next.version, { reviewedOn: id })
      decisions.push({ version: next.version, decision: 'superseded' })
      continue
    }
    const base = await scored(current)
    const recall20 = await scored(next)
    const promote = recall20 >= base - settings.tolerancePoints
    await store.recordMetrics(next.version, { reviewedOn: id })
    if (promote) await store.setCurrent(next.version)
    decisions.push({
      version: next.version,
      decision: promote ? 'promoted' : 'kept-back',
      recall20,
      current: base,
    })
  }
}

function setId(sha256: string): number {
  return Number.parseInt(sha256.slice(0, 8), 16)
}

async function catalogueOf(
  store: FederationStore,
  record: VersionRecord,
): Promise<DeviceCatalogue> {
  const bytes = await store.artifact(record.manifest.catalogue.sha256)
  if (!bytes) throw new Error(`expected the catalogue of v${record.version} in the store`)
  const decoded = decodeCatalogue(bytes)
  if (!decoded.ok)
    throw new Error(`the catalogue of v${record.version} does not decode: ${decoded.error}`)
  return decoded.value
}

/** The version's co-visitation lists, from its shards or (older releases) its pools. */
async function versionCoVisitation(
  store: FederationStore,
  record: VersionRecord,
  nItems: number,
): Promise<(item: number) => readonly number[]> {
  const artifact = async (sha256: string, what: string) => {
    const bytes = await store.artifact(sha256)
    if (!bytes) throw new Error(`expected the ${what} of v${record.version} in the store`)
    return bytes
  }
  const lists = new Map<number, readonly number[]>()
  const shards = record.manifest.coVisitation?.shards
  if (shards) {
    for (const ref of shards) {
      const shard = decodeCoVisitationShard(await artifact(ref.sha256, 'co-visitation shard'), { nItems }) // prettier-ignore
      if (!shard.ok) throw new Error(`a co-visitation shard of v${record.version} does not decode: ${shard.error}`) // prettier-ignore
      shard.value.lists.forEach((list, i) => lists.set(shard.value.first + i, list))
    }
  } else {
    const pools = decodePools(await artifact(record.manifest.pools.sha256, 'pools'), { nItems })
    if (!pools.ok) throw new Error(`the pools of v${record.version} do not decode: ${pools.error}`)
    for (const [key, list] of Object.entries(pools.value.pools.coVisitation)) lists.set(Number(key), list) // prettier-ignore
  }
  return (item) => lists.get(item) ?? []
}

/** Product ids → item rows; unknown products are dropped, as the offline protocol drops unseen items. */
function toIndices(set: ValidationSet, catalogue: DeviceCatalogue): Int32Array[] {
  const index = new Map(catalogue.items.map((item) => [item.id, item.index]))
  const out: Int32Array[] = []
  for (const session of set.sessions) {
    const rows = session.map((id) => index.get(id)).filter((i) => i !== undefined)
    if (rows.length >= 2) out.push(Int32Array.from(rows))
  }
  return out
}

/** The server process has no tfjs backend until it first evaluates: WASM, as the trainer. */
async function ensureBackend(): Promise<void> {
  // engine().backendName, unlike getBackend(), does not start a backend of its own choosing.
  if (tf.engine().backendName) return
  await setNodeBackend('wasm')
}
