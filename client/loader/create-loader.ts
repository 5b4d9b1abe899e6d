// The loader's entry wiring, with the platform injected so it runs in tests without a browser: the
// worker supervisor (worker-supervisor.ts) behind the consent gate (consent-gate.ts, which keeps
// the widget mounts), and `run`, which calls the gate's commands by name.
import type { WorkerConfig } from '../worker/api'
import { createConsentGate, type ConsentGate, type ConsentWindow } from './consent-gate'
import { InvalidRequestError } from './errors'
import type { PrivacyNavigator } from './privacy-signals'
import type { WorkerConnection } from './start-worker'
import type { Widgets } from './widgets'
import { createWorkerSupervisor, type SupervisorWindow } from './worker-supervisor'

/** The commands `pocketrec(name, ...args)` runs: the loader's methods of those names. */
const COMMANDS = ['consent', 'track', 'recommend', 'render', 'forget', 'status'] as const
type Command = (typeof COMMANDS)[number]

export interface LoaderOptions extends Omit<WorkerConfig, 'backend'> {
  /** From `data-backend`, unchecked (the worker checks it): wasm, cpu, webgl or webgpu skips the probe. */
  backend?: string
  /** From `data-consent`: a consent manager that knows the answer when the page is rendered. */
  consent?: 'granted' | 'denied'
  /** Product page URL with `{id}`, for widget links (`data-product-url`). */
  productUrl?: string
  /** ISO 4217 code for widget prices (`data-currency`). */
  currency?: string
  /** `false` (`data-styles="none"`) leaves all widget styling to the shop. */
  styles?: boolean
}

/** The part of `window` the loader touches. */
export interface LoaderWindow extends SupervisorWindow, ConsentWindow {}

export interface LoaderDeps {
  options: LoaderOptions
  window: LoaderWindow
  navigator: PrivacyNavigator
  /** Starts the worker and answers once its `init` did (start-worker.ts). */
  startWorker(config: WorkerConfig): Promise<WorkerConnection>
  /** The widgets bundle (widgets.ts); asked for the first time a widget has items to show. */
  loadWidgets(): Promise<Widgets>
}

export interface Loader extends ConsentGate {
  /** Runs one command as `pocketrec(name, ...args)` does. */
  run(name: string, args: unknown[]): Promise<unknown>
}

/**
 * Creates the command handler behind `window.pocketrec`.
 * @example
 * const loader = createLoader({ options, window, navigator, startWorker: (c) => startWorker(c, env) })
 * await loader.consent(true)
 * const { items } = await loader.recommend({ scenario: 'for-you', limit: 8 })
 */
export function createLoader(deps: LoaderDeps): Loader {
  const { options, window: win } = deps
  const { site, endpoint, backend } = options
  // The worker checks `backend` (a typo is ignored there with a warning): the tag stays small.
  const config: WorkerConfig = backend ? { site, endpoint, backend } : { site, endpoint }
  const supervisor = createWorkerSupervisor(win, config, deps.startWorker)
  const gate = createConsentGate(
    win,
    deps.navigator,
    { ...options, loadWidgets: deps.loadWidgets },
    supervisor,
  )
  return {
    run: (name, args) => {
      try {
        // Strict: a typo must never read as a withdrawal, which deletes the shopper's data.
        if (name === 'consent' && typeof args[0] !== 'boolean') {
          throw new InvalidRequestError(
            `expected consent to be true or false, got ${String(args[0])}`,
          )
        }
        if (!(COMMANDS as readonly string[]).includes(name)) {
          throw new InvalidRequestError(
            `expected a command (${COMMANDS.join(', ')}), got ${String(name)}`,
          )
        }
        // Each method takes what its command takes and ignores the rest.
        return (gate[name as Command] as (...a: unknown[]) => Promise<unknown>)(...args)
      } catch (error) {
        return Promise.reject(error)
      }
    },
    ...gate,
  }
}
