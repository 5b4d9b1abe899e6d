// npm run bench:dpf: what the two-server DPF channel costs (shared/dpf.ts), on one core. The
// device's side is key generation with noble's AES (the worker's cipher, here run by Node's V8);
// the server's side is, with node:crypto's AES, the proof that a key pair is a point function
// (verifyDpfKey) and the full-domain evaluation of one key, over a cuckoo bucket (~2,700 rows,
// 2^12), the catalogue (43,097 rows, 2^16) and 1,000,000 rows (2^20), m = 101 (a 100-wide row
// plus its count). Medians over a few runs; keys/s are per core. Then whole updates (P29b): a
// device splitting a full 32-row contribution into its two bodies (in a dedicated worker of
// headless Chromium, and in Node), and each server checking every body at intake and adding
// them one by one and then all in one batch as at a release, at 43,097 and 1,000,000 items (48 buckets). Writes
// bench/results/dpf.json.
import { randomBytes } from 'node:crypto'
import { createNodeCipher } from '../server/federated/node-cipher'
import {
  type BlockCipher,
  type DpfParams,
  dpfKeyBytes,
  evaluateDpfAt,
  evaluateDpfInto,
  generateDpfKeys,
  verifyDpfKey,
} from '../shared/dpf'
import { createNobleCipher } from '../shared/noble-cipher'
import { runBenchmark, type BenchRun } from './harness'
import { int, text, readOptions, type Options } from './options'
import { benchUpdates, splitInChromium } from './share-costs'
import { median, round } from './stats'

const PAYLOAD_LENGTH = 101

function randomBeta(): Int32Array {
  const beta = new Int32Array(new Uint8Array(randomBytes(4 * PAYLOAD_LENGTH)).buffer)
  beta[PAYLOAD_LENGTH - 1] = 1
  return beta
}

const keyRandomBytes = (n: number) => new Uint8Array(randomBytes(n))

/** Key pairs per run, `runs` times: the median time of one pair. */
function benchKeygen(params: DpfParams, keysPerRun: number, runs: number) {
  const cipher = createNobleCipher()
  const domain = 2 ** params.domainBits
  const beta = randomBeta()
  // Warm-up: noble's AES reaches its optimised code only after some hundreds of calls.
  for (let i = 0; i < 200; i++) generateDpfKeys(params, i, beta, keyRandomBytes, cipher)
  const perRun: number[] = []
  for (let r = 0; r < runs; r++) {
    const started = performance.now()
    for (let i = 0; i < keysPerRun; i++)
      generateDpfKeys(params, (i * 7919) % domain, beta, keyRandomBytes, cipher)
    perRun.push((performance.now() - started) / keysPerRun)
  }
  const ms = median(perRun)
  return {
    cipher: 'noble AES-128 (the worker)',
    domainBits: params.domainBits,
    payloadLength: params.payloadLength,
    keyBytes: dpfKeyBytes(params),
    keysPerRun,
    medianMsPerKeyPair: round(ms, 4),
    keyPairsPerSecond: Math.round(1000 / ms),
    perRunMs: perRun.map((x) => round(x, 4)),
  }
}

/**
 * One party's evaluation of a fresh key over [0, domainSize), added into one running sum as the
 * server does, `runs` times after a warm-up; checks first that the two shares add up to β at α.
 */
function benchEvaluation(
  params: DpfParams,
  domainSize: number,
  runs: number,
  cipher: BlockCipher,
  cipherName: string,
) {
  const beta = randomBeta()
  const keyCipher = createNobleCipher()
  const alpha = domainSize - 1
  const [key0, key1] = generateDpfKeys(params, alpha, beta, keyRandomBytes, keyCipher)
  const at = [
    evaluateDpfAt(key0, 0, params, alpha, cipher),
    evaluateDpfAt(key1, 1, params, alpha, cipher),
  ]
  if (!at[0]!.every((v, k) => ((v + at[1]![k]!) | 0) === beta[k]))
    throw new Error('the two shares do not add up to beta: the benchmark would time a wrong result')

  const sums = new Int32Array(domainSize * params.payloadLength)
  evaluateDpfInto(key0, 0, params, domainSize, cipher, sums) // warm-up
  const perRun: number[] = []
  for (let r = 0; r < runs; r++) {
    const [key] = generateDpfKeys(params, r % domainSize, beta, keyRandomBytes, keyCipher)
    const started = performance.now()
    evaluateDpfInto(key, 0, params, domainSize, cipher, sums)
    perRun.push(performance.now() - started)
  }
  const ms = median(perRun)
  return {
    cipher: cipherName,
    domainBits: params.domainBits,
    domainSize,
    payloadLength: params.payloadLength,
    runs,
    medianMsPerKey: round(ms, 2),
    keysPerSecondPerCore: round(1000 / ms, 2),
    // Bytes through AES per key: both children of every kept node, and ceil(m/4) blocks a leaf.
    aesMiBPerKey: round((16 * aesBlocks(params.domainBits, domainSize)) / 2 ** 20, 1),
    perRunMs: perRun.map((x) => round(x, 1)),
  }
}

/**
 * One party's proof for a fresh key over [0, domainSize), `runs` times after a warm-up; checks
 * first that an honest pair's proofs agree and that a pair made non-point (the last level's
 * control-bit corrections flipped in both keys) gives different ones.
 */
function benchVerification(
  params: DpfParams,
  domainSize: number,
  runs: number,
  cipher: BlockCipher,
) {
  const beta = randomBeta()
  const keyCipher = createNobleCipher()
  const keys = generateDpfKeys(params, domainSize - 2, beta, keyRandomBytes, keyCipher)
  const proofs = (pair: Uint8Array[]) =>
    pair.map((key, party) =>
      Buffer.from(verifyDpfKey(key, party as 0 | 1, params, domainSize, cipher)),
    )
  const honest = proofs(keys)
  if (!honest[0]!.equals(honest[1]!))
    throw new Error('an honest pair does not verify: the benchmark would time a wrong result')
  const lastControls = 24 + 17 * (params.domainBits - 1) + 16
  const tampered = proofs(
    keys.map((key) => {
      const copy = key.slice()
      copy[lastControls]! ^= 3
      return copy
    }),
  )
  if (tampered[0]!.equals(tampered[1]!))
    throw new Error('a two-point pair verifies: the benchmark would time a wrong result')

  const perRun: number[] = []
  for (let r = 0; r < runs; r++) {
    const [key] = generateDpfKeys(params, r % domainSize, beta, keyRandomBytes, keyCipher)
    const started = performance.now()
    verifyDpfKey(key, 0, params, domainSize, cipher)
    perRun.push(performance.now() - started)
  }
  const ms = median(perRun)
  return {
    cipher: 'node:crypto AES-128-ECB (the server)',
    domainBits: params.domainBits,
    domainSize,
    runs,
    medianMsPerKey: round(ms, 2),
    keysPerSecondPerCore: round(1000 / ms, 1),
    // The tree, then H and H' (two blocks a leaf each).
    aesMiBPerKey: round(
      (16 * (treeBlocks(params.domainBits, domainSize) + 4 * domainSize)) / 2 ** 20,
      1,
    ),
    perRunMs: perRun.map((x) => round(x, 2)),
  }
}

function aesBlocks(domainBits: number, domainSize: number): number {
  return treeBlocks(domainBits, domainSize) + domainSize * Math.ceil(PAYLOAD_LENGTH / 4)
}

/** Blocks of the tree's expansion over [0, domainSize): both children of every kept node. */
function treeBlocks(domainBits: number, domainSize: number): number {
  let blocks = 0
  for (let level = 1; level <= domainBits; level++)
    blocks += Math.ceil(domainSize / 2 ** (domainBits - level))
  return blocks
}

export const DPF_FLAGS = {
  runs: int(7),
  largeRuns: int(3),
  keys: int(1000),
  results: text('bench/results/dpf.json'),
}

export async function benchDpf(options: Options<typeof DPF_FLAGS>, run: BenchRun): Promise<void> {
  const { runs, largeRuns, keys: keysPerRun } = options
  const bucket = { domainBits: 12, payloadLength: PAYLOAD_LENGTH }
  const catalogue = { domainBits: 16, payloadLength: PAYLOAD_LENGTH }
  const million = { domainBits: 20, payloadLength: PAYLOAD_LENGTH }
  // About the largest of DIGINETICA's 48 buckets (2,500 to 2,750 rows, 2,636 on average). A key
  // there takes milliseconds, so five times the runs: noise on shared cores is ms too.
  const bucketRows = 2_700
  const bucketRuns = 5 * runs

  const keygen = [benchKeygen(catalogue, keysPerRun, runs), benchKeygen(million, keysPerRun, runs)]
  for (const k of keygen)
    console.log(
      `keygen, 2^${k.domainBits}, m = ${k.payloadLength}, ${k.cipher}: ${k.medianMsPerKeyPair} ms a pair, ` +
        `${k.keyPairsPerSecond.toLocaleString('en')} pairs/s on one core; ${k.keyBytes} bytes a key`,
    )

  const node = createNodeCipher()
  const evaluation = [
    benchEvaluation(bucket, bucketRows, bucketRuns, node, 'node:crypto AES-128-ECB (the server)'),
    benchEvaluation(catalogue, 43_097, runs, node, 'node:crypto AES-128-ECB (the server)'),
    benchEvaluation(million, 1_000_000, largeRuns, node, 'node:crypto AES-128-ECB (the server)'),
    // For scale: the same evaluation in pure JS, as a server without node:crypto would run it.
    benchEvaluation(catalogue, 43_097, largeRuns, createNobleCipher(), 'noble AES-128 (pure JS)'),
  ]
  for (const e of evaluation)
    console.log(
      `evaluation, ${e.domainSize.toLocaleString('en')} rows (2^${e.domainBits}), ${e.cipher}: ` +
        `${e.medianMsPerKey} ms a key over ${e.runs} runs, ${e.keysPerSecondPerCore} keys/s on one core ` +
        `(${e.aesMiBPerKey} MiB through AES)`,
    )

  // The warm-up is the correctness check's two proofs of each key pair.
  const verification = [
    benchVerification(bucket, bucketRows, bucketRuns, node),
    benchVerification(catalogue, 43_097, runs, node),
    benchVerification(million, 1_000_000, largeRuns, node),
  ]
  for (const v of verification) {
    const e = evaluation.find((e) => e.domainSize === v.domainSize && e.cipher === v.cipher)!
    console.log(
      `verification, ${v.domainSize.toLocaleString('en')} rows (2^${v.domainBits}), ${v.cipher}: ` +
        `${v.medianMsPerKey} ms a key over ${v.runs} runs (evaluation: ${e.medianMsPerKey} ms), ` +
        `${v.keysPerSecondPerCore} keys/s on one core (${v.aesMiBPerKey} MiB through AES)`,
    )
  }

  const updates = [benchUpdates(43_097, 5 * runs), benchUpdates(1_000_000, largeRuns)]
  for (const u of updates)
    console.log(
      `update, ${u.nItems.toLocaleString('en')} items (${u.buckets} buckets of 2^${u.domainBits}): ` +
        `bodies ${u.bodyBytes.leader} / ${u.bodyBytes.helper} bytes; device split ${u.deviceNodeNoble.medianMs} ms (Node); ` +
        `check at intake: leader ${u.leader.checkMedianMs} ms (p99 ${u.leader.checkP99Ms}), helper ${u.helper.checkMedianMs} ms (p99 ${u.helper.checkP99Ms}); ` +
        `add one by one: ${u.leader.addMsPerUpdateOneByOne} / ${u.helper.addMsPerUpdateOneByOne} ms an update, ` +
        `in a batch of ${u.runs}: ${u.leader.addMsPerUpdate} / ${u.helper.addMsPerUpdate} ms; ` +
        `${u.leader.updatesPerSecondPerCore} / ${u.helper.updatesPerSecondPerCore} updates/s per core`,
    )
  const chromium = await splitInChromium(43_097, 5 * runs)
  console.log(
    'skipped' in chromium
      ? `Chromium skipped: ${chromium.skipped}`
      : `device split in ${chromium.where}, dedicated worker: ${chromium.medianMs} ms an update (${chromium.runs} runs)`,
  )

  await run.write(options.results, { keygen, evaluation, verification, updates, chromium })
}

runBenchmark({
  script: 'bench:dpf',
  parse: (argv) => readOptions(DPF_FLAGS, argv),
  run: benchDpf,
})
