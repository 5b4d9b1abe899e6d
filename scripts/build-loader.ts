// Builds the script tag, client/loader/loader.ts, into dist/pocketrec.js: one minified IIFE for
// ES2019 browsers, with its gzip size checked against the 5 KB budget; and beside it the widgets
// bundle, client/loader/widgets.ts, into dist/pocketrec-widgets.js: an ES module the tag
// `import()`s the first time a widget has items to show, with a budget of its own.
// `npx tsx scripts/build-loader.ts`
import { build, type BuildOptions } from 'esbuild'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { precompressFile } from './precompress'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

/** The budget: Algolia's search-insights tracker is 3.8 KB gzip; ours must stay under 5 KB. */
export const LOADER_MAX_GZIP_BYTES = 5 * 1024
/** The widgets' markup and styles, fetched only by pages that show a widget. */
export const WIDGETS_MAX_GZIP_BYTES = 3 * 1024

export interface BundleBuild {
  code: string
  bytes: number
  gzipBytes: number
  /** Every source file that ended up in the bundle, relative to the project root. */
  inputs: string[]
}

export interface LoaderBuild {
  code: string
  bytes: number
  gzipBytes: number
  /** Every source file that ended up in the bundle, relative to the project root. */
  inputs: string[]
  /** Third-party license comments, shipped beside the bundle rather than in it. */
  legal: string
  /** dist/pocketrec-widgets.js. */
  widgets: BundleBuild
}

const COMMON: BuildOptions = {
  absWorkingDir: ROOT,
  bundle: true,
  platform: 'browser',
  target: 'es2019',
  // The pools-only mode and the widgets need a real `import()`; every browser with module
  // workers has it.
  supported: { 'dynamic-import': true },
  minify: true,
  write: false,
  metafile: true,
  outdir: 'dist',
  logLevel: 'silent',
}

export async function buildLoader(): Promise<LoaderBuild> {
  const result = await build({
    ...COMMON,
    entryPoints: ['client/loader/loader.ts'],
    format: 'iife',
    legalComments: 'external',
    entryNames: 'pocketrec',
  })
  const widgets = await build({
    ...COMMON,
    entryPoints: ['client/loader/widgets.ts'],
    format: 'esm',
    entryNames: 'pocketrec-widgets',
  })
  const widgetsCode = new TextDecoder().decode(widgets.outputFiles![0]!.contents)
  const file = (ext: string): string =>
    new TextDecoder().decode(result.outputFiles!.find((f) => f.path.endsWith(ext))?.contents)
  const code = file('pocketrec.js')
  return {
    code,
    bytes: Buffer.byteLength(code),
    gzipBytes: gzipSync(code, { level: 9 }).length,
    inputs: Object.keys(result.metafile!.inputs),
    legal: file('.LEGAL.txt'),
    widgets: {
      code: widgetsCode,
      bytes: Buffer.byteLength(widgetsCode),
      gzipBytes: gzipSync(widgetsCode, { level: 9 }).length,
      inputs: Object.keys(widgets.metafile!.inputs),
    },
  }
}

/** Writes the tag and the widgets bundle into `dist` (the tag imports the widgets beside it). */
export async function writeLoader(dist: string): Promise<LoaderBuild> {
  const built = await buildLoader()
  await mkdir(dist, { recursive: true })
  await writeFile(path.join(dist, 'pocketrec.js'), built.code)
  await writeFile(path.join(dist, 'pocketrec-widgets.js'), built.widgets.code)
  await precompressFile(path.join(dist, 'pocketrec.js'))
  await precompressFile(path.join(dist, 'pocketrec-widgets.js'))
  const legalFile = path.join(dist, 'pocketrec.js.LEGAL.txt')
  if (built.legal) await writeFile(legalFile, built.legal)
  else await rm(legalFile, { force: true })
  return built
}

async function main(): Promise<void> {
  const built = await writeLoader(path.join(ROOT, 'dist'))
  for (const [file, bundle, budget] of [
    ['pocketrec.js', built, LOADER_MAX_GZIP_BYTES],
    ['pocketrec-widgets.js', built.widgets, WIDGETS_MAX_GZIP_BYTES],
  ] as const) {
    const verdict = bundle.gzipBytes <= budget ? 'within' : 'OVER'
    console.log(
      `dist/${file}: ${bundle.bytes} bytes, ${bundle.gzipBytes} gzip (${verdict} the ${budget}-byte budget)`,
    )
    if (verdict === 'OVER') process.exitCode = 1
  }
}

if (process.argv[1]?.endsWith('build-loader.ts')) await main()
