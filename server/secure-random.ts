// Uniform draws for the servers' noise (P20, P30c) from the operating system's CSPRNG: a noise a
// reader could predict from a seeded generator would subtract out of every total.
import { randomBytes } from 'node:crypto'

/** Uniform in [0, 1) on 48 bits. */
export const cryptoUniform = (): number => randomBytes(6).readUIntLE(0, 6) / 2 ** 48
