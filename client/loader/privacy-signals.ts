// Browser-level privacy signals. We read both as a standing "no" that no shop setting or consent
// banner overrides: the shopper set them for every site, ours included.

export type PrivacySignal = 'do-not-track' | 'global-privacy-control'

export interface PrivacyNavigator {
  doNotTrack?: string | null
  /** Not in TypeScript's DOM types yet: https://privacycg.github.io/gpc-spec/ */
  globalPrivacyControl?: boolean
}

/** The signal that keeps pocketrec off, or null when the shopper set neither. */
export function readPrivacySignal(nav: PrivacyNavigator): PrivacySignal | null {
  if (nav.globalPrivacyControl === true) return 'global-privacy-control'
  // '1' is the standard value; old IE and Edge used 'yes' and window.doNotTrack.
  if (nav.doNotTrack === '1' || nav.doNotTrack === 'yes') return 'do-not-track'
  return null
}
