// Builds the demo storefront (client/demo) and the worker bundle (client/worker/worker.ts) into
// dist/, with the trainer's artifacts (public/) and tfjs' .wasm files beside them. The script
// tag is built separately (scripts/build-loader.ts) to keep it a tiny IIFE.
import { readFileSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { defineConfig, type Plugin } from 'vite'
import { precompressDir } from './scripts/precompress'

const root = path.dirname(fileURLToPath(import.meta.url))
const wasmDir = path.join(root, 'node_modules/@tensorflow/tfjs-backend-wasm/dist')

/** Emits tfjs-backend-wasm's binaries next to the worker, where it looks for them. */
function copyWasm(): Plugin {
  return {
    name: 'pocketrec-copy-wasm',
    generateBundle() {
      for (const file of readdirSync(wasmDir).filter((f) => f.endsWith('.wasm'))) {
        this.emitFile({
          type: 'asset',
          fileName: file,
          source: readFileSync(path.join(wasmDir, file)),
        })
      }
    },
  }
}

/** Brotli and gzip siblings of every file written (scripts/precompress.ts), for the server. */
function precompress(): Plugin {
  let outDir = ''
  return {
    name: 'pocketrec-precompress',
    apply: 'build',
    configResolved(config) {
      outDir = path.resolve(config.root, config.build.outDir)
    },
    async closeBundle() {
      await precompressDir(outDir)
    },
  }
}

type ModuleInfoOf = (id: string) => { importedIds: readonly string[] } | null
let statics: Set<string> | null = null

/** Forgets the last build's module graph: a process may build more than once (tests do). */
function resetWorkerStatics(): Plugin {
  return { name: 'pocketrec-reset-worker-statics', buildStart: () => void (statics = null) }
}

/** The worker entry and every module it imports statically (computed once per build). */
function workerStatics(getModuleInfo: ModuleInfoOf): Set<string> {
  if (statics) return statics
  const seen = new Set<string>()
  const visit = (id: string) => {
    if (seen.has(id)) return
    seen.add(id)
    for (const next of getModuleInfo(id)?.importedIds ?? []) visit(next)
  }
  visit(path.join(root, 'client/worker/worker.ts'))
  return (statics = seen)
}

export default defineConfig({
  root: path.join(root, 'client/demo'),
  publicDir: path.join(root, 'public'),
  plugins: [copyWasm(), precompress(), resetWorkerStatics()],
  build: {
    outDir: path.join(root, 'dist'),
    emptyOutDir: true,
    target: 'es2022',
    // Vite's preload helper touches `document`, which a worker does not have; the worker's
    // backend chunks load on demand anyway.
    modulePreload: false,
    rollupOptions: {
      input: {
        index: path.join(root, 'client/demo/index.html'),
        operator: path.join(root, 'client/demo/operator.html'),
        'pocketrec-worker': path.join(root, 'client/worker/worker.ts'),
        // What the tag imports on the page when no worker may start: no tfjs, no WebAssembly.
        'pocketrec-pools': path.join(root, 'client/worker/pools-entry.ts'),
      },
      // The tag calls the pools module's export.
      preserveEntrySignatures: 'exports-only',
      output: {
        // The worker's entry is one file: a module worker fetches a chunk it imports only after
        // parsing its importer, a round trip each on a slow link before the first list. What
        // the entry imports statically stays in it (the pools module and the demo import it from
        // there); what it imports on demand (model-part.ts, backends) stays apart.
        manualChunks: (id, { getModuleInfo }) =>
          workerStatics(getModuleInfo).has(id) ? 'pocketrec-worker' : undefined,
        entryFileNames: (chunk) =>
          chunk.name.startsWith('pocketrec-') ? `${chunk.name}.js` : 'assets/[name]-[hash].js',
      },
    },
  },
})
