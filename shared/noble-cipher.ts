// The worker's AES for the DPF (shared/dpf.ts): noble's audited AES-128 in ECB without padding.
// WebCrypto would be the platform's own AES, but it has no raw ECB mode and every call is async;
// the DPF's PRG needs batches of independent blocks, synchronously.
import { ecb } from '@noble/ciphers/aes.js'
import { dpfAesKey, type BlockCipher } from './dpf'

export function createNobleCipher(): BlockCipher {
  const key = dpfAesKey()
  // noble's cipher objects are single-use (a guard meant for nonce-based modes), so one per call;
  // ECB expands the key on every encrypt() anyway, so this costs nothing more.
  return { encryptBlocks: (blocks) => ecb(key, { disablePadding: true }).encrypt(blocks) }
}
