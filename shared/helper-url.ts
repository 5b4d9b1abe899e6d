// Where the helper's routes are (PROTOCOL.md P29c): under the helper's URL as configured, which
// may carry a path (the `npm start` stand-in is mounted at /helper on the leader's origin), and
// which a manifest may give relative to its own URL.

/** `<helper>/v1/<route>`, `helper` resolved against `base` when it is relative. */
export function helperRoute(
  helper: string,
  route: 'shares' | 'aggregate' | 'aggregate-outcomes' | 'helper',
  base?: URL,
): URL {
  const root = new URL(helper, base)
  if (!root.pathname.endsWith('/')) root.pathname += '/'
  return new URL(`v1/${route}`, root)
}
