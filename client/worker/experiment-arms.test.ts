import { describe, expect, it } from 'vitest'
import { placeDevice } from '../../shared/experiments'
import type { ManifestExperiment } from '../../shared/protocol'
import {
  armsOfAttribution,
  armsSuffix,
  createExperimentPlacer,
  newExperimentDeviceId,
  placeInExperiments,
  type ExperimentStore,
} from './experiment-arms'
import type { KeptArm } from './storage/schema'

function memoryStore(): ExperimentStore & {
  saved: number
  record: { deviceId: string; arms: KeptArm[] } | null
} {
  const store = {
    saved: 0,
    record: null as { deviceId: string; arms: KeptArm[] } | null,
    async loadExperiments() {
      return store.record && structuredClone(store.record)
    },
    async saveExperiments(deviceId: string, arms: KeptArm[]) {
      store.saved++
      store.record = structuredClone({ deviceId, arms })
    },
  }
  return store
}

const holdout = (shares: [number, number], key = 'k1'): ManifestExperiment => ({
  id: 'holdout',
  key,
  arms: [
    { name: 'model', share: shares[0], lists: 'model' },
    { name: 'pools', share: shares[1], lists: 'pools' },
  ],
})

/** Device ids whose hash puts them in arm `arm` of `experiment`. */
function idIn(experiment: ManifestExperiment, arm: number, from = 0): string {
  for (let i = from; ; i++)
    if (placeDevice(experiment, `device-${i}`).arm === arm) return `device-${i}`
}

describe('a device in the operator’s experiments (P30)', () => {
  it('draws its own id once and places itself by the keyed hash', async () => {
    const store = memoryStore()
    const experiment = holdout([1, 1])
    const id = idIn(experiment, 1)
    const placed = await placeInExperiments(store, [experiment], () => id)
    expect(placed.map((p) => p.arm.name)).toEqual(['pools'])
    expect(store.record).toEqual({
      deviceId: id,
      arms: [{ experiment: 'holdout', key: 'k1', arm: 'pools' }],
    })
    // Again: the same arm, nothing written, no new id drawn.
    const again = await placeInExperiments(store, [experiment], () => 'never-used')
    expect(again.map((p) => p.arm.name)).toEqual(['pools'])
    expect(store.saved).toBe(1)
  })

  it('keeps its arm when the shares change, and is placed again under a new key', async () => {
    const store = memoryStore()
    const id = idIn(holdout([1, 1]), 1)
    await placeInExperiments(store, [holdout([1, 1])], () => id)
    // 99 % model now: a new device would almost surely land there; this one stays.
    expect(placeDevice(holdout([99, 1]), id).arm).toBe(0)
    const kept = await placeInExperiments(store, [holdout([99, 1])])
    expect(kept[0]!.arm.name).toBe('pools')
    const rekeyed = await placeInExperiments(store, [holdout([99, 1], 'k2')])
    expect(rekeyed[0]!.arm.name).toBe(
      holdout([99, 1], 'k2').arms[placeDevice(holdout([99, 1], 'k2'), id).arm]!.name,
    )
    expect(store.record!.arms).toEqual([
      { experiment: 'holdout', key: 'k2', arm: rekeyed[0]!.arm.name },
    ])
  })

  it('forgets the arms of experiments that ended, and writes nothing when none ever ran', async () => {
    const store = memoryStore()
    expect(await placeInExperiments(store, [])).toEqual([])
    expect(store.saved).toBe(0)
    await placeInExperiments(store, [holdout([1, 1])])
    const id = store.record!.deviceId
    expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/)
    await placeInExperiments(store, [])
    expect(store.record).toEqual({ deviceId: id, arms: [] })
  })

  it('draws one id however many lists ask at once, and reads the store once per release', async () => {
    const store = memoryStore()
    let reads = 0
    const counted = { ...store, loadExperiments: () => (reads++, store.loadExperiments()) }
    const place = createExperimentPlacer(counted)
    const experiments = [holdout([1, 1])]
    const answers = await Promise.all(Array.from({ length: 6 }, () => place(experiments)))
    const id = store.record!.deviceId
    expect(store.saved).toBe(1)
    for (const placed of answers) {
      expect(placed[0]!.arm.name).toBe(
        holdout([1, 1]).arms[placeDevice(holdout([1, 1]), id).arm]!.name,
      )
    }
    expect(reads).toBe(1)
    // Without the placer, the same six calls draw six ids and the last one written wins.
    const racing = memoryStore()
    let n = 0
    await Promise.all(
      Array.from({ length: 6 }, () =>
        placeInExperiments(racing, experiments, () => `device-${n++}`),
      ),
    )
    expect(racing.saved).toBe(6)
  })

  it('names its arms in attribution ids, and reads them back', () => {
    const placed = [
      { experiment: holdout([1, 1]), arm: holdout([1, 1]).arms[1]!, group: 0 },
      {
        experiment: { ...holdout([1, 1]), id: 'rules-b' },
        arm: holdout([1, 1]).arms[0]!,
        group: 5,
      },
    ]
    const id = `0123456789abcdef0123456789abcdef${armsSuffix(placed)}`
    expect(id).toBe('0123456789abcdef0123456789abcdef.holdout:pools.rules-b:model')
    expect(armsOfAttribution(id)).toEqual([
      ['holdout', 'pools'],
      ['rules-b', 'model'],
    ])
    expect(armsOfAttribution('0123456789abcdef0123456789abcdef')).toEqual([])
    expect(newExperimentDeviceId()).not.toBe(newExperimentDeviceId())
  })
})
