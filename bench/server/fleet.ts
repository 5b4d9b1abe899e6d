// What the server benchmark drives: real server and helper processes (replicas), the client
// ids, tokens and uploads a device would send, made the way the product makes them.
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { DEFAULT_SPARSE } from '../../server/federated/defaults'
import { issueClientId } from '../../server/federated/clients'
import { helperRoute } from '../../shared/helper-url'
import type { SparseShape } from '../../shared/sparse-update'
import { shareFactory, type ShareFactory } from '../../test/fixtures/share-uploads'
import { startServerProcess } from '../../test/fixtures/server-process'

export interface Replica {
  origin: string
  process: ChildProcess
}

export async function startReplica(options: object, pinToOneCore: boolean): Promise<Replica> {
  const { origin, child } = await startServerProcess(options, { pin: pinToOneCore })
  return { origin, process: child }
}

export async function stopReplicas(replicas: Replica[]): Promise<void> {
  await Promise.all(
    replicas.map(
      (r) =>
        new Promise<void>((resolve) => {
          r.process.once('exit', () => resolve())
          r.process.kill('SIGTERM')
        }),
    ),
  )
}

/** The pairing secret of the bench's helper (and of the replicas that never reach one). */
export const HELPER_TOKEN = randomBytes(24).toString('hex')

/** The channel's layout for the DIGINETICA model (defaultSecureChannel's). */
export function uploadsFor(shape: SparseShape): ShareFactory {
  const { maxRows, denseCoordinates, negativeRows } = DEFAULT_SPARSE.layout
  return shareFactory(
    {
      maxRows,
      embedDim: shape.embedDim,
      denseCoordinates: Math.min(denseCoordinates, shape.denseSize),
      negativeRows,
    },
    shape,
  )
}

/**
 * The one place the bench makes a device's client id: the id POST /v1/client would issue after
 * the proof of work (P21), minted with the replicas' secret. It is also a valid id for a server
 * from before issued ids (any 8–64 [A-Za-z0-9_-]), so the bench runs against older code too.
 */
export function newClientId(secret: string, label: string): string {
  return issueClientId({ site: 'demo-shop', secret: Buffer.from(secret, 'hex') }, `bench-${label}`)
}

export async function issueToken(origin: string, client: string) {
  const response = await fetch(`${origin}/v1/token`, {
    method: 'POST',
    body: JSON.stringify({ siteKey: 'demo-shop', client }),
  })
  const issued = (await response.json()) as { token: string; slice: number; version: number }
  return { status: response.status, ...issued }
}

export const upload = (origin: string, token: string, body: Uint8Array) =>
  fetch(`${origin}/v1/updates`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
    body: body as Uint8Array<ArrayBuffer>,
  })

export const uploadToHelper = (helper: string, body: Uint8Array) =>
  fetch(helperRoute(helper, 'shares'), { method: 'POST', body: body as Uint8Array<ArrayBuffer> })

/** The score a device reports with its upload (P27). */
export const SCORE = { cases: 10, hits20: 5, reciprocalRank20: 1.5 }
