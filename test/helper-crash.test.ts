// Issue 12's fault test for the helper (PROTOCOL.md P29c): the helper as its own process
// (server/cli/helper.ts) on an SQLite file, at DIGINETICA's size, killed with SIGKILL while it
// aggregates a batch and restarted on the same file. The leader's release (secure-release.ts)
// goes on asking; afterwards the release's sums equal the plaintext sums of every report, the
// helper consumed each body once, a second ask gets the same answer, and a later batch naming
// those bodies again gets them left out.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createNodeCipher } from '../server/federated/node-cipher'
import { sumSecureBatch, type HelperLink } from '../server/federated/secure-release'
import { openSqliteHelperStore } from '../server/helper/sqlite-helper-store'
import { createRandom } from '../shared/random'
import { placeRows } from '../shared/row-buckets'
import { secureParamsFor, splitContribution } from '../shared/secure-update'
import {
  addContribution,
  createSparseSums,
  denseWindowStart,
  toFixed,
  withoutRows,
  type SparseContribution,
  type SparseSums,
} from '../shared/sparse-update'
import { startServerProcess, type ServerProcess } from './fixtures/server-process'

const shape = { embedDim: 100, denseSize: 100_700, nItems: 43_097 }
const layout = { maxRows: 32, embedDim: 100, denseCoordinates: 8192, negativeRows: 64 }
const params = secureParamsFor(layout, shape)
const negatives = Int32Array.from({ length: layout.negativeRows }, (_, k) => 600 * k + 7)
const cipher = createNodeCipher()
const randomBytes = (n: number) => globalThis.crypto.getRandomValues(new Uint8Array(n))
const TOKEN = 'the-crash-test-pairing-secret-0123456789'

const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-helper-crash-'))
const file = path.join(dir, 'helper.db')
let helper: ServerProcess | null = null
afterAll(() => {
  helper?.child.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

const startHelper = async () =>
  (helper = await startServerProcess(
    {
      port: 0,
      store: { kind: 'sqlite', file },
      leaderToken: TOKEN,
      settings: { minBatch: 10 },
      answerWaitMs: 10,
    },
    { role: 'helper' },
  ))

async function killHelper() {
  const child = helper!.child
  helper = null
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGKILL')
  await exited
}

function device(seed: number): { contribution: SparseContribution; bodies: Uint8Array[] } {
  const random = createRandom(seed)
  const rows = new Set<number>()
  while (rows.size < 20) rows.add(Math.floor(random() * shape.nItems))
  const value = () => toFixed((random() - 0.5) * 0.1)
  const slice = Math.floor(random() * 2 ** 32)
  const drawn: SparseContribution = {
    rows: Int32Array.from(rows),
    rowValues: Int32Array.from({ length: rows.size * shape.embedDim }, value),
    denseStart: denseWindowStart(slice, layout, shape),
    dense: Int32Array.from({ length: layout.denseCoordinates }, value),
    negatives: Int32Array.from({ length: layout.negativeRows * shape.embedDim }, value),
  }
  const placed = placeRows(drawn.rows, params.buckets.params, random)
  const contribution = withoutRows(drawn, placed.dropped, shape.embedDim)
  const header = { baseVersion: 2, slice, idempotencyKey: randomBytes(16) }
  const bodies = splitContribution(
    contribution,
    placed.bucketRow,
    header,
    params,
    randomBytes,
    cipher,
  )
  return { contribution, bodies }
}

function expectSameSums(a: SparseSums, b: SparseSums) {
  const bytes = (x: Int32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength)
  for (const part of ['table', 'counts', 'dense', 'denseCounts', 'negatives'] as const)
    expect(bytes(a[part]).equals(bytes(b[part])), part).toBe(true)
  expect(a.contributions).toBe(b.contributions)
}

describe('the helper killed mid-batch (issue 12)', () => {
  it('loses no report and sums none twice', async () => {
    await startHelper()
    const devices = Array.from({ length: 24 }, (_, i) => device(i + 1))
    const post = (body: Uint8Array) =>
      fetch(`${helper!.origin}/v1/shares`, {
        method: 'POST',
        body: body as Uint8Array<ArrayBuffer>,
      })
    for (const d of devices) expect((await post(d.bodies[1]!)).status).toBe(202)
    const plain = createSparseSums(shape, negatives)
    for (const d of devices) addContribution(plain, d.contribution, shape.embedDim)

    // The leader asks; at the helper's first "running" the helper is killed, and restarted on its
    // file once the store shows that no batch was committed.
    let killed: Promise<void> | null = null
    let committedWhenKilled = -1
    const link: HelperLink = {
      url: 'http://helper.invalid',
      token: TOKEN,
      pollMs: 20,
      fetch: async (input, init) => {
        if (!helper) throw new Error('connection refused: the helper is down')
        const url = new URL(String(input))
        const response = await fetch(new URL(url.pathname, helper.origin), init)
        if (response.status === 202 && !killed)
          killed = killHelper().then(async () => {
            const store = openSqliteHelperStore(file)
            committedWhenKilled = (await store.counts()).batches
            await store.close()
            await startHelper()
          })
        return response
      },
    }
    const reports = devices.map((d, i) => ({ key: `client-${i}:k`, body: d.bodies[0]! }))
    const summed = await sumSecureBatch(
      link,
      { id: 'release-2', reports },
      params,
      negatives,
      cipher,
    )
    await killed
    expect(committedWhenKilled).toBe(0)
    expect(summed.excluded).toEqual([])
    expectSameSums(summed.sums, plain)
    const counts = await (await fetch(`${helper!.origin}/v1/helper`)).json()
    expect(counts).toEqual({ waiting: 0, consumed: 24, batches: 1 })

    // Killed again after the commit: the same batch is answered from the store, the same sums.
    await killHelper()
    await startHelper()
    const again = await sumSecureBatch(
      link,
      { id: 'release-2', reports },
      params,
      negatives,
      cipher,
    )
    expectSameSums(again.sums, plain)
    // A leader naming the same bodies in a new batch gets them left out: none is summed twice.
    const fresh = Array.from({ length: 10 }, (_, i) => device(100 + i))
    for (const d of fresh) await post(d.bodies[1]!)
    const next = await sumSecureBatch(
      link,
      {
        id: 'release-3',
        reports: [
          ...reports.slice(0, 5),
          ...fresh.map((d, i) => ({ key: `fresh-${i}:k`, body: d.bodies[0]! })),
        ],
      },
      params,
      negatives,
      cipher,
    )
    expect(next.excluded.map((e) => e.reason)).toEqual(Array(5).fill('consumed'))
    const plainFresh = createSparseSums(shape, negatives)
    for (const d of fresh) addContribution(plainFresh, d.contribution, shape.embedDim)
    expectSameSums(next.sums, plainFresh)
  }, 120_000)
})
