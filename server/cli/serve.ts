// One server replica as its own process, configured by JSON in POCKETREC_SERVER (for benchmarks,
// multi-replica tests and deployments that run several): {port, distDir, federation: {…}} as in
// ServerOptions, with `secret` as hex. Prints `listening <port>` once it accepts connections.
import type { AddressInfo } from 'node:net'
import type { ServerOptions } from '../config'
import { startServer } from '../main'

async function main(): Promise<void> {
  const raw = process.env.POCKETREC_SERVER
  if (!raw) throw new Error('expected POCKETREC_SERVER: JSON server options')
  const options = JSON.parse(raw) as ServerOptions & { federation?: { secret?: string } }
  const federation = options.federation && {
    ...options.federation,
    secret: options.federation.secret ? Buffer.from(options.federation.secret, 'hex') : undefined,
  }
  const running = await startServer({ ...options, federation, log: (line) => console.error(line) })
  if (!running.server.listening) {
    await new Promise((resolve) => running.server.once('listening', resolve))
  }
  console.log(`listening ${(running.server.address() as AddressInfo).port}`)
  const stop = () => void running.close().then(() => process.exit(0))
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? `${error.name}: ${error.message}` : error)
  process.exit(1)
})
