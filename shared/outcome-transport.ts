// An outcome report on the wire (PROTOCOL.md P30c): the two bodies a device sends, one to each
// server, for one experiment and one reporting period. Both carry the same 64-byte header (the
// magic `PRO1`, the party, the report's cell count, the period, a random idempotency key that
// pairs them, and the experiment's digest); the helper's body then holds a 16-byte PRG seed, its
// share being that seed's stream (secure-update.ts `expandSeed`, as the update channel's dense
// window), and the leader's body the report minus that stream, one word per cell. Either body
// alone is uniformly random to its server; only a batch's two sums, added, show totals.
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex } from '@noble/hashes/utils.js'
import type { BlockCipher } from './dpf'
import type { Experiment } from './experiments'
import { reportCells, splitReport } from './outcome-report'
import { expandSeed, type Party } from './secure-update'

/** Magic of an outcome body: `PRO1`. */
const MAGIC = 0x314f5250
export const OUTCOME_HEADER_BYTES = 64
const SEED_BYTES = 16
export interface OutcomeHeader {
  party: Party
  /** Cells of the report: arms × scenarios × metrics × groups (outcome-report.ts). */
  cells: number
  /** The UTC day the counts were made in (outcomePeriod). */
  period: number
  /** The same in both bodies of one report: how the servers pair them. */
  idempotencyKey: Uint8Array
  /** experimentDigest of the experiment the report is for. */
  experiment: Uint8Array
}

const encoder = new TextEncoder()

/**
 * SHA-256 of what makes reports of one experiment add up: its id, hash key and arms in order
 * (shares may change: new shares place new devices only, P30). Public: it names the experiment
 * in both bodies, in the batch request and in the operator's totals.
 */
export function experimentDigest(experiment: Experiment): Uint8Array {
  const arms = experiment.arms.map((arm) => arm.name)
  return sha256(encoder.encode(JSON.stringify(['pocketrec outcomes v1', experiment.id, experiment.key, arms]))) // prettier-ignore
}

/** Hex of a digest or key, as the servers name reports and experiments. */
export const digestHex = (digest: Uint8Array) => bytesToHex(digest)

/** A body's exact size for `party`. */
export function outcomeBodyBytes(cells: number, party: Party): number {
  return OUTCOME_HEADER_BYTES + (party === 0 ? 4 * cells : SEED_BYTES)
}

/**
 * The report's two bodies, [leader, helper]. `report` is buildOutcomeReport's vector;
 * `randomBytes` must be a CSPRNG.
 */
export function splitOutcomeReport(
  report: Uint32Array,
  header: Omit<OutcomeHeader, 'party' | 'cells'>,
  randomBytes: (n: number) => Uint8Array,
  cipher: BlockCipher,
): [Uint8Array, Uint8Array] {
  const seed = randomBytes(SEED_BYTES)
  const [leaderShare] = splitReport(
    report,
    (words) => new Uint32Array(expandSeed(seed, words, cipher).slice().buffer),
  )
  const cells = report.length
  const bodies: [Uint8Array, Uint8Array] = [
    new Uint8Array(outcomeBodyBytes(cells, 0)),
    new Uint8Array(outcomeBodyBytes(cells, 1)),
  ]
  bodies.forEach((body, party) => writeHeader(body, { ...header, cells, party: party as Party }))
  const view = new DataView(bodies[0].buffer)
  for (let i = 0; i < cells; i++)
    view.setUint32(OUTCOME_HEADER_BYTES + 4 * i, leaderShare[i]!, true)
  bodies[1].set(seed, OUTCOME_HEADER_BYTES)
  return bodies
}

/** Whether `body` starts like an outcome body (its magic), before any other check. */
export function isOutcomeBody(body: Uint8Array): boolean {
  return (
    body.length >= 4 && new DataView(body.buffer, body.byteOffset, 4).getUint32(0, true) === MAGIC
  )
}

/** The header of an outcome body of its exact size; a RangeError for anything else. */
export function readOutcomeHeader(body: Uint8Array): OutcomeHeader {
  if (body.length < OUTCOME_HEADER_BYTES)
    throw new RangeError(`expected an outcome body of at least ${OUTCOME_HEADER_BYTES} bytes`)
  if (!isOutcomeBody(body)) throw new RangeError('expected an outcome body (magic PRO1)')
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength)
  const party = body[4]
  if (party !== 0 && party !== 1) throw new RangeError(`expected party 0 or 1, got ${party}`)
  const cells = view.getUint32(8, true)
  if (cells === 0 || cells > reportCells(8))
    throw new RangeError(`expected 1 to ${reportCells(8)} cells, got ${cells}`)
  const expected = outcomeBodyBytes(cells, party)
  if (body.length !== expected)
    throw new RangeError(`expected a party ${party} outcome body of ${expected} bytes, got ${body.length}`) // prettier-ignore
  return {
    party,
    cells,
    period: view.getUint32(12, true),
    idempotencyKey: body.slice(16, 32),
    experiment: body.slice(32, 64),
  }
}

/**
 * One server's share of the report in `body` (checked: party, cells): the leader's words as sent,
 * the helper's expanded from its seed.
 */
export function outcomeShare(
  body: Uint8Array,
  party: Party,
  cells: number,
  cipher: BlockCipher,
): Uint32Array {
  const header = readOutcomeHeader(body)
  if (header.party !== party)
    throw new RangeError(`expected a body for party ${party}, got one for party ${header.party}`)
  if (header.cells !== cells) throw new RangeError(`expected ${cells} cells, got ${header.cells}`)
  if (party === 1) {
    const seed = body.slice(OUTCOME_HEADER_BYTES)
    return new Uint32Array(expandSeed(seed, cells, cipher).slice().buffer)
  }
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength)
  return Uint32Array.from({ length: cells }, (_, i) =>
    view.getUint32(OUTCOME_HEADER_BYTES + 4 * i, true),
  )
}

function writeHeader(body: Uint8Array, header: OutcomeHeader): void {
  if (header.idempotencyKey.length !== 16)
    throw new RangeError('expected a 16-byte idempotency key')
  if (header.experiment.length !== 32) throw new RangeError('expected a 32-byte experiment digest')
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength)
  view.setUint32(0, MAGIC, true)
  body[4] = header.party
  view.setUint32(8, header.cells, true)
  view.setUint32(12, header.period, true)
  body.set(header.idempotencyKey, 16)
  body.set(header.experiment, 32)
}
