// Uploads the page's Content-Security-Policy refuses: a connect-src that lists the shop's server
// but not the federation helper's origin (the two-server channel, P29c) lets the release download
// and lists work while every update fails. The uploader keeps such updates for later (a refusal
// looks like no answer); this is where the refusal becomes a report, E_CSP_CONNECT.
import { PocketrecError } from '../../../shared/errors'
import type { StatusError } from '../../../shared/protocol'

export interface UploadRefusals {
  /** The round's fetch: `explained`, with its connect-src refusals recorded. */
  fetch: typeof fetch
  /** The first refusal, worded for status().error; null while none was seen. */
  blocked(): StatusError | null
}

/**
 * Watches the round's fetches. `explained` is a fetch wrapped by explainFetchFailures;
 * `helperOrigin` the current release's helper origin (null without federation), named in the
 * report when it is the one refused; `onBlocked` runs once, at the first refusal.
 */
export function watchUploadRefusals(
  explained: typeof fetch,
  helperOrigin: () => string | null,
  onBlocked: () => void,
): UploadRefusals {
  let blocked: StatusError | null = null
  return {
    fetch: async (input, init) => {
      try {
        return await explained(input, init)
      } catch (error) {
        if (!blocked && error instanceof PocketrecError && error.code === 'E_CSP_CONNECT') {
          const url = input instanceof Request ? input.url : String(input)
          const helper = helperOrigin()
          const what =
            helper !== null && new URL(url).origin === helper
              ? `uploads to the federation helper (${helper}) are blocked`
              : 'uploads are blocked'
          blocked = {
            code: 'E_CSP_CONNECT',
            message: `${what}; recommendations still work: ${error.message}`,
          }
          onBlocked()
        }
        throw error
      }
    },
    blocked: () => blocked,
  }
}
