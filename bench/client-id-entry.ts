// Browser entry for bench/client-id.ts: the device's proof of work (shared/proof-of-work.ts, as
// the worker runs it: 30 ms slices with a turn for the event loop between them) in a dedicated
// module worker of headless Chromium. The page posts {bits, runs}; the worker solves `runs`
// random challenges and the page leaves their hash counts and times in `window.__result`.
import { solveWork } from '../shared/proof-of-work'

export interface ClientIdBrowserResult {
  userAgent: string
  runs: Array<{ hashes: number; ms: number }>
}

declare global {
  interface Window {
    __result?: unknown
    __error?: string
  }
}

async function solveRandomChallenges(bits: number, runs: number) {
  const results: Array<{ hashes: number; ms: number }> = []
  for (let i = 0; i < runs; i++) {
    const random = crypto.getRandomValues(new Uint8Array(16))
    const challenge = `${Array.from(random, (b) => b.toString(16).padStart(2, '0')).join('')}.${bits}.${Date.now()}`
    const started = performance.now()
    const { hashes } = await solveWork(challenge, bits)
    results.push({ hashes, ms: performance.now() - started })
  }
  return results
}

if (typeof window === 'undefined') {
  self.onmessage = (event: MessageEvent<{ bits: number; runs: number }>) => {
    solveRandomChallenges(event.data.bits, event.data.runs).then(
      (runs) => self.postMessage({ result: { userAgent: navigator.userAgent, runs } }),
      (error: unknown) => self.postMessage({ error: String(error) }),
    )
  }
} else {
  const query = new URLSearchParams(location.search)
  const worker = new Worker(new URL(import.meta.url), { type: 'module' })
  worker.onmessage = (event: MessageEvent<{ result?: ClientIdBrowserResult; error?: string }>) => {
    if (event.data.result) window.__result = event.data.result
    else window.__error = event.data.error ?? 'the worker sent nothing'
  }
  worker.onerror = (event) => {
    window.__error = `worker error: ${event.message}`
  }
  worker.postMessage({ bits: Number(query.get('bits')), runs: Number(query.get('runs')) })
}
