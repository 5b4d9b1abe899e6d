// What a device counts for the operator's experiments (P30), from the lists it serves and the
// Segment events the shop already sends: per experiment it is in, per scenario, the lists shown,
// the clicks on them (a `Product Clicked` whose attribution id names a list of this device),
// then the adds and purchases of products clicked from a list (the shop's `Product Added` and
// `Order Completed` carry the list's id, or the product was clicked from it earlier), and the
// revenue of those purchases. The counts stay on the device until they are reported as a
// shared, clipped vector (shared/outcome-report.ts); no item id is ever part of them. The lists
// and clicks remembered to credit later events are the last `REMEMBERED` of each. The arm that
// explores (P30e) also counts its explored items' impressions and clicks, by bucket of item id
// only (P30f): the fleet's sums become every device's prior.
import type { TrackEvent } from '../../shared/events'
import {
  countExplored,
  emptyOutcomeCounts,
  outcomeCell,
  type ExploreCounts,
  type OutcomeCounts,
  type OutcomeMetric,
} from '../../shared/outcome-counts'
import type { Scenario } from '../../shared/protocol'
import { armsOfAttribution, type Placed } from './experiment-arms'

export const REMEMBERED = 100

export interface ArmCounter {
  experiment: string
  key: string
  /** The experiment's arm names in order: with id and key, what its reports' digest is of. */
  arms: string[]
  arm: string
  group: number
  counts: OutcomeCounts
  /** The exploring arm's impressions of and clicks on explored items, by bucket (P30f). */
  explored?: ExploreCounts
}

/** A list's exploration slots: the arm that gave them, and the items they showed. */
export interface ExploredSlots {
  experiment: string
  arm: string
  productIds: string[]
}

/** A report built from a closed counter, waiting to be sent (experiment-reports.ts, P30c). */
export interface PendingReport {
  experiment: string
  period: number
  /** The idempotency key both bodies carry, hex. */
  key: string
  leader: Uint8Array
  helper: Uint8Array
}

export interface OutcomeState {
  /** Lists served with arms, newest last: which scenario an attribution id was. */
  lists: Array<{ attributionId: string; scenario: Scenario; explored?: ExploredSlots }>
  /** Products clicked from a list, newest last: the list later adds and orders credit. */
  clicked: Array<{ productId: string; attributionId: string }>
  counters: ArmCounter[]
  /** The UTC day (outcomePeriod) the counters count for; 0 before the first count. */
  period: number
  /** Counters of ended days, until the next federated round makes them reports. */
  closed: Array<ArmCounter & { period: number }>
  /** Reports of ended days, oldest first, until the servers took them. */
  reports: PendingReport[]
}

/** Counters and reports kept at most: four experiments for a week offline; oldest dropped. */
export const MAX_PENDING_REPORTS = 28

export const emptyOutcomeState = (): OutcomeState => ({
  lists: [],
  clicked: [],
  counters: [],
  period: 0,
  closed: [],
  reports: [],
})

/**
 * Ends the counting day when `today` is a later one: its counters with any count are kept,
 * closed, for the next federated round to report (experiment-reports.ts, P30c), and the counts
 * start over. Returns whether the state changed. The lists and clicks remembered stay: a click
 * today on yesterday's list credits today's counts.
 */
export function rollPeriod(state: OutcomeState, today: number): boolean {
  if (state.period === today) return false
  const ended = state.counters.filter((c) => c.counts.some((n) => n > 0))
  state.closed.push(...ended.map((c) => ({ ...c, period: state.period })))
  if (state.closed.length > MAX_PENDING_REPORTS)
    state.closed.splice(0, state.closed.length - MAX_PENDING_REPORTS)
  state.counters = []
  state.period = today
  return true
}

function counterFor(state: OutcomeState, placed: Placed): ArmCounter {
  const { experiment, arm, group } = placed
  let counter = state.counters.find(
    (c) => c.experiment === experiment.id && c.key === experiment.key && c.arm === arm.name,
  )
  if (!counter) {
    const arms = experiment.arms.map((a) => a.name)
    counter = { experiment: experiment.id, key: experiment.key, arms, arm: arm.name, group, counts: emptyOutcomeCounts() } // prettier-ignore
    state.counters.push(counter)
  }
  return counter
}

const remember = <T>(list: T[], entry: T) => {
  list.push(entry)
  if (list.length > REMEMBERED) list.splice(0, list.length - REMEMBERED)
}

/**
 * A list served to the page: one more list of its scenario in each of the device's arms, and an
 * impression of each explored item in the exploring arm's buckets.
 */
export function countList(
  state: OutcomeState,
  placed: readonly Placed[],
  attributionId: string,
  scenario: Scenario,
  explored?: ExploredSlots,
): void {
  if (placed.length === 0) return
  for (const p of placed) {
    const counter = counterFor(state, p)
    counter.counts[outcomeCell(scenario, 'lists')]! += 1
    if (explored?.experiment === p.experiment.id && explored.arm === p.arm.name) {
      for (const id of explored.productIds) countExplored((counter.explored ??= []), id, 'shown')
    }
  }
  remember(state.lists, { attributionId, scenario, ...(explored ? { explored } : {}) })
}

/**
 * Today's counter of an arm, or undefined when the device is not in it today. A list of a day
 * that has ended since credits today's counter of its arm, opened anew.
 */
function todaysCounter(state: OutcomeState, experiment: string, arm: string) {
  const same = (c: ArmCounter) => c.experiment === experiment && c.arm === arm
  const counter = state.counters.find(same)
  if (counter) return counter
  const ended = [...state.closed].reverse().find(same)
  if (!ended) return undefined
  const { period: _period, counts: _counts, explored: _explored, ...placement } = ended
  const opened: ArmCounter = { ...placement, counts: emptyOutcomeCounts() }
  state.counters.push(opened)
  return opened
}

/** Adds `amount` of `metric` to every arm the list `attributionId` was served under. */
function credit(
  state: OutcomeState,
  attributionId: string,
  metric: OutcomeMetric,
  amount = 1,
): boolean {
  const list = state.lists.find((l) => l.attributionId === attributionId)
  if (!list) return false
  for (const [experiment, arm] of armsOfAttribution(attributionId)) {
    const counter = todaysCounter(state, experiment, arm)
    if (counter) counter.counts[outcomeCell(list.scenario, metric)]! += amount
  }
  return true
}

/** A click on an item the list `attributionId` explored: a click in its bucket. */
function creditExplored(state: OutcomeState, attributionId: string, productId: string): void {
  const explored = state.lists.find((l) => l.attributionId === attributionId)?.explored
  if (!explored?.productIds.includes(productId)) return
  const counter = todaysCounter(state, explored.experiment, explored.arm)
  if (counter) countExplored((counter.explored ??= []), productId, 'clicked')
}

function creditedList(state: OutcomeState, productId: string): string | undefined {
  for (let i = state.clicked.length - 1; i >= 0; i--) {
    if (state.clicked[i]!.productId === productId) return state.clicked[i]!.attributionId
  }
  return undefined
}

/** An event the shop sent: whatever it credits to the device's lists. Returns whether it did. */
export function countEvent(state: OutcomeState, event: TrackEvent): boolean {
  switch (event.event) {
    case 'Product Clicked': {
      const id = event.attribution_id
      if (id === undefined || !credit(state, id, 'clicks')) return false
      creditExplored(state, id, event.properties.product_id)
      remember(state.clicked, { productId: event.properties.product_id, attributionId: id })
      return true
    }
    case 'Product Added': {
      const id = event.attribution_id ?? creditedList(state, event.properties.product_id)
      return id !== undefined && credit(state, id, 'adds')
    }
    case 'Order Completed': {
      // Each list is credited one purchase per order, and the revenue of its products in it.
      const revenue = new Map<string, number>()
      for (const product of event.properties.products) {
        const id = event.attribution_id ?? creditedList(state, product.product_id)
        if (id === undefined) continue
        const value = (product.price ?? 0) * (product.quantity ?? 1)
        revenue.set(id, (revenue.get(id) ?? 0) + (Number.isFinite(value) ? Math.max(0, value) : 0))
      }
      let any = false
      for (const [id, value] of revenue) {
        if (credit(state, id, 'purchases')) {
          credit(state, id, 'revenue', Math.round(value))
          any = true
        }
      }
      return any
    }
    default:
      return false
  }
}
