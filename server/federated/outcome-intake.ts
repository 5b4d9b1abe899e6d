// Receiving one outcome report (PROTOCOL.md P30c), the leader's body of it: every check before
// anything is stored, each refusal with a stable code. The token (P21) names the client; a client
// sends one report per experiment and period (a UTC day), so that one device weighs at most its
// clipped counts in a day's totals. Whether the helper holds the other body is checked at the
// batch, by the helper; the counts themselves cannot be checked by either server (as an update's
// payload, P29b), only their size.
import { outcomePeriod } from '../../shared/outcome-counts'
import { reportCells } from '../../shared/outcome-report'
import { digestHex, experimentDigest, readOutcomeHeader } from '../../shared/outcome-transport'
import type { ModelManifest } from '../../shared/protocol'
import type { FederationStore } from '../storage/store'
import type { HttpErrorCode } from '../http-errors'
import { HTTP_STATUS } from '../http-errors'
import { verifyToken } from './tokens'

/** Days back a report may be for: a device offline for a week still reports its counts. */
export const OUTCOME_PERIODS_BACK = 7

export interface OutcomeIntakeDeps {
  store: FederationStore
  site: string
  secret: Uint8Array
  now: () => number
  /** The current version's manifest: its experiments are the ones running. */
  current: () => Promise<ModelManifest>
  /** False when this client has sent too much lately (P21). */
  allow: (client: string) => boolean
}

export type OutcomeIntakeResult =
  | { status: 202; code: 'accepted'; message: string }
  | { status: 200; code: 'duplicate'; message: string }
  | { status: number; code: HttpErrorCode; message: string }

const refused = (code: HttpErrorCode, message: string): OutcomeIntakeResult => ({
  status: HTTP_STATUS[code],
  code,
  message,
})

export async function receiveOutcome(
  deps: OutcomeIntakeDeps,
  request: { token: unknown; body: Uint8Array },
): Promise<OutcomeIntakeResult> {
  const checked = verifyToken(request.token, deps.secret, deps.now())
  if (!checked.ok) return refused('E_TOKEN', checked.reason)
  const { token } = checked
  if (token.site !== deps.site) return refused('E_TOKEN', `the token is for site ${token.site}`)
  let header: ReturnType<typeof readOutcomeHeader>
  try {
    header = readOutcomeHeader(request.body)
  } catch (error) {
    if (!(error instanceof RangeError)) throw error
    return refused('E_OUTCOME_FORMAT', error.message)
  }
  if (header.party !== 0)
    return refused(
      'E_OUTCOME_FORMAT',
      'expected the leader’s body (party 0); the helper takes the other',
    )
  const digest = digestHex(header.experiment)
  const experiment = ((await deps.current()).experiments ?? []).find(
    (e) => digestHex(experimentDigest(e)) === digest,
  )
  if (!experiment)
    return refused(
      'E_EXPERIMENT_UNKNOWN',
      'no running experiment has this digest (ended, or its key changed)',
    )
  const cells = reportCells(experiment.arms.length)
  if (header.cells !== cells)
    return refused(
      'E_OUTCOME_FORMAT',
      `expected ${cells} cells for ${experiment.id}, got ${header.cells}`,
    )
  const today = outcomePeriod(deps.now())
  if (header.period > today || header.period < today - OUTCOME_PERIODS_BACK)
    return refused(
      'E_OUTCOME_FORMAT',
      `expected a period from ${today - OUTCOME_PERIODS_BACK} to ${today}, got ${header.period}`,
    )
  if (!deps.allow(token.client))
    return refused('E_RATE_LIMITED', 'too many reports from this client; retry later')
  const outcome = await deps.store.acceptOutcome({
    key: `${token.client}:${digestHex(header.idempotencyKey)}`,
    clientId: token.client,
    experiment: digest,
    period: header.period,
    body: request.body,
    receivedAtMs: deps.now(),
  })
  if (outcome === 'duplicate')
    return { status: 200, code: 'duplicate', message: 'this report was accepted before' }
  if (outcome === 'client-limit')
    return refused(
      'E_CLIENT_LIMIT',
      `this client has reported ${experiment.id} for this period already`,
    )
  return { status: 202, code: 'accepted', message: 'stored until its experiment’s next batch' }
}
