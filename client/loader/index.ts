// The loader as a library, for the demo and for shops that bundle it instead of using the tag.
// loader.ts is the tag's entry; it has side effects and is not exported here.

export type { CommandRunner, PocketrecGlobal } from './command-queue'
export type { ConsentState, LoaderStatus } from './consent-gate'
export type { Loader, LoaderDeps, LoaderOptions, LoaderWindow } from './create-loader'
export type { LoaderErrorCode } from './errors'
export type { PrivacyNavigator, PrivacySignal } from './privacy-signals'
export type {
  ItemTemplate,
  SelectDetail,
  TemplateHelpers,
  TemplateItem,
  WidgetOptions,
} from './render'
export type { Widgets } from './widgets'
export type { WorkerConnection, WorkerLike, WorkerMode, WorkerStartEnv } from './start-worker'
export type { RenderOptions, RenderResult } from './widget-mounts'

export { installGlobal, isInstalled } from './command-queue'
export { createLoader } from './create-loader'
export { ConsentRequiredError, InvalidRequestError, WorkerStartError } from './errors'
export { readPrivacySignal } from './privacy-signals'
export {
  buildWidget,
  DEFAULT_TITLES,
  ensureStyles,
  escapeHtml,
  formatPrice,
  html,
  Markup,
  WIDGET_CSS,
} from './render'
export { defineRecsElement } from './recs-element'
export { createBrowserWorkerEnv, startWorker } from './start-worker'
