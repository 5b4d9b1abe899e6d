// What one update costs each party of the two-server channel (PROTOCOL.md P29b, P29c), shared
// by `npm run bench:dpf` and `npm run bench:server`: a device splitting a full 32-row
// contribution into its two bodies (in Node, and in a dedicated worker of headless Chromium),
// and each server checking every body (median and p99) and adding them one by one and then all
// in one batch, as at a release, on one core.
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { createNodeCipher } from '../server/federated/node-cipher'
import { createNobleCipher } from '../shared/noble-cipher'
import { placeRows } from '../shared/row-buckets'
import {
  addShareBodies,
  secureParamsFor,
  splitContribution,
  verifyShareBody,
  type Party,
} from '../shared/secure-update'
import { createSparseSums } from '../shared/sparse-update'
import { DEFAULT_SPARSE } from '../server/federated/defaults'
import { chromiumSkipReason, openBrowser } from '../test/browser/harness'
import { randomFullContribution } from './full-update'
import type { SplitBrowserResult } from './secure-update-entry'
import { median, round } from './stats'

/** DIGINETICA's model: 100-wide rows, 100,700 dense weights; DEFAULT_SPARSE's layout. */
export const UPDATE_SHAPE = { embedDim: 100, denseSize: 100_700 }
export const UPDATE_LAYOUT = { ...DEFAULT_SPARSE.layout, embedDim: UPDATE_SHAPE.embedDim }

const keyRandomBytes = (n: number) => new Uint8Array(randomBytes(n))

/**
 * Full updates (32 rows, every coordinate random): the device's split; each server's check of
 * every body at intake (per update: median and p99), then its add of all of them in one batch,
 * as at a release (addShareBodies), spread over the bodies.
 */
export function benchUpdates(nItems: number, runs: number) {
  const params = secureParamsFor(UPDATE_LAYOUT, { ...UPDATE_SHAPE, nItems })
  const device = createNobleCipher()
  const server = createNodeCipher()
  const split: number[] = []
  const bodies: Array<[Uint8Array, Uint8Array]> = []
  for (let run = 0; run < runs; run++) {
    const contribution = randomFullContribution(params, Math.random)
    const t0 = performance.now()
    const placed = placeRows(contribution.rows, params.buckets.params, Math.random)
    bodies.push(
      splitContribution(
        contribution,
        placed.bucketRow,
        { baseVersion: 1, slice: run, idempotencyKey: keyRandomBytes(16) },
        params,
        keyRandomBytes,
        device,
      ),
    )
    split.push(performance.now() - t0)
  }
  const role = (party: Party) => {
    const checks = bodies.map((pair) => {
      const t = performance.now()
      verifyShareBody(pair[party], party, params, server)
      return performance.now() - t
    })
    // One by one (as a server adding each body at intake would), then all in one batch.
    const addMs = [1, runs].map((batch) => {
      const sums = createSparseSums(params.shape, new Int32Array(UPDATE_LAYOUT.negativeRows))
      const t = performance.now()
      for (let first = 0; first < runs; first += batch)
        addShareBodies(
          sums,
          bodies.slice(first, first + batch).map((pair) => pair[party]),
          party,
          params,
          server,
        )
      return (performance.now() - t) / runs
    })
    const sorted = checks.slice().sort((a, b) => a - b)
    const checkMs = median(checks)
    return {
      checkMedianMs: round(checkMs, 1),
      checkP99Ms: round(sorted[Math.min(runs - 1, Math.ceil(0.99 * runs) - 1)]!, 1),
      addMsPerUpdateOneByOne: round(addMs[0]!, 1),
      addMsPerUpdate: round(addMs[1]!, 1),
      updatesPerSecondPerCore: round(1000 / (checkMs + addMs[1]!), 2),
    }
  }
  return {
    nItems,
    buckets: params.buckets.params.buckets,
    domainBits: params.buckets.domainBits,
    runs,
    bodyBytes: { leader: bodies[0]![0].length, helper: bodies[0]![1].length },
    deviceNodeNoble: { medianMs: round(median(split), 1) },
    leader: role(0),
    helper: role(1),
  }
}

/** The device's split in a dedicated worker of headless Chromium, or why it was skipped. */
export async function splitInChromium(nItems: number, runs: number) {
  const skip = chromiumSkipReason()
  if (skip) return { skipped: skip }
  const browser = await openBrowser(path.resolve('bench/secure-update-entry.ts'))
  try {
    const query = new URLSearchParams({
      ...Object.fromEntries(Object.entries(UPDATE_LAYOUT).map(([k, v]) => [k, String(v)])),
      denseSize: String(UPDATE_SHAPE.denseSize),
      nItems: String(nItems),
      runs: String(runs),
    })
    const result = await browser.result<SplitBrowserResult>(`/?${query}`, 600_000)
    return {
      where: /Chrome\/[\d.]+/.exec(result.userAgent)?.[0] ?? result.userAgent,
      nItems,
      runs: result.ms.length,
      medianMs: round(median(result.ms), 1),
      bodyBytes: { leader: result.bytes[0], helper: result.bytes[1] },
    }
  } finally {
    await browser.close()
  }
}
