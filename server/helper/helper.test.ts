// The helper over real HTTP (PROTOCOL.md P29c): devices' bodies in, the leader's batch request
// in, its share of the sums out; combined with the leader's own share it must give the plaintext
// channel's sums bit for bit, for exactly the reports both servers accept.
import { serve, type ServerType } from '@hono/node-server'
import { mkdtempSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createNodeCipher } from '../federated/node-cipher'
import { dpfKeyBytes } from '../../shared/dpf'
import { createRandom } from '../../shared/random'
import { placeRows } from '../../shared/row-buckets'
import {
  addShareBodies,
  combineShares,
  dpfParams,
  secureParamsFor,
  splitContribution,
  verifyShareBody,
} from '../../shared/secure-update'
import { decodeAggregateAnswer, decodeShareSums } from '../../shared/share-sums'
import {
  addContribution,
  createSparseSums,
  denseWindowStart,
  withoutRows,
  type SparseContribution,
  type SparseSums,
} from '../../shared/sparse-update'
import { createHelper, type Helper } from './service'

const shape = { denseSize: 37, nItems: 300, embedDim: 4 }
const layout = { maxRows: 4, embedDim: 4, denseCoordinates: 8, negativeRows: 3 }
const params = secureParamsFor(layout, shape)
const negatives = Int32Array.of(5, 50, 150)
const cipher = createNodeCipher()
const randomBytes = (n: number) => globalThis.crypto.getRandomValues(new Uint8Array(n))
const LEADER_TOKEN = 'a-pairing-secret-of-forty-characters-1234'
const MIN_BATCH = 5

/** One device's update: its plaintext contribution and its two bodies. */
interface Device {
  key: string
  contribution: SparseContribution
  bodies: [Uint8Array, Uint8Array]
}

function makeDevice(seed: number): Device {
  const random = createRandom(seed)
  const rows = new Set<number>()
  while (rows.size < 1 + Math.floor(random() * layout.maxRows))
    rows.add(Math.floor(random() * shape.nItems))
  const word = () => Math.floor(random() * 2 ** 32) | 0
  const slice = Math.floor(random() * 2 ** 32)
  const drawn: SparseContribution = {
    rows: Int32Array.from(rows),
    rowValues: Int32Array.from({ length: rows.size * shape.embedDim }, word),
    denseStart: denseWindowStart(slice, layout, shape),
    dense: Int32Array.from({ length: layout.denseCoordinates }, word),
    negatives: Int32Array.from({ length: layout.negativeRows * shape.embedDim }, word),
  }
  const placed = placeRows(drawn.rows, params.buckets.params, random)
  const contribution = withoutRows(drawn, placed.dropped, shape.embedDim)
  const idempotencyKey = randomBytes(16)
  const header = { baseVersion: 3, slice, idempotencyKey }
  const bodies = splitContribution(
    contribution,
    placed.bucketRow,
    header,
    params,
    randomBytes,
    cipher,
  )
  return { key: Buffer.from(idempotencyKey).toString('hex'), contribution, bodies }
}

/** The device flips one bucket's last-level control corrections in both bodies (secure-update.test.ts). */
function tamper(device: Device): Device {
  const dpf = dpfParams(params)
  const b = 0
  const at = 32 + b * dpfKeyBytes(dpf) + 24 + 17 * (dpf.domainBits - 1) + 16
  const bodies = device.bodies.map((body) => {
    const copy = body.slice()
    copy[at]! ^= 3
    return copy
  }) as [Uint8Array, Uint8Array]
  return { ...device, bodies }
}

const digestOf = (device: Device) =>
  Buffer.from(verifyShareBody(device.bodies[0], 0, params, cipher)).toString('hex')

function plainSums(devices: readonly Device[]): SparseSums {
  const sums = createSparseSums(shape, negatives)
  for (const d of devices) addContribution(sums, d.contribution, shape.embedDim)
  return sums
}

function expectSameSums(a: SparseSums, b: SparseSums) {
  for (const part of ['table', 'counts', 'dense', 'denseCounts', 'negatives'] as const)
    expect(
      Buffer.from(a[part].buffer, a[part].byteOffset, a[part].byteLength).equals(
        Buffer.from(b[part].buffer, b[part].byteOffset, b[part].byteLength),
      ),
      part,
    ).toBe(true)
  expect(a.contributions).toBe(b.contributions)
}

let helper: Helper
let server: ServerType
let url = ''
const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-helper-http-'))

beforeAll(async () => {
  helper = await createHelper({
    store: { kind: 'sqlite', file: path.join(dir, 'helper.db') },
    leaderToken: LEADER_TOKEN,
    settings: { minBatch: MIN_BATCH },
    // Every batch first answers 202: the leader's polling is what these tests exercise.
    answerWaitMs: 1,
  })
  server = serve({ fetch: helper.app.fetch, port: 0, hostname: '127.0.0.1' })
  await new Promise((resolve) => server.once('listening', resolve))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve))
  await helper.close()
  rmSync(dir, { recursive: true, force: true })
})

const postShare = (body: Uint8Array) =>
  fetch(`${url}/v1/shares`, { method: 'POST', body: body as Uint8Array<ArrayBuffer> })

/** The leader's side of a batch: asks until the helper answers (not 202). */
async function aggregate(batch: string, reports: { key: string; digest: string }[]) {
  const body = JSON.stringify({ batch, layout, shape, reports })
  for (;;) {
    const response = await fetch(`${url}/v1/aggregate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${LEADER_TOKEN}`, 'content-type': 'application/json' },
      body,
    })
    if (response.status !== 202) return response
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** The leader's release: the helper's answer, its own share of the included reports, combined. */
async function release(batch: string, devices: readonly Device[], digests = devices.map(digestOf)) {
  const response = await aggregate(
    batch,
    devices.map((d, i) => ({ key: d.key, digest: digests[i]! })),
  )
  expect(response.status).toBe(200)
  const bytes = new Uint8Array(await response.arrayBuffer())
  const answer = decodeAggregateAnswer(bytes)
  const out = new Set(answer.excluded.map(([index]) => index))
  const included = devices.filter((_, i) => !out.has(i))
  const leader = createSparseSums(shape, negatives)
  addShareBodies(
    leader,
    included.map((d) => d.bodies[0]),
    0,
    params,
    cipher,
  )
  const combined = combineShares(leader, decodeShareSums(answer.sums, shape, negatives))
  return { bytes, answer, included, combined }
}

describe('the helper over HTTP (PROTOCOL.md P29c)', () => {
  it('sums, with the leader, exactly what the plaintext channel sums', async () => {
    const devices = Array.from({ length: 12 }, (_, i) => makeDevice(100 + i))
    for (const d of devices) expect((await postShare(d.bodies[1])).status).toBe(202)
    // A device retrying its upload: stored once.
    expect((await postShare(devices[0]!.bodies[1])).status).toBe(200)
    const { answer, combined, included } = await release('plain-1', devices)
    expect(answer.excluded).toEqual([])
    expect(included).toHaveLength(12)
    expectSameSums(combined, plainSums(devices))
  })

  it('leaves out, and so neither server sums, a key pair that is not a point function, a body it never got and a malformed one', async () => {
    const honest = Array.from({ length: 6 }, (_, i) => makeDevice(200 + i))
    const cheat = tamper(makeDevice(300))
    const unsent = makeDevice(301)
    const malformed = makeDevice(302)
    const broken = malformed.bodies[1].slice()
    broken[32] = 9 // the first key's format byte
    for (const body of [...honest.map((d) => d.bodies[1]), cheat.bodies[1], broken])
      expect((await postShare(body)).status).toBe(202)
    const devices = [...honest.slice(0, 3), cheat, unsent, malformed, ...honest.slice(3)]
    const { answer, combined } = await release('cheat-1', devices)
    expect(answer.excluded).toEqual([
      [3, 'digest'],
      [4, 'missing'],
      [5, 'malformed'],
    ])
    expectSameSums(combined, plainSums(honest))
  })

  it('answers a retried batch with the same bytes, refuses its id for other reports, and never sums a body twice', async () => {
    const first = Array.from({ length: 6 }, (_, i) => makeDevice(400 + i))
    const later = Array.from({ length: 5 }, (_, i) => makeDevice(500 + i))
    for (const d of [...first, ...later]) await postShare(d.bodies[1])
    const once = await release('retry-1', first)
    const again = await release('retry-1', first)
    expect(Buffer.from(again.bytes).equals(Buffer.from(once.bytes))).toBe(true)
    const other = await aggregate(
      'retry-1',
      later.map((d) => ({ key: d.key, digest: digestOf(d) })),
    )
    expect(other.status).toBe(409)
    expect(await other.json()).toMatchObject({ error: 'E_BATCH_MISMATCH' })
    // A leader naming first[0] in a second batch gets it left out: the helper summed it already.
    const second = await release('retry-2', [first[0]!, ...later])
    expect(second.answer.excluded).toEqual([[0, 'consumed']])
    expectSameSums(second.combined, plainSums(later))
  })

  it(`refuses a batch of fewer than ${MIN_BATCH} qualifying reports, changing nothing`, async () => {
    const devices = Array.from({ length: MIN_BATCH }, (_, i) => makeDevice(600 + i))
    for (const d of devices) await postShare(d.bodies[1])
    const before = await helper.store.counts()
    const small = await aggregate(
      'small-1',
      devices.map((d, i) => ({ key: d.key, digest: i === 0 ? '0'.repeat(64) : digestOf(d) })),
    )
    expect(small.status).toBe(409)
    // It says which report it left out, so that the leader stops asking for it.
    expect(await small.json()).toMatchObject({ error: 'E_BATCH_SMALL', excluded: [[0, 'digest']] })
    expect(await helper.store.counts()).toEqual(before)
    // The same reports, honestly digested, make a batch.
    const { combined } = await release('small-2', devices)
    expectSameSums(combined, plainSums(devices))
  })

  it('refuses a leader without the pairing token and a body that is not a helper body', async () => {
    const unauthorised = await fetch(`${url}/v1/aggregate`, { method: 'POST', body: '{}' })
    expect(unauthorised.status).toBe(401)
    const device = makeDevice(700)
    const leaderBody = await postShare(device.bodies[0])
    expect(leaderBody.status).toBe(400)
    expect(await leaderBody.json()).toMatchObject({ error: 'E_SHARE_FORMAT' })
    expect((await postShare(new Uint8Array(64 * 1024 + 1))).status).toBe(413)
    const bad = await aggregate('bad-1', [{ key: 'not hex', digest: '0'.repeat(64) }])
    expect(bad.status).toBe(400)
    expect(await bad.json()).toMatchObject({ error: 'E_REQUEST' })
  })

  it('bounds the bodies waiting: past maxWaiting it answers 503 and stores nothing', async () => {
    const small = await createHelper({
      store: { kind: 'sqlite', file: path.join(dir, 'helper-full.db') },
      leaderToken: LEADER_TOKEN,
      settings: { minBatch: 1, maxWaiting: 2 },
    })
    try {
      const post = (body: Uint8Array) =>
        small.app.request('/v1/shares', { method: 'POST', body: body as Uint8Array<ArrayBuffer> })
      const [a, b, c] = [800, 801, 802].map(makeDevice)
      expect((await post(a!.bodies[1])).status).toBe(202)
      expect((await post(b!.bodies[1])).status).toBe(202)
      const full = await post(c!.bodies[1])
      expect(full.status).toBe(503)
      expect(full.headers.get('retry-after')).toBe('3600')
      expect(await full.json()).toMatchObject({ error: 'E_HELPER_FULL' })
      expect(await small.store.counts()).toMatchObject({ waiting: 2 })
      // A retry of a body it holds is still answered as a duplicate.
      expect((await post(a!.bodies[1])).status).toBe(200)
    } finally {
      await small.close()
    }
  })
})
