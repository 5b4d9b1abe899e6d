// Sending a device's outcome reports (PROTOCOL.md P30c), after each federated round's update:
// the helper's body first, then the leader's with an upload token (P21): the leader takes a
// report only once the helper holds its half, as for updates (P29c). The reports wait in the
// outcomes record (experiment-reports.ts builds them) until both servers took them.
import type { PendingReport } from '../experiment-outcomes'
import { postBytes } from './post-json'

export interface ReportSenderDeps {
  fetch: typeof fetch
  /** The federation routes are /v1/… on its origin. */
  manifestUrl: URL
  /** The helper's `shares` route (helper-url.ts). */
  helperShares: URL
  /** A new upload token (P21), the current version's; null when none can be had now. */
  token(): Promise<string | null>
  reports(): Promise<PendingReport[]>
  /** Forgets a report the servers took, or refused for good. */
  forget(key: string): Promise<void>
}

export type ReportsSent = { sent: number; dropped: number; kept: number }

/**
 * Sends the waiting reports, oldest first; stops at the first one a server could not take now
 * (no answer, 429, 5xx), which waits for the next round. A 4xx other than those (an experiment
 * that ended, a period already reported) drops the report: it would be refused again.
 */
export async function sendReports(deps: ReportSenderDeps): Promise<ReportsSent> {
  const result: ReportsSent = { sent: 0, dropped: 0, kept: 0 }
  const reports = await deps.reports()
  const leader = new URL('/v1/outcomes', deps.manifestUrl)
  let token: string | null = null
  for (const [i, report] of reports.entries()) {
    const toLeader = async () => {
      token ??= await deps.token()
      return token === null ? 0 : postBytes(deps.fetch, leader, report.leader, token)
    }
    let status = await postBytes(deps.fetch, deps.helperShares, report.helper)
    if (status === 200 || status === 202) {
      status = await toLeader()
      // The token expired meanwhile: once more with a new one.
      if (status === 401) {
        token = null
        status = await toLeader()
      }
    }
    if (status === 200 || status === 202) {
      await deps.forget(report.key)
      result.sent++
    } else if (status >= 400 && status < 500 && status !== 429) {
      await deps.forget(report.key)
      result.dropped++
    } else {
      result.kept += reports.length - i
      return result
    }
  }
  return result
}
