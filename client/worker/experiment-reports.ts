// A device's outcome reports (PROTOCOL.md P30c): each counter of an ended day
// (experiment-outcomes.ts rollPeriod) becomes one report (shared/outcome-report.ts: clipped into
// its arm's and group's cells), split into the leader's and the helper's bodies
// (outcome-transport.ts), in the same IndexedDB write. Loaded with the model part (model-part.ts),
// since its AES is not needed for a first list; the federated round calls it, then sends the
// reports (federated/report-sender.ts). No item id, and no count in the clear, leaves the device.
import type { BlockCipher } from '../../shared/dpf'
import { createNobleCipher } from '../../shared/noble-cipher'
import { buildOutcomeReport } from '../../shared/outcome-report'
import { digestHex, experimentDigest, splitOutcomeReport } from '../../shared/outcome-transport'
import { MAX_PENDING_REPORTS, type OutcomeState } from './experiment-outcomes'

export interface ReportCrypto {
  /** A CSPRNG (crypto.getRandomValues). */
  randomBytes(n: number): Uint8Array
  cipher: BlockCipher
}

/** The worker's: the platform's CSPRNG and noble's AES (the update channel's too). */
export const REPORT_CRYPTO: ReportCrypto = {
  randomBytes: (n) => crypto.getRandomValues(new Uint8Array(n)),
  cipher: createNobleCipher(),
}

/** The closed counters made reports (their counts dropped); whether there were any. */
export function buildReports(state: OutcomeState, crypto: ReportCrypto): boolean {
  if (state.closed.length === 0) return false
  for (const counter of state.closed) {
    const arm = counter.arms.indexOf(counter.arm)
    const experiment = {
      id: counter.experiment,
      key: counter.key,
      arms: counter.arms.map((name) => ({ name, share: 1 })),
    }
    const report = buildOutcomeReport(counter.arms.length, arm, counter.group, counter.counts, counter.explored) // prettier-ignore
    const key = crypto.randomBytes(16)
    const [leader, helper] = splitOutcomeReport(
      report,
      { period: counter.period, idempotencyKey: key, experiment: experimentDigest(experiment) },
      crypto.randomBytes,
      crypto.cipher,
    )
    state.reports.push({ experiment: counter.experiment, period: counter.period, key: digestHex(key), leader, helper }) // prettier-ignore
  }
  state.closed = []
  if (state.reports.length > MAX_PENDING_REPORTS)
    state.reports.splice(0, state.reports.length - MAX_PENDING_REPORTS)
  return true
}
