// How TypeScript entries run under Node: tfjs-core's ESM build (the one with separately
// importable gradient configs) uses extensionless imports Node refuses, so entries are bundled
// with esbuild first. Used by the server's job thread (thread.ts) and by scripts/run.mjs.
import { build } from 'esbuild'
import { randomBytes } from 'node:crypto'
import { mkdir, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'

/** esbuild options for a Node bundle of one entry (add entryPoints and outfile). */
export const NODE_BUNDLE_OPTIONS = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  mainFields: ['module', 'main'],
  // Tools that locate their own binaries or worker files must stay real packages.
  external: [
    'esbuild',
    'vite',
    'playwright-core',
    'hono',
    '@hono/node-server',
    'lightningcss',
    'rolldown',
    // Native addon and database driver: loaded from node_modules as they are.
    'better-sqlite3',
    'pg',
  ],
  logLevel: 'warning',
  sourcemap: 'inline',
  // The bundled tfjs-backend-wasm glue is CommonJS-flavoured: give it require/__dirname.
  banner: {
    js: [
      "import { createRequire as __pcr } from 'node:module'",
      "import { fileURLToPath as __pfu } from 'node:url'",
      "import { dirname as __pdn } from 'node:path'",
      'const require = __pcr(import.meta.url)',
      'const __filename = __pfu(import.meta.url)',
      'const __dirname = __pdn(__filename)',
    ].join('\n'),
  },
}

/**
 * Bundles `entry` into `outfile`. The file is written whole and renamed into place: several
 * processes (replicas, test files) may bundle the same entry at once while others load it.
 */
export async function bundleForNode(entry, outfile) {
  const result = await build({
    ...NODE_BUNDLE_OPTIONS,
    entryPoints: [entry],
    outfile,
    write: false,
  })
  await mkdir(path.dirname(outfile), { recursive: true })
  const partial = `${outfile}.${process.pid}-${randomBytes(4).toString('hex')}.partial`
  await writeFile(partial, result.outputFiles[0].contents)
  await rename(partial, outfile)
}
