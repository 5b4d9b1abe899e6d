// Runs a browser entry point in Debian's headless Chromium (never a downloaded browser): bundle
// it with esbuild, serve it from 127.0.0.1 on an ephemeral port, open it through playwright-core
// with a fresh profile, and wait for the JSON the page leaves in `window.__result`.
import { build } from 'esbuild'
import { existsSync } from 'node:fs'
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { chromium, type BrowserContext } from 'playwright-core'
import './gradients-protocol'

export const CHROMIUM_PATH = '/usr/bin/chromium'

/**
 * SwiftShader gives headless Chromium a (fallback) WebGPU adapter and WebGL 2 without a GPU;
 * the Vulkan/ANGLE flags also make WebGPU readback safe on it (without them it returns zeros).
 */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--use-vulkan=swiftshader',
  '--use-angle=swiftshader',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
]

/** Skip only on a developer machine without Chromium; CI must have it (.ci/run installs it). */
export function chromiumSkipReason(): string | undefined {
  if (existsSync(CHROMIUM_PATH) || process.env.CI) return undefined
  return `${CHROMIUM_PATH} is missing: apt-get install -y --no-install-recommends chromium`
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  // instantiateStreaming insists on this type.
  '.wasm': 'application/wasm',
}

/**
 * Bundles `entry` (an ES module for the page and, if it likes, for its own worker) into a fresh
 * temp folder with an index.html and tfjs-backend-wasm's .wasm files beside it.
 */
export async function bundleBrowserEntry(entry: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pocketrec-browser-'))
  await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    mainFields: ['module', 'main'],
    outfile: path.join(dir, 'entry.js'),
    sourcemap: 'linked',
    logLevel: 'warning',
  })
  const wasmPackage = createRequire(import.meta.url).resolve(
    '@tensorflow/tfjs-backend-wasm/package.json',
  )
  for (const file of [
    'tfjs-backend-wasm.wasm',
    'tfjs-backend-wasm-simd.wasm',
    'tfjs-backend-wasm-threaded-simd.wasm',
  ]) {
    await copyFile(path.join(path.dirname(wasmPackage), 'dist', file), path.join(dir, file))
  }
  await writeFile(
    path.join(dir, 'index.html'),
    '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">' +
      '<title>pocketrec browser test</title>' +
      '<script type="module" src="./entry.js"></script>\n',
  )
  return dir
}

/** A static file server for `dir` on 127.0.0.1 and a port the OS picks. */
export async function serveDirectory(dir: string): Promise<{ server: Server; origin: string }> {
  const root = path.resolve(dir)
  const server = createServer((request, response) => {
    const pathname = decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname)
    const file = path.resolve(root, '.' + (pathname === '/' ? '/index.html' : pathname))
    if (!file.startsWith(root + path.sep)) {
      response.writeHead(403).end()
      return
    }
    readFile(file).then(
      (body) => {
        response.writeHead(200, {
          'content-type': CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream',
          'cache-control': 'no-store',
        })
        response.end(body)
      },
      () => response.writeHead(404).end(),
    )
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const { port } = server.address() as AddressInfo
  return { server, origin: `http://127.0.0.1:${port}` }
}

export interface BrowserRun {
  /** Opens `pathAndQuery` on the served bundle and resolves to `window.__result`. */
  result<T>(pathAndQuery: string, timeoutMs: number): Promise<T>
  /** Console lines and page errors seen so far, for failure messages. */
  readonly log: string[]
  close(): Promise<void>
}

/** Bundles `entry`, serves it and launches Chromium; `close()` undoes all three. */
export async function openBrowser(entry: string): Promise<BrowserRun> {
  const cleanups: Array<() => Promise<unknown>> = []
  const close = async () => {
    // Last in, first out; every step runs even when an earlier one fails.
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined)
  }
  const log: string[] = []
  try {
    const dir = await bundleBrowserEntry(entry)
    cleanups.push(() => rm(dir, { recursive: true, force: true }))
    const { server, origin } = await serveDirectory(dir)
    cleanups.push(() => new Promise((resolve) => server.close(resolve)))
    const profile = await mkdtemp(path.join(tmpdir(), 'pocketrec-chromium-'))
    cleanups.push(() => rm(profile, { recursive: true, force: true }))
    const context: BrowserContext = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 30_000,
    })
    cleanups.push(() => context.close())
    return {
      log,
      close,
      async result<T>(pathAndQuery: string, timeoutMs: number): Promise<T> {
        const page = await context.newPage()
        page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`))
        page.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`))
        page.on('crash', () => log.push('[crash] the page crashed'))
        try {
          await page.goto(origin + pathAndQuery)
          await page.waitForFunction(
            () => window.__result !== undefined || window.__error !== undefined,
            undefined,
            { timeout: timeoutMs, polling: 250 },
          )
          const { result, error } = await page.evaluate(() => ({
            result: window.__result,
            error: window.__error,
          }))
          if (error !== undefined) throw new Error(`the page reported: ${error}`)
          return result as T
        } catch (error) {
          const tail = log.slice(-30).join('\n')
          throw new Error(`${error instanceof Error ? error.message : String(error)}\n${tail}`, {
            cause: error,
          })
        } finally {
          await page.close().catch(() => undefined)
        }
      },
    }
  } catch (error) {
    await close()
    throw error
  }
}
