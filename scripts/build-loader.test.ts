// Builds the real script tag and checks the budget, then runs the bundle itself in a bare
// context standing in for a page: the queue is replayed and a second copy changes nothing.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { createContext, runInContext } from 'node:vm'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  buildLoader,
  LOADER_MAX_GZIP_BYTES,
  WIDGETS_MAX_GZIP_BYTES,
  type LoaderBuild,
} from './build-loader'

let built: LoaderBuild

beforeAll(async () => {
  built = await buildLoader()
})

/** A page with the tag in it: only what the loader touches before consent. */
function openPage(queue: unknown[], dataset: Record<string, string>) {
  const warnings: unknown[] = []
  const errors: unknown[] = []
  const win: Record<string, unknown> = {
    pocketrec: queue,
    document: {
      currentScript: { src: 'https://cdn.example/v1/pocketrec.js', dataset },
      querySelector: () => null,
    },
    navigator: {},
    location: { href: 'https://shop.example/p/1', origin: 'https://shop.example' },
    console: {
      warn: (...args: unknown[]) => warnings.push(args),
      error: (...args: unknown[]) => errors.push(args),
    },
    URL,
    addEventListener: () => {},
    removeEventListener: () => {},
    // Nothing runs "when idle" here: the worker is never started.
    setTimeout: () => 1,
    clearTimeout: () => {},
  }
  win.window = win
  const context = createContext(win)
  return { run: () => runInContext(built.code, context), win, warnings, errors }
}

describe('dist/pocketrec.js', () => {
  it(`stays within ${LOADER_MAX_GZIP_BYTES} bytes gzip`, () => {
    console.log(`loader: ${built.bytes} bytes minified, ${built.gzipBytes} bytes gzip`)
    expect(built.gzipBytes).toBeLessThanOrEqual(LOADER_MAX_GZIP_BYTES)
  })

  it('bundles only the loader folder and the one base error: no tfjs, idb, comlink or worker code', () => {
    expect(built.inputs.length).toBeGreaterThan(0)
    // shared/errors.ts is platform-free; its code list is tree-shaken, the class costs bytes.
    const outside = built.inputs.filter((input) => !input.startsWith('client/loader/'))
    expect(outside).toEqual(['shared/errors.ts'])
  })

  it('leaves the widgets’ markup and styles to the widgets bundle, which it imports beside itself', () => {
    expect(built.inputs).not.toContain('client/loader/render.ts')
    expect(built.inputs).not.toContain('client/loader/widgets.ts')
    expect(built.code).not.toContain('pocketrec-list')
    expect(built.code).toContain('import(new URL("pocketrec-widgets.js"')
  })

  it('replays the queued commands in order and installs the command function', async () => {
    const dataset = { site: 'shop-1', endpoint: 'https://api.example' }
    for (const [queue, expected] of [
      [
        [
          ['consent', false],
          ['consent', true],
        ],
        'granted',
      ],
      [
        [
          ['consent', true],
          ['consent', false],
        ],
        'denied',
      ],
    ] as const) {
      const { run, win, errors } = openPage([...queue], dataset)
      run()
      const pocketrec = win.pocketrec as ((...args: unknown[]) => Promise<{ consent: string }>) & {
        loaded: boolean
      }
      expect(typeof pocketrec).toBe('function')
      expect(pocketrec.loaded).toBe(true)
      expect((await pocketrec('status')).consent).toBe(expected)
      expect(errors).toEqual([])
    }
  })

  it('lets a second copy of the tag do nothing but pass its consent on', async () => {
    const dataset = { site: 'shop-1', endpoint: 'https://api.example' }
    const first = openPage([], dataset)
    first.run()
    const installed = first.win.pocketrec as (...args: unknown[]) => Promise<{ consent: string }>
    expect((await installed('status')).consent).toBe('unknown')
    ;(first.win.document as { currentScript: { dataset: object } }).currentScript.dataset = {
      ...dataset,
      consent: 'granted',
    }
    first.run()
    expect(first.win.pocketrec).toBe(installed)
    expect((await installed('status')).consent).toBe('granted')
  })

  it('says which attributes are missing from the tag', () => {
    const { run, errors } = openPage([], {})
    run()
    expect(String((errors[0] as unknown[])[0])).toContain(
      'expected data-site and data-endpoint, got',
    )
  })
})

describe('dist/pocketrec-widgets.js', () => {
  it(`stays within ${WIDGETS_MAX_GZIP_BYTES} bytes gzip`, () => {
    const { bytes, gzipBytes } = built.widgets
    console.log(`widgets: ${bytes} bytes minified, ${gzipBytes} bytes gzip`)
    expect(gzipBytes).toBeLessThanOrEqual(WIDGETS_MAX_GZIP_BYTES)
  })

  it('is an ES module of the widget renderer alone, exporting what the tag calls', async () => {
    expect([...built.widgets.inputs].sort()).toEqual([
      'client/loader/render.ts',
      'client/loader/widgets.ts',
    ])
    const dir = await mkdtemp(path.join(tmpdir(), 'pocketrec-widgets-'))
    try {
      const file = path.join(dir, 'pocketrec-widgets.mjs')
      await writeFile(file, built.widgets.code)
      const module = (await import(pathToFileURL(file).href)) as Record<string, unknown>
      expect(Object.keys(module).sort()).toEqual(['buildWidget', 'ensureStyles'])
      expect(typeof module.buildWidget).toBe('function')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
