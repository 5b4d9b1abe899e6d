// The server's AES for the DPF (shared/dpf.ts): node:crypto's AES-128-ECB, which uses the CPU's
// AES instructions. One Cipher object serves every call: ECB keeps no state between whole blocks.
import { createCipheriv } from 'node:crypto'
import { dpfAesKey, type BlockCipher } from '../../shared/dpf'

export function createNodeCipher(): BlockCipher {
  const aes = createCipheriv('aes-128-ecb', dpfAesKey(), null).setAutoPadding(false)
  return {
    encryptBlocks(blocks) {
      // A partial block would stay buffered inside the Cipher and shift every later call's output.
      if (blocks.byteLength % 16 !== 0)
        throw new RangeError(`expected whole 16-byte blocks, got ${blocks.byteLength} bytes`)
      return aes.update(blocks)
    },
  }
}
