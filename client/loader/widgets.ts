// The widgets bundle's entry, built to dist/pocketrec-widgets.js beside the tag
// (scripts/build-loader.ts): the markup and styles of a rendered widget (render.ts). The tag
// imports it the first time a widget has items to show (loader.ts, widget-mounts.ts), so pages
// that only track, or render before consent, never fetch it.
import { buildWidget, ensureStyles } from './render'

export { buildWidget, ensureStyles }

/** What the tag uses of this bundle. */
export interface Widgets {
  buildWidget: typeof buildWidget
  ensureStyles: typeof ensureStyles
}
