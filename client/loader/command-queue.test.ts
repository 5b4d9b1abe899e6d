import { afterEach, describe, expect, it, vi } from 'vitest'
import { installGlobal, isInstalled, type PocketrecGlobal } from './command-queue'

function recorder() {
  const runs: Array<[string, unknown[]]> = []
  const create = vi.fn(() => (name: string, args: unknown[]) => {
    runs.push([name, args])
    return Promise.resolve(runs.length)
  })
  return { runs, create }
}

afterEach(() => vi.restoreAllMocks())

describe('window.pocketrec', () => {
  it('replays commands queued as arrays, in order, once', () => {
    const { runs, create } = recorder()
    const host: { pocketrec?: unknown } = {
      pocketrec: [
        ['consent', true],
        ['track', 'Product Viewed', { product_id: 'sku-1' }],
        ['status'],
      ],
    }
    expect(installGlobal(host, create)).toBe(true)
    expect(runs).toEqual([
      ['consent', [true]],
      ['track', ['Product Viewed', { product_id: 'sku-1' }]],
      ['status', []],
    ])
    expect(isInstalled(host.pocketrec)).toBe(true)
  })

  it("replays the stub function's `arguments` queue", () => {
    const { runs, create } = recorder()
    // The call-style snippet: pocketrec(...) works before load and keeps `arguments` in .q.
    const stub = function (..._args: unknown[]) {
      // eslint-disable-next-line prefer-rest-params
      ;(stub.q = stub.q ?? []).push(arguments)
    } as ((...args: unknown[]) => void) & { q?: IArguments[] }
    stub('consent', true)
    stub('recommend', { scenario: 'trending' })
    installGlobal({ pocketrec: stub }, create)
    expect(runs).toEqual([
      ['consent', [true]],
      ['recommend', [{ scenario: 'trending' }]],
    ])
  })

  it("runs calls and pushes made after load, and returns the call's promise", async () => {
    const { runs, create } = recorder()
    const host: { pocketrec?: unknown } = {}
    installGlobal(host, create)
    const pocketrec = host.pocketrec as PocketrecGlobal
    await expect(pocketrec('recommend', { scenario: 'for-you' })).resolves.toBe(1)
    pocketrec.push(['track', 'Product Added', { product_id: 'a' }], ['forget'])
    expect(runs).toEqual([
      ['recommend', [{ scenario: 'for-you' }]],
      ['track', ['Product Added', { product_id: 'a' }]],
      ['forget', []],
    ])
  })

  it('ignores a second copy of the script: nothing created, nothing replayed twice', () => {
    const first = recorder()
    const host: { pocketrec?: unknown } = { pocketrec: [['consent', true]] }
    installGlobal(host, first.create)
    const installed = host.pocketrec
    const second = recorder()
    expect(installGlobal(host, second.create)).toBe(false)
    expect(second.create).not.toHaveBeenCalled()
    expect(host.pocketrec).toBe(installed)
    expect(first.runs).toHaveLength(1)
  })

  it('reports a malformed queued command and goes on with the rest', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const { runs, create } = recorder()
    installGlobal({ pocketrec: ['track', [42], ['status']] }, create)
    await new Promise((resolve) => setImmediate(resolve))
    expect(runs).toEqual([['status', []]])
    expect(warn).toHaveBeenCalledTimes(2)
    expect(String(warn.mock.calls[0]![1])).toContain("expected a command array like ['track', …]")
  })

  it('reports a failed pushed command instead of leaving an unhandled rejection', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const host: { pocketrec?: unknown } = {}
    installGlobal(host, () => () => Promise.reject(new Error('nope')))
    ;(host.pocketrec as PocketrecGlobal).push(['recommend', {}])
    await new Promise((resolve) => setImmediate(resolve))
    expect(warn).toHaveBeenCalledWith('pocketrec:', new Error('nope'))
  })
})
