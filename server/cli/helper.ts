// The helper of the two-server channel (PROTOCOL.md P29c) as its own process, run by an operator
// independent of the shop's. Configured by JSON in POCKETREC_HELPER:
//   {port, host?, store: {kind: 'sqlite', file} | {kind: 'postgres', connectionString, schema?},
//    leaderToken, settings?: {minBatch?, outcomeSigma?, waitingTtlMs?, maxWaiting?}}
// with the leader token also taken from POCKETREC_LEADER_TOKEN. Prints `listening <port>` once it
// accepts connections.
import { serve } from '@hono/node-server'
import type { AddressInfo } from 'node:net'
import { createHelper, type HelperOptions } from '../helper/service'

async function main(): Promise<void> {
  const raw = process.env.POCKETREC_HELPER
  if (!raw) throw new Error('expected POCKETREC_HELPER: JSON helper options')
  const options = JSON.parse(raw) as Partial<HelperOptions> & { port?: number; host?: string }
  const leaderToken = options.leaderToken ?? process.env.POCKETREC_LEADER_TOKEN
  if (!options.store) throw new Error('expected a store in POCKETREC_HELPER')
  if (!leaderToken) throw new Error('expected leaderToken or POCKETREC_LEADER_TOKEN')
  const helper = await createHelper({ ...options, store: options.store, leaderToken })
  const server = serve({
    fetch: helper.app.fetch,
    port: options.port ?? 8788,
    hostname: options.host ?? '127.0.0.1',
  })
  if (!server.listening) await new Promise((resolve) => server.once('listening', resolve))
  console.log(`listening ${(server.address() as AddressInfo).port}`)
  const stop = () =>
    void new Promise((resolve) => server.close(resolve))
      .then(() => helper.close())
      .then(() => process.exit(0))
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? `${error.name}: ${error.message}` : error)
  process.exit(1)
})
