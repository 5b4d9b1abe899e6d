// The leader's half of a release on the two-server channel (PROTOCOL.md P29c): its digest of each
// body it accepted, one aggregate request to the helper naming the batch, the helper's share of
// the sums back, its own share of exactly the reports the helper included, and the two combined
// into the release's sums, which equal the plaintext channel's bit for bit. The request is a
// function of the batch alone (its id and its reports in order), so a leader that crashed and
// retries the batch it recorded gets the helper's committed answer, never a second sum.
import type { BlockCipher } from '../../shared/dpf'
import {
  addShareBodies,
  combineShares,
  readShareHeader,
  verifyShareBody,
  type SecureParams,
} from '../../shared/secure-update'
import {
  decodeAggregateAnswer,
  decodeShareSums,
  type ExclusionReason,
} from '../../shared/share-sums'
import { helperRoute } from '../../shared/helper-url'
import { createSparseSums, type SparseSums } from '../../shared/sparse-update'

export interface HelperLink {
  /** The helper's origin, e.g. https://helper.example (its routes are /v1/… there). */
  url: string
  /** The pairing secret the helper was started with. */
  token: string
  fetch?: typeof fetch
  /** Between asks while the helper answers 202 (running); default 500 ms. */
  pollMs?: number
  /** Asks that got no answer or a 5xx before giving up; default 20 (with growing waits). */
  attempts?: number
}

export interface BatchReport {
  /** The leader's key of the update (`<client>:<key hex>`, P12). */
  key: string
  /** The leader's body (party 0), as accepted. */
  body: Uint8Array
}

export interface SummedBatch {
  sums: SparseSums
  /** Leader keys of the reports in the sums, in the batch's order. */
  included: string[]
  excluded: { key: string; reason: ExclusionReason }[]
}

/** The helper refused the batch (4xx): `code` says why (aggregate.ts's codes, E_LEADER…). */
export class HelperRefusal extends Error {
  constructor(
    readonly code: string,
    message: string,
    /**
     * E_BATCH_SMALL: leader keys of the batch's reports that can never be summed (malformed, or
     * left out by the helper: missing there, consumed, malformed, digests differ).
     */
    readonly unsummable: readonly string[] = [],
  ) {
    super(message)
    this.name = 'HelperRefusal'
  }
}

export async function sumSecureBatch(
  link: HelperLink,
  batch: { id: string; reports: readonly BatchReport[] },
  params: SecureParams,
  negativeRows: Int32Array,
  cipher: BlockCipher,
): Promise<SummedBatch> {
  const excluded: SummedBatch['excluded'] = []
  const asked: (BatchReport & { helperKey: string; digest: string })[] = []
  for (const report of batch.reports) {
    try {
      const digest = Buffer.from(verifyShareBody(report.body, 0, params, cipher)).toString('hex')
      const helperKey = Buffer.from(readShareHeader(report.body).idempotencyKey).toString('hex')
      asked.push({ ...report, helperKey, digest })
    } catch (error) {
      if (!(error instanceof RangeError)) throw error
      excluded.push({ key: report.key, reason: 'malformed' })
    }
  }
  const request = JSON.stringify({
    batch: batch.id,
    layout: params.layout,
    shape: params.shape,
    reports: asked.map((r) => ({ key: r.helperKey, digest: r.digest })),
  })
  const answered = await askHelper(link, 'aggregate', request)
  if ('refused' in answered) {
    const { code, message, left } = answered.refused
    // Only a batch refused as too small names the reports it left out: they can never be summed.
    const unsummable =
      code === 'E_BATCH_SMALL'
        ? [...excluded.map((e) => e.key), ...left.flatMap((i) => asked[i]?.key ?? [])]
        : []
    throw new HelperRefusal(code, message, unsummable)
  }
  const answer = decodeAggregateAnswer(answered.answer)
  if (answer.batch !== batch.id)
    throw new Error(`expected the helper's answer for batch ${batch.id}, got ${answer.batch}`)
  const out = new Map<number, ExclusionReason>()
  for (const [index, reason] of answer.excluded) {
    if (!(index >= 0 && index < asked.length) || out.has(index))
      throw new Error(`expected exclusions of distinct reports of the batch, got index ${index}`)
    out.set(index, reason)
  }
  const included = asked.filter((report, i) => {
    const reason = out.get(i)
    if (reason) excluded.push({ key: report.key, reason })
    return !reason
  })
  const leader = createSparseSums(params.shape, negativeRows)
  addShareBodies(
    leader,
    included.map((r) => r.body),
    0,
    params,
    cipher,
  )
  const helper = decodeShareSums(answer.sums, params.shape, negativeRows)
  return {
    sums: combineShares(leader, helper),
    included: included.map((r) => r.key),
    excluded,
  }
}

interface Refused {
  code: string
  message: string
  /** The indices (in the request) of the reports the helper says it left out. */
  left: number[]
}

/** POSTs the request to `route` until the helper answers it (200) or refuses it (4xx). */
export async function askHelper(
  link: HelperLink,
  route: 'aggregate' | 'aggregate-outcomes',
  request: string,
): Promise<{ answer: Uint8Array } | { refused: Refused }> {
  const http = link.fetch ?? fetch
  const attempts = link.attempts ?? 20
  let failures = 0
  for (;;) {
    let status = 0
    let reason: string
    try {
      const response = await http(helperRoute(link.url, route), {
        method: 'POST',
        headers: { authorization: `Bearer ${link.token}`, 'content-type': 'application/json' },
        body: request,
      })
      status = response.status
      if (status === 200) return { answer: new Uint8Array(await response.arrayBuffer()) }
      if (status >= 400 && status < 500) {
        const body = (await response.json().catch(() => ({}))) as {
          error?: string
          message?: string
          excluded?: unknown
        }
        const left = Array.isArray(body.excluded)
          ? body.excluded.flatMap((e: unknown) =>
              Array.isArray(e) && Number.isInteger(e[0]) ? [e[0] as number] : [],
            )
          : []
        return {
          refused: {
            code: body.error ?? `HTTP_${status}`,
            message: `the helper refused the batch (${status}): ${body.message ?? 'no message'}`,
            left,
          },
        }
      }
      await response.body?.cancel()
      reason = `HTTP ${status}`
    } catch (error) {
      reason = error instanceof Error ? error.message : String(error)
    }
    if (status === 202) {
      failures = 0
      await sleep(link.pollMs ?? 500)
      continue
    }
    if (++failures >= attempts)
      throw new Error(`the helper did not answer the batch after ${attempts} tries: ${reason}`)
    await sleep(Math.min(5_000, 100 * 2 ** failures))
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
