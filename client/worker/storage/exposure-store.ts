// How often each product was shown to this shopper since they last clicked it: what the
// recommender's demotion reads (rerank.ts, demotionFactor). Bounded to MAX_EXPOSURE_RECORDS
// products, the least recently shown dropped first; a click deletes the product's record. It lives
// in the one database, so forget() deletes it with everything else.
import { removeCorrupt, runRead, runWrite, scanRecords, type StorageContext } from './database'
import { isStoredExposure } from './stored-records'

/** Products whose impressions are kept; enough for every list a shopper sees in weeks. */
export const MAX_EXPOSURE_RECORDS = 500

export interface ExposureStore {
  /** Per product id, the lists it was shown in since its last click. */
  impressions(): Promise<Map<string, number>>
  /** One impression for each product of a list the page was given. */
  recordShown(productIds: readonly string[]): Promise<void>
  /** The shopper clicked the product: its count starts again from zero. */
  recordClicked(productId: string): Promise<void>
}

export function createExposureStore(
  context: StorageContext,
  maxRecords = MAX_EXPOSURE_RECORDS,
): ExposureStore {
  return {
    async impressions() {
      const corrupt: string[] = []
      const counts = new Map<string, number>()
      await runRead(context, ['exposure'], 'reading impressions', (tx) =>
        scanRecords(tx.objectStore('exposure').openCursor(), isStoredExposure, corrupt, (r) => {
          counts.set(r.productId, r.shown)
          return true
        }),
      )
      await removeCorrupt(context, 'exposure', corrupt, isStoredExposure)
      return counts
    },

    async recordShown(productIds) {
      if (productIds.length === 0) return
      await runWrite(context, ['exposure'], 'recording impressions', async (tx, tally) => {
        const store = tx.objectStore('exposure')
        const lastShownMs = context.now()
        for (const productId of new Set(productIds)) {
          const raw: unknown = await store.get(productId)
          const valid = isStoredExposure(raw)
          if (raw !== undefined && !valid) tally.corrupt++
          const shown = valid ? raw.shown + 1 : 1
          await store.put({ productId, shown, lastShownMs })
        }
        let excess = (await store.count()) - maxRecords
        let cursor = excess > 0 ? await store.index('by-last-shown').openCursor() : null
        while (cursor && excess-- > 0) {
          await cursor.delete()
          cursor = await cursor.continue()
        }
      })
    },

    recordClicked(productId) {
      return runWrite(context, ['exposure'], 'recording a click', async (tx) => {
        await tx.objectStore('exposure').delete(productId)
      })
    },
  }
}
