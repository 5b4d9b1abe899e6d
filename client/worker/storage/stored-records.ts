// Guards for records read back from IndexedDB: a boundary, because another build, another tab, a
// browser bug or a curious shopper with devtools may have written anything. A record that fails
// its guard is treated as corrupt: skipped and deleted, never half-trusted. Artifacts reuse the
// download guards of shared/artifacts.ts.
import {
  isCandidatePools,
  isDeviceCatalogue,
  isModelManifest,
  isRerankRules,
  SCENARIOS,
} from '../../../shared/artifacts'
import { isTrackEvent } from '../../../shared/events'
import { EXPERIMENT_GROUPS } from '../../../shared/experiments'
import { emptyOutcomeCounts, EXPLORE_BUCKETS } from '../../../shared/outcome-counts'
import { MAX_LIMIT } from '../recommend/validate-request'
import type {
  CartItem,
  KeptArm,
  MetaRecord,
  StoredArtifact,
  StoredDownload,
  StoredEvent,
  StoredExposure,
  StoredLocalWeights,
  StoredModel,
  StoredSession,
  StoredUpload,
  TrainingState,
} from './schema'

type Guard<T> = (raw: unknown) => raw is T

function isRecord(raw: unknown): raw is Record<string, unknown> {
  return typeof raw === 'object' && raw !== null && !Array.isArray(raw)
}

function isFiniteNumber(raw: unknown): raw is number {
  return typeof raw === 'number' && Number.isFinite(raw)
}

function isTime(raw: unknown): raw is number {
  return isFiniteNumber(raw) && raw >= 0
}

function isCount(raw: unknown): raw is number {
  return Number.isSafeInteger(raw) && (raw as number) >= 0
}

function isKey(raw: unknown): raw is number {
  return Number.isSafeInteger(raw) && (raw as number) > 0
}

function isText(raw: unknown): raw is string {
  return typeof raw === 'string' && raw.length > 0
}

// Checked by tag, not instanceof: structured clones may come from another realm.
function isBytes(raw: unknown): raw is Uint8Array {
  return Object.prototype.toString.call(raw) === '[object Uint8Array]'
}

function isArrayOf<T>(raw: unknown, guard: Guard<T>): raw is T[] {
  return Array.isArray(raw) && raw.every((item) => guard(item))
}

export function isStoredEvent(raw: unknown): raw is StoredEvent {
  return (
    isRecord(raw) &&
    isKey(raw.id) &&
    isTime(raw.timestamp) &&
    isKey(raw.sessionId) &&
    isTrackEvent(raw.event) &&
    raw.event.timestamp === raw.timestamp
  )
}

export function isStoredExposure(raw: unknown): raw is StoredExposure {
  return isRecord(raw) && isText(raw.productId) && isCount(raw.shown) && isTime(raw.lastShownMs)
}

export function isStoredSession(raw: unknown): raw is StoredSession {
  return (
    isRecord(raw) &&
    isKey(raw.id) &&
    isTime(raw.startMs) &&
    isTime(raw.endMs) &&
    raw.startMs <= raw.endMs &&
    isArrayOf(raw.productIds, isText) &&
    (raw.strengths === undefined ||
      (isArrayOf(
        raw.strengths,
        (v): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 3,
      ) &&
        raw.strengths.length === raw.productIds.length)) &&
    (raw.dwell === undefined ||
      (isArrayOf(raw.dwell, (v): v is number => Number.isFinite(v) && (v as number) >= 0) &&
        raw.dwell.length === raw.productIds.length)) &&
    isCount(raw.eventCount)
  )
}

export function isStoredDownload(raw: unknown): raw is StoredDownload {
  return (
    isRecord(raw) &&
    typeof raw.sha256 === 'string' &&
    /^[0-9a-f]{64}$/.test(raw.sha256) &&
    isBytes(raw.bytes) &&
    isTime(raw.savedAtMs)
  )
}

export function isStoredModel(raw: unknown): raw is StoredModel {
  return (
    isRecord(raw) &&
    raw.key === 'global' &&
    isText(raw.version) &&
    isModelManifest(raw.manifest) &&
    raw.manifest.version === raw.version &&
    isBytes(raw.bytes) &&
    isTime(raw.savedAtMs)
  )
}

export function isStoredLocalWeights(raw: unknown): raw is StoredLocalWeights {
  return (
    isRecord(raw) &&
    raw.key === 'local' &&
    isText(raw.baseVersion) &&
    isBytes(raw.bytes) &&
    isCount(raw.steps) &&
    isTime(raw.savedAtMs)
  )
}

function createArtifactGuard<T>(isData: Guard<T>): Guard<StoredArtifact<T>> {
  return (raw): raw is StoredArtifact<T> => isRecord(raw) && isText(raw.version) && isData(raw.data)
}

export const isStoredPools = createArtifactGuard(isCandidatePools)
export const isStoredCatalogue = createArtifactGuard(isDeviceCatalogue)
export const isStoredRules = createArtifactGuard(isRerankRules)

export function isStoredUpload(raw: unknown): raw is StoredUpload {
  return (
    isRecord(raw) &&
    isKey(raw.id) &&
    isText(raw.idempotencyKey) &&
    isText(raw.baseVersion) &&
    isBytes(raw.body) &&
    (raw.helper === undefined ||
      (isRecord(raw.helper) && isText(raw.helper.url) && isBytes(raw.helper.body))) &&
    isCount(raw.attempts) &&
    isTime(raw.createdAtMs) &&
    (raw.lastAttemptAtMs === null || isTime(raw.lastAttemptAtMs))
  )
}

function isCartItem(raw: unknown): raw is CartItem {
  return isRecord(raw) && isText(raw.productId) && isCount(raw.quantity) && isTime(raw.addedAtMs)
}

function isTrainingState(
  raw: Record<string, unknown>,
): raw is Record<string, unknown> & TrainingState {
  return (
    isCount(raw.steps) &&
    (raw.lastTrainedAtMs === null || isTime(raw.lastTrainedAtMs)) &&
    (raw.trainedThroughSessionId === null || isKey(raw.trainedThroughSessionId)) &&
    isArrayOf(raw.losses, isFiniteNumber)
  )
}

/** Checks a meta record and that it is the one stored under `key`. */
export function isStoredMeta<K extends MetaRecord['key']>(
  raw: unknown,
  key: K,
): raw is Extract<MetaRecord, { key: K }> {
  if (!isRecord(raw) || raw.key !== key) return false
  switch (key) {
    case 'schema':
      return isCount(raw.version) && isTime(raw.createdAtMs) && isTime(raw.migratedAtMs)
    case 'consent':
      return typeof raw.granted === 'boolean' && isTime(raw.updatedAtMs)
    case 'training':
      return isTrainingState(raw)
    case 'cart':
      return isArrayOf(raw.items, isCartItem)
    case 'federation':
      return isText(raw.lastVersion) && isTime(raw.updatedAtMs)
    case 'client':
      return (
        typeof raw.id === 'string' &&
        /^[A-Za-z0-9_-]{8,64}$/.test(raw.id) &&
        isTime(raw.createdAtMs)
      )
    case 'outcomes':
      return isOutcomeState(raw)
    case 'experiments':
      return (
        typeof raw.deviceId === 'string' &&
        /^[A-Za-z0-9_-]{22,64}$/.test(raw.deviceId) &&
        isArrayOf(raw.arms, isKeptArm)
      )
  }
  return false
}

const isShortText = (v: unknown) => typeof v === 'string' && v.length <= 512

function isOutcomeState(raw: Record<string, unknown>): boolean {
  return (
    isArrayOf(
      raw.lists,
      (l): l is object =>
        isRecord(l) &&
        isShortText(l.attributionId) &&
        SCENARIOS.some((s) => s === l.scenario) &&
        (l.explored === undefined || isExploredSlots(l.explored)),
    ) &&
    isArrayOf(
      raw.clicked,
      (c): c is object => isRecord(c) && isShortText(c.productId) && isShortText(c.attributionId),
    ) &&
    isArrayOf(raw.counters, isArmCounter) &&
    isPeriod(raw.period) &&
    isArrayOf(
      raw.closed,
      (c): c is object => isArmCounter(c) && isPeriod((c as { period?: unknown }).period),
    ) && // prettier-ignore
    isArrayOf(
      raw.reports,
      (r): r is object =>
        isRecord(r) &&
        isShortText(r.experiment) &&
        isPeriod(r.period) &&
        typeof r.key === 'string' &&
        /^[0-9a-f]{32}$/.test(r.key) &&
        isBytes(r.leader) &&
        isBytes(r.helper),
    )
  )
}

const isPeriod = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0

function isArmCounter(c: unknown): c is object {
  return (
    isRecord(c) &&
    [c.experiment, c.key, c.arm].every(isShortText) &&
    isArrayOf(c.arms, (a): a is string => isShortText(a)) &&
    (c.arms as string[]).includes(c.arm as string) &&
    Number.isInteger(c.group) &&
    (c.group as number) >= 0 &&
    (c.group as number) < EXPERIMENT_GROUPS &&
    Array.isArray(c.counts) &&
    c.counts.length === emptyOutcomeCounts().length &&
    c.counts.every(isNonNegative) &&
    (c.explored === undefined ||
      (isArrayOf(c.explored, isBucketCounts) && c.explored.length <= EXPLORE_BUCKETS))
  )
}

const isNonNegative = (n: unknown) => isFiniteNumber(n) && n >= 0

/** [bucket, impressions, clicks] of exploration's counts (P30f). */
const isBucketCounts = (e: unknown): e is object =>
  Array.isArray(e) &&
  e.length === 3 &&
  Number.isInteger(e[0]) &&
  e[0] >= 0 &&
  e[0] < EXPLORE_BUCKETS &&
  isCount(e[1]) &&
  isCount(e[2])

const isExploredSlots = (e: unknown) =>
  isRecord(e) &&
  isShortText(e.experiment) &&
  isShortText(e.arm) &&
  isArrayOf(e.productIds, (p): p is string => isShortText(p)) &&
  e.productIds.length <= MAX_LIMIT

function isKeptArm(raw: unknown): raw is KeptArm {
  return (
    isRecord(raw) &&
    [raw.experiment, raw.key, raw.arm].every((v) => typeof v === 'string' && v.length <= 256)
  )
}
