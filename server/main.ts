// The only runtime file: binds a port on the loopback interface and serves createApp.
import { serve } from '@hono/node-server'
import path from 'node:path'
import { createApp } from './app'

export function startServer(options: { port: number; distDir: string; host?: string }) {
  const app = createApp({ distDir: path.relative(process.cwd(), options.distDir) || '.' })
  return serve({ fetch: app.fetch, port: options.port, hostname: options.host ?? '127.0.0.1' })
}
