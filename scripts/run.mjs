// Runs a TypeScript entry point under Node through an esbuild bundle (server/jobs/node-bundle.mjs says why),
// cached in .cache/ and rebuilt on every run (≈ 0.3 s).
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { bundleForNode } from '../server/jobs/node-bundle.mjs'

const [entry, ...rest] = process.argv.slice(2)
if (!entry) {
  console.error('usage: node scripts/run.mjs <entry.ts> [args…]')
  process.exit(2)
}
const outfile = path.resolve('.cache', path.basename(entry).replace(/\.ts$/, '') + '.mjs')
await bundleForNode(entry, outfile)
process.argv = [process.argv[0], entry, ...rest]
await import(pathToFileURL(outfile).href)
