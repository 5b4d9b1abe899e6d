// Precompressed siblings for everything a browser downloads: `<file>.br` (brotli) and
// `<file>.gz` (gzip), written once at build so that no request pays for compressing. The server
// (server/app.ts, serveStatic with `precompressed`) sends the best sibling the client accepts,
// with Content-Encoding and Vary: Accept-Encoding; a CDN can serve the same siblings.
import { readFile, readdir, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { brotliCompressSync, constants, gzipSync } from 'node:zlib'

/** What a browser fetches from dist/: code, styles, pages, wasm, JSON, source maps, images. */
const COMPRESSIBLE = /\.(js|mjs|css|html|wasm|json|map|svg|txt)$/

export interface Compressed {
  bytes: number
  gzipBytes: number
  brotliBytes: number
}

/** Brotli at its best setting: files are compressed once, at build, and sent many times. */
export function brotli(bytes: Uint8Array): Uint8Array {
  return brotliCompressSync(bytes, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 11,
      [constants.BROTLI_PARAM_LGWIN]: 24,
      [constants.BROTLI_PARAM_SIZE_HINT]: bytes.byteLength,
    },
  })
}

/** Writes `file.br` and `file.gz` beside `file`. */
export async function precompressFile(file: string): Promise<Compressed> {
  const bytes = await readFile(file)
  const gz = gzipSync(bytes, { level: 9 })
  const br = brotli(bytes)
  await writeFile(`${file}.gz`, gz)
  await writeFile(`${file}.br`, br)
  return { bytes: bytes.byteLength, gzipBytes: gz.byteLength, brotliBytes: br.byteLength }
}

/**
 * Every compressible file under `dir` (recursively) gets its siblings; a file that already has
 * both (the exporter writes its artifacts' own) is left alone. Returns sizes by relative path.
 */
export async function precompressDir(dir: string): Promise<Map<string, Compressed>> {
  const sizes = new Map<string, Compressed>()
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !COMPRESSIBLE.test(entry.name)) continue
    const file = path.join(entry.parentPath, entry.name)
    const [gz, br] = await Promise.all(
      [`${file}.gz`, `${file}.br`].map((f) => stat(f).catch(() => undefined)),
    )
    if (gz && br) continue
    sizes.set(path.relative(dir, file), await precompressFile(file))
  }
  return sizes
}
