// Builds the script tag, client/loader/loader.ts, into dist/pocketrec.js: one minified IIFE for
// ES2019 browsers, with its gzip size checked against the 5 KB budget. `npx tsx scripts/build-loader.ts`
import { build } from 'esbuild'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { precompressFile } from './precompress'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

/** The budget: Algolia's search-insights tracker is 3.8 KB gzip; ours must stay under 5 KB. */
export const LOADER_MAX_GZIP_BYTES = 5 * 1024

export interface LoaderBuild {
  code: string
  bytes: number
  gzipBytes: number
  /** Every source file that ended up in the bundle, relative to the project root. */
  inputs: string[]
  /** Third-party license comments, shipped beside the bundle rather than in it. */
  legal: string
}

export async function buildLoader(): Promise<LoaderBuild> {
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: ['client/loader/loader.ts'],
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2019',
    // The no-worker mode needs a real `import()`; every browser with module workers has it.
    supported: { 'dynamic-import': true },
    minify: true,
    legalComments: 'external',
    write: false,
    metafile: true,
    outdir: 'dist',
    entryNames: 'pocketrec',
    logLevel: 'silent',
  })
  const file = (ext: string): string =>
    new TextDecoder().decode(result.outputFiles.find((f) => f.path.endsWith(ext))?.contents)
  const code = file('pocketrec.js')
  return {
    code,
    bytes: Buffer.byteLength(code),
    gzipBytes: gzipSync(code, { level: 9 }).length,
    inputs: Object.keys(result.metafile.inputs),
    legal: file('.LEGAL.txt'),
  }
}

async function main(): Promise<void> {
  const built = await buildLoader()
  const dist = path.join(ROOT, 'dist')
  await mkdir(dist, { recursive: true })
  await writeFile(path.join(dist, 'pocketrec.js'), built.code)
  await precompressFile(path.join(dist, 'pocketrec.js'))
  const legalFile = path.join(dist, 'pocketrec.js.LEGAL.txt')
  if (built.legal) await writeFile(legalFile, built.legal)
  else await rm(legalFile, { force: true })
  const verdict = built.gzipBytes <= LOADER_MAX_GZIP_BYTES ? 'within' : 'OVER'
  console.log(
    `dist/pocketrec.js: ${built.bytes} bytes, ${built.gzipBytes} gzip (${verdict} the ${LOADER_MAX_GZIP_BYTES}-byte budget)`,
  )
  if (verdict === 'OVER') process.exitCode = 1
}

if (process.argv[1]?.endsWith('build-loader.ts')) await main()
