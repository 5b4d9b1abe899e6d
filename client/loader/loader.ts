// The script tag's entry, built to dist/pocketrec.js (scripts/build-loader.ts): reads the tag's
// data-* attributes, installs window.pocketrec and replays the queue. README.md has the shop's side.
import { installGlobal, isInstalled, type CommandRunner } from './command-queue'
import { createLoader } from './create-loader'
import { defineRecsElement } from './recs-element'
import { createBrowserWorkerEnv, startWorker } from './start-worker'
import type { Widgets } from './widgets'

const host = window as unknown as { pocketrec?: unknown }
// currentScript is only set while this file first runs, and never for module scripts. Plain `||`
// and `&&`, not `??` and `?.`: lowered to ES2019 those cost the tag bytes.
const script = (document.currentScript ||
  document.querySelector('script[data-site]')) as HTMLScriptElement | null
const data = (script && script.dataset) || {}
const consent = data.consent === 'granted' || data.consent === 'denied' ? data.consent : undefined

if (!installGlobal(host, boot) && isInstalled(host.pocketrec) && consent) {
  // A second copy of the tag: the first one runs everything, this one only passes its signal on.
  host.pocketrec('consent', consent === 'granted').catch(() => {})
}

function boot(): CommandRunner {
  const { site = '', endpoint = '' } = data
  if (!site || !endpoint) {
    console.error(
      `pocketrec: expected data-site and data-endpoint, got "${site}" and "${endpoint}"`,
    )
  }
  // The worker sits next to this file unless the shop hosts it on its own origin (data-worker).
  const workerUrl = data.worker
    ? new URL(data.worker, location.href).href
    : new URL('pocketrec-worker.js', (script && script.src) || location.href).href
  const env = createBrowserWorkerEnv(workerUrl, location.origin)
  const loader = createLoader({
    options: {
      site,
      endpoint,
      backend: data.backend,
      consent,
      productUrl: data.productUrl,
      currency: data.currency,
      styles: data.styles !== 'none',
    },
    window,
    navigator,
    startWorker: (config) => startWorker(config, env),
    // The widgets' markup is a second file beside the tag, fetched once a widget has items to
    // show (the browser keeps the module: later renders do not fetch it again).
    loadWidgets: () =>
      import(
        new URL('pocketrec-widgets.js', (script && script.src) || location.href).href
      ) as Promise<Widgets>,
  })
  defineRecsElement(window, loader)
  return loader.run
}
