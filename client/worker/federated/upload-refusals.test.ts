import { describe, expect, it, vi } from 'vitest'
import { PocketrecError } from '../../../shared/errors'
import { watchUploadRefusals } from './upload-refusals'

const HELPER = 'https://helper.example'

/** A fetch as explainFetchFailures leaves it: refusals of `refused` origins are E_CSP_CONNECT. */
function explained(refused: string[]): typeof fetch {
  return (async (input: URL | RequestInfo) => {
    const url = new URL(String(input))
    if (refused.includes(url.origin)) {
      const message = `the page's Content-Security-Policy refused ${url}: add ${url.origin} to connect-src`
      throw new PocketrecError('ModelUnavailableError', 'E_CSP_CONNECT', message)
    }
    if (url.hostname === 'offline.example') {
      throw new PocketrecError('ModelUnavailableError', 'E_NETWORK', `could not fetch ${url}`)
    }
    return new Response(null, { status: 202 })
  }) as typeof fetch
}

describe('upload refusals', () => {
  it("reports a refused helper upload with E_CSP_CONNECT, naming the helper's origin, once", async () => {
    const onBlocked = vi.fn()
    const watched = watchUploadRefusals(explained([HELPER]), () => HELPER, onBlocked)
    await expect(watched.fetch('https://shop.example/v1/token')).resolves.toMatchObject({
      status: 202,
    })
    expect(watched.blocked()).toBeNull()
    for (let i = 0; i < 2; i++) {
      await expect(watched.fetch(`${HELPER}/v1/shares`)).rejects.toMatchObject({
        code: 'E_CSP_CONNECT',
      })
    }
    expect(watched.blocked()).toEqual({
      code: 'E_CSP_CONNECT',
      message:
        `uploads to the federation helper (${HELPER}) are blocked; recommendations still work: ` +
        `the page's Content-Security-Policy refused ${HELPER}/v1/shares: add ${HELPER} to connect-src`,
    })
    expect(onBlocked).toHaveBeenCalledTimes(1)
  })

  it('reports a refusal of another upload origin without calling it the helper', async () => {
    const watched = watchUploadRefusals(
      explained(['https://shop.example']),
      () => HELPER,
      () => {},
    )
    await expect(watched.fetch('https://shop.example/v1/updates')).rejects.toThrow()
    expect(watched.blocked()?.message).toMatch(/^uploads are blocked; recommendations still work/)
  })

  it('leaves a network failure to the uploader: it retries later, nothing is reported', async () => {
    const onBlocked = vi.fn()
    const watched = watchUploadRefusals(explained([]), () => HELPER, onBlocked)
    await expect(watched.fetch('https://offline.example/v1/shares')).rejects.toMatchObject({
      code: 'E_NETWORK',
    })
    expect(watched.blocked()).toBeNull()
    expect(onBlocked).not.toHaveBeenCalled()
  })
})
