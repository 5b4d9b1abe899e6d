// Small facts about this device's copy: consent, schema version, training progress. Absent or
// corrupt records read as the defaults, since the database may be emptied at any time.
import { removeCorrupt, runRead, runWrite, type StorageContext } from './database'
import type { KeptArm, MetaKey, MetaRecord, TrainingState } from './schema'
import { emptyOutcomeState, type OutcomeState } from '../experiment-outcomes'
import { isStoredMeta } from './stored-records'

export const INITIAL_TRAINING_STATE: TrainingState = {
  steps: 0,
  lastTrainedAtMs: null,
  trainedThroughSessionId: null,
  losses: [],
}

/** Recent losses kept for the loss curve. */
export const MAX_STORED_LOSSES = 200

export interface MetaStore {
  /** Whether consent was recorded as given (the worker opens storage only after consent). */
  loadConsent(): Promise<boolean>
  saveConsent(granted: boolean): Promise<void>
  /** The schema version and when this database was created and last migrated, if recorded. */
  loadSchemaInfo(): Promise<Extract<MetaRecord, { key: 'schema' }> | null>
  loadTrainingState(): Promise<TrainingState>
  saveTrainingState(state: TrainingState): Promise<void>
  /** This device's federation client id as the server issued it (P21), or null: none yet. */
  loadClientId(): Promise<string | null>
  /** Keeps an id the server issued, replacing the one before (expired, or from before P21). */
  saveClientId(id: string): Promise<void>
  /** The release version this device last queued an update for, or null. */
  loadLastUpdateVersion(): Promise<string | null>
  /** Records an update queued for `version` (P15: one per version). */
  saveLastUpdateVersion(version: string): Promise<void>
  /** A/B experiments (P30): the device's own random id and its kept arms, or null: none yet. */
  loadExperiments(): Promise<{ deviceId: string; arms: KeptArm[] } | null>
  saveExperiments(deviceId: string, arms: KeptArm[]): Promise<void>
  /**
   * Reads the experiments' counts, lets `change` modify them and writes them back, in one
   * transaction (lists and events arrive together); `change` returns whether it changed any.
   */
  updateOutcomes(change: (state: OutcomeState) => boolean): Promise<OutcomeState>
}

export function createMetaStore(context: StorageContext): MetaStore {
  async function load<K extends MetaKey>(key: K): Promise<Extract<MetaRecord, { key: K }> | null> {
    const raw: unknown = await runRead(context, ['meta'], `reading ${key}`, (tx) =>
      tx.objectStore('meta').get(key),
    )
    if (isStoredMeta(raw, key)) return raw
    if (raw !== undefined)
      await removeCorrupt(context, 'meta', [key], (value) => isStoredMeta(value, key))
    return null
  }

  function save(record: MetaRecord): Promise<void> {
    return runWrite(context, ['meta'], `saving ${record.key}`, async (tx) => {
      await tx.objectStore('meta').put(record)
    })
  }

  return {
    async loadConsent() {
      return (await load('consent'))?.granted ?? false
    },
    saveConsent(granted) {
      return save({ key: 'consent', granted, updatedAtMs: context.now() })
    },
    loadSchemaInfo() {
      return load('schema')
    },
    async loadTrainingState() {
      const record = await load('training')
      if (!record) return { ...INITIAL_TRAINING_STATE, losses: [] }
      const { key: _key, ...state } = record
      return state
    },
    saveTrainingState(state) {
      return save({ key: 'training', ...state, losses: state.losses.slice(-MAX_STORED_LOSSES) })
    },
    async loadLastUpdateVersion() {
      return (await load('federation'))?.lastVersion ?? null
    },
    async saveLastUpdateVersion(version) {
      await save({ key: 'federation', lastVersion: version, updatedAtMs: context.now() })
    },
    async loadClientId() {
      return (await load('client'))?.id ?? null
    },
    saveClientId(id) {
      return save({ key: 'client', id, createdAtMs: context.now() })
    },
    async loadExperiments() {
      const record = await load('experiments')
      return record ? { deviceId: record.deviceId, arms: record.arms } : null
    },
    saveExperiments(deviceId, arms) {
      return save({ key: 'experiments', deviceId, arms })
    },
    async updateOutcomes(change) {
      let state = emptyOutcomeState()
      await runWrite(context, ['meta'], 'counting outcomes', async (tx) => {
        const raw: unknown = await tx.objectStore('meta').get('outcomes')
        // A corrupt record starts the counts over: they are a device's own, never its history.
        if (isStoredMeta(raw, 'outcomes')) {
          const { key: _key, ...stored } = raw
          state = stored
        }
        if (change(state)) await tx.objectStore('meta').put({ key: 'outcomes', ...state })
      })
      return state
    },
  }
}
