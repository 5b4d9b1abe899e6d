// Tells a fetch the page's Content-Security-Policy refused from one the network lost. Both reject
// with the same bare TypeError ("Failed to fetch"); only a refusal is also reported, as a
// `securitypolicyviolation` event of connect-src on the global scope (the worker's own for its
// fetches, the document's, bubbling to window, for the page's), queued just after the rejection.
import { PocketrecError, type ErrorCode } from '../../shared/errors'

/** Where the browser reports CSP violations: `self` in a worker, `window` on a page. */
export interface ViolationScope {
  addEventListener(type: 'securitypolicyviolation', listener: (event: Event) => void): void
}

/** How long a failed fetch waits for its violation report; Chromium queues it in the next task. */
const REPORT_WAIT_MS = 50

/**
 * Starts listening on `scope` (before any fetch: events are not buffered) and returns a wrapper
 * whose fetches reject with E_CSP_CONNECT when a connect-src violation names the URL's origin,
 * and with E_NETWORK for any other failure (both as ModelUnavailableError); an abort stays as it is.
 */
export function explainFetchFailures(
  scope: ViolationScope | undefined,
): (fetcher: typeof fetch) => typeof fetch {
  const refused = new Set<string>()
  scope?.addEventListener('securitypolicyviolation', (event) => {
    const { effectiveDirective, blockedURI } = event as SecurityPolicyViolationEvent
    if (effectiveDirective === 'connect-src') refused.add(originOf(blockedURI))
  })
  return (fetcher) => async (input, init) => {
    try {
      return await fetcher(input, init)
    } catch (error) {
      if (!(error instanceof TypeError)) throw error
      const url = input instanceof Request ? input.url : String(input)
      await new Promise((resolve) => setTimeout(resolve, REPORT_WAIT_MS))
      const origin = originOf(url)
      const [code, message]: [ErrorCode, string] = refused.has(origin)
        ? [
            'E_CSP_CONNECT',
            `the page's Content-Security-Policy refused ${url}: add ${origin} to connect-src`,
          ]
        : ['E_NETWORK', `could not fetch ${url}: ${error.message}`]
      throw new PocketrecError('ModelUnavailableError', code, message, { cause: error })
    }
  }
}

function originOf(url: string): string {
  try {
    return new URL(url).origin
  } catch {
    return url
  }
}
