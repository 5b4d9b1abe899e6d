// Runs a TypeScript entry point under Node. tfjs-core's ESM build (the one with separately
// importable gradient configs) uses extensionless imports Node refuses, so we bundle with
// esbuild first; the bundle is cached in .cache/ and rebuilt on every run (≈ 0.3 s).
import { build } from 'esbuild'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

const [entry, ...rest] = process.argv.slice(2)
if (!entry) {
  console.error('usage: node scripts/run.mjs <entry.ts> [args…]')
  process.exit(2)
}
const outfile = path.resolve('.cache', path.basename(entry).replace(/\.ts$/, '') + '.mjs')
await build({
  entryPoints: [entry],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  mainFields: ['module', 'main'],
  outfile,
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
})
process.argv = [process.argv[0], entry, ...rest]
await import(pathToFileURL(outfile).href)
