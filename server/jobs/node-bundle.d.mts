import type { BuildOptions } from 'esbuild'

export const NODE_BUNDLE_OPTIONS: BuildOptions
export function bundleForNode(entry: string, outfile: string): Promise<void>
