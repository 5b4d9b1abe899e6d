// npm run sim -- [--data <folder>] [--devices 2000] …: federated training on a real log, every
// part real. A model is pre-trained on the first 20 % of the training sessions (file order is
// time order); the aggregation server (server/, SQLite store) starts on 127.0.0.1 from its export;
// then devices, one per later training session, each fetch a token and (when the version moved)
// the manifest and model over HTTP, train with the worker's own code (compute-update.ts), and
// upload. Published versions are evaluated with the SR-GNN protocol (full ranking) on the first
// `--eval-cases` test cases. Prints and writes accuracy per version, bytes up and down per device,
// updates/s and the privacy budget to bench/results/sim-federated-<dataset>.json.
import { serve } from '@hono/node-server'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { computeUpdate } from '../../client/worker/federated/compute-update'
import { exportModelWeights } from '../../client/worker/model/model-weights'
import type { CandidatePools, ModelManifest } from '../../shared/protocol'
import type { UpdateLayout } from '../../shared/update-codec'
import { DEFAULT_POPULARITY } from '../../server/federated/popularity'
import type { VersionRecord } from '../../server/storage/store'
import { decodeWeights, encodeWeights, type WeightsFile } from '../../shared/weights-codec'
import { createApp } from '../../server/app'
import { epsilonAfter, DEFAULT_DELTA } from '../../server/federated/privacy'
import {
  DEFAULT_SPARSE,
  DEFAULT_DENSE_COORDINATES,
  DEFAULT_SLICE_ROWS,
  DEFAULT_UPDATE_TRAINING,
  popularityBucketsFor,
} from '../../server/federated/defaults'
import { issueClientId } from '../../server/federated/clients'
import { createFederation } from '../../server/federated/service'
import { splitWeights } from '../../shared/federation-layout'
import { openSqliteStore } from '../../server/storage/sqlite-store'
import { exportArtifacts } from '../artifacts/export-artifacts'
import { countItems, splitForFederation } from '../data/examples'
import { loadDataset } from '../data/load-dataset'
import type { SessionDataset } from '../data/types'
import type { GroupReport, TargetGroup } from '../eval/evaluate'
import { evaluateWeights } from '../gru-scorer'
import { defaultModelDir } from '../model-file'
import { setNodeBackend } from '../node-backend'
import { createProgressLine, describeCommand, describeMachine, formatDuration } from '../progress'
import { DEFAULT_TRAIN_SETTINGS, trainOnDataset } from '../train-model'
import {
  computeCeilings,
  describeGroups,
  deviceSessions,
  type PoolCoverage,
  type VersionRow,
} from '../sim/ceilings'
import { simulateSparse } from '../sim/sparse-simulation'

const OPTIONS = {
  data: { type: 'string', default: '../shared/data/diginetica-srgnn' },
  'pretrain-fraction': { type: 'string', default: '0.2' },
  'pretrain-epochs': { type: 'string', default: '3' },
  devices: { type: 'string', default: '2000' },
  /** K; default 50 on the server channel, DEFAULT_SPARSE's on the sparse ones. */
  buffer: { type: 'string' },
  // 0: the mechanics without DP noise; see server/federated/defaults.ts for why.
  noise: { type: 'string', default: '0' },
  /** C; default 1 on the server channel, DEFAULT_SPARSE's on the sparse ones. */
  clip: { type: 'string' },
  'server-lr': { type: 'string', default: '1' },
  /** P18's step: sgd (η·Δ) or adam (FedAdam, η·m̂/(√v̂ + τ)). */
  'server-optimizer': { type: 'string', default: 'sgd' },
  /** P18b: a table row's step is its covering updates' mean (`mean`) or the buffer's sum. */
  'table-aggregation': { type: 'string', default: 'mean' },
  /**
   * Which table rows releases may move: `all`, or `new`, the items no pre-training session
   * holds (what a server knows of items added to its catalogue after the model was trained).
   */
  'table-rows': { type: 'string', default: 'all' },
  /**
   * P8c, with --table-sketch: `new` sketches only the rows after the last item a pre-training
   * session holds (DIGINETICA numbers items in order of first appearance, so these are the
   * items new since), as a shop's server would for items appended to its catalogue.
   */
  'sketch-rows': { type: 'string', default: 'all' },
  /** E of P17 (an update's weight is min(examples, E)/E); default the server's. */
  'example-cap': { type: 'string' },
  /**
   * Diagnostics: table rows and dense coordinates an update carries (default: the server's,
   * 150 and 16,384). `--slice-rows all --dense all` sends every weight, far past 64 KB: what the
   * federation would learn if slicing lost nothing.
   */
  'slice-rows': { type: 'string' },
  dense: { type: 'string' },
  /** P8b: the table part is a count sketch of every row with --slice-rows buckets. */
  'table-sketch': { type: 'boolean', default: false },
  /** P28: buckets of the popularity sketch (0: none); default the server's for the layout. */
  'popularity-buckets': { type: 'string' },
  /** P28: reports before the pools follow them; default the server's (100,000). */
  'popularity-min-reports': { type: 'string' },
  /** Devices' SGD rates (item rows, other weights) and epochs; default the server's. */
  lr: { type: 'string' },
  'dense-lr': { type: 'string' },
  epochs: { type: 'string' },
  'eval-cases': { type: 'string', default: '10000' },
  'eval-every': { type: 'string', default: '5' },
  /** Which sessions score the versions: `test` or `validation` (the last 5 % of training). */
  on: { type: 'string', default: 'test' },
  /**
   * Device counts N, comma-separated (default: --devices; `none` skips): the pre-trained model
   * trained on, centrally, for one epoch on the sessions N devices hold — what the federation
   * could reach with that much data if nothing were lost in slicing, clipping or averaging.
   */
  ceiling: { type: 'string' },
  /**
   * Diagnostic: also score each ceiling with only its item table (the pre-trained rest) and with
   * only its other weights (the pre-trained table): which part of the central gain the item rows
   * carry, the part an update's 150-row slice can hardly pass on.
   */
  'ceiling-parts': { type: 'boolean', default: false },
  /** A centralised model to evaluate alongside, or `none`; default models/<dataset>/model.prw. */
  reference: { type: 'string' },
  /** Where the pre-trained model is cached; default models/<dataset>. */
  models: { type: 'string' },
  results: { type: 'string' },
  /**
   * `server`: devices upload to the real server (HTTP, SQLite) in its update format.
   * `sparse-plaintext` (issue 12, simulation only): devices send the rows they viewed and a dense
   * window in the clear to an in-process server that steps each row by its own mean
   * (train/sim/sparse-channel.ts); --server-lr is the rows' η, --dense the window.
   * `sparse-secure`: the same contributions through the two-server channel as well (DPF keys and
   * additive shares to an in-process leader and helper), published from the combined shares.
   */
  channel: { type: 'string', default: 'server' },
  /**
   * sparse-*: rows per update; public negatives per release (devices push them down and every
   * update carries their changes); the η of the dense weights and negatives. Defaults, and those
   * of --buffer, --clip, --lr, --dense-lr and --epochs on these channels: DEFAULT_SPARSE.
   */
  'max-rows': { type: 'string' },
  negatives: { type: 'string' },
  'dense-server-lr': { type: 'string' },
} as const

/**
 * fetch, retried once on a network error: while this process evaluates a version (tens of
 * seconds) the server cannot answer, and undici may then reuse a keep-alive socket the server
 * already closed. A device would retry too.
 */
async function fetch(input: string | URL, init?: RequestInit): Promise<Response> {
  try {
    return await globalThis.fetch(input, init)
  } catch (error) {
    if (!(error instanceof TypeError)) throw error
    return globalThis.fetch(input, init)
  }
}

/**
 * How many devices could teach the federation each new item: for every case of the scored split
 * whose target no pre-training session holds, the later sessions holding that item (percentiles).
 */
function describeNewTargets(scored: Int32Array[], later: Int32Array[], earlyCounts: Int32Array) {
  const holders = new Int32Array(earlyCounts.length)
  let distinct = 0
  for (const session of later) {
    const items = new Set(session)
    distinct += items.size
    for (const item of items) holders[item]! += 1
  }
  const counts: number[] = []
  for (const session of scored) {
    for (let k = 1; k < session.length; k++) {
      if (earlyCounts[session[k]!] === 0) counts.push(holders[session[k]!]!)
    }
  }
  counts.sort((a, b) => a - b)
  const at = (q: number) => counts[Math.floor(q * (counts.length - 1))] ?? 0
  return {
    cases: counts.length,
    holders: { p10: at(0.1), median: at(0.5), p90: at(0.9) },
    distinctItemsPerLaterSession: later.length ? distinct / later.length : 0,
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: OPTIONS, strict: true })
  const number = (name: keyof typeof OPTIONS) => {
    const value = Number(values[name])
    if (!Number.isFinite(value) || value < 0)
      throw new Error(`--${name}: expected a number ≥ 0, got ${values[name]}`)
    return value
  }
  const numberOr = (name: keyof typeof OPTIONS, fallback: number) =>
    values[name] === undefined ? fallback : number(name)
  await setNodeBackend('wasm')
  const started = performance.now()
  const dataset = await loadDataset(values.data!)
  // --on validation: the last 5 % of the training sessions are held out from the devices and
  // score every version instead of the test split, so that settings are chosen without it.
  const onValidation = values.on === 'validation'
  if (values.on !== 'test' && !onValidation)
    throw new Error(`--on: expected test or validation, got ${values.on}`)
  const split = splitForFederation(dataset.train, number('pretrain-fraction'), onValidation)
  const cut = split.early.length
  const early: SessionDataset = { ...dataset, train: split.early }
  const later = split.later
  const scoredSessions = onValidation ? split.validation : dataset.test
  const trainCounts = countItems(dataset.train, dataset.nItems)
  const evalCases = number('eval-cases')
  const log = (line: string) => console.log(line)

  const global = await pretrained(
    early,
    number('pretrain-epochs'),
    number('pretrain-fraction'),
    values.models ?? defaultModelDir(dataset.name),
  )
  // Items the pre-trained model never saw: a third of DIGINETICA's validation targets, whose
  // rows only the later sessions (the devices') can train.
  const earlyCounts = countItems(split.early, dataset.nItems)
  const targetGroups: TargetGroup[] = [
    { name: 'seen in pre-training', holds: (item) => earlyCounts[item]! > 0 },
    { name: 'new since', holds: (item) => earlyCounts[item] === 0 },
  ]
  const newTargets = describeNewTargets(scoredSessions, later, earlyCounts)
  log(
    `targets new since pre-training: ${newTargets.cases} cases; later sessions holding their item: ` +
      `10th percentile ${newTargets.holders.p10}, median ${newTargets.holders.median}, 90th ${newTargets.holders.p90} ` +
      `(of ${later.length}; ${newTargets.distinctItemsPerLaterSession.toFixed(1)} distinct items per session)`,
  )
  const evaluate = async (file: WeightsFile) => {
    const report = await evaluateWeights(file, scoredSessions, {
      trainCounts,
      maxCases: evalCases,
      targetGroups,
    })
    return {
      recall20: report.metrics['recall@20']! * 100,
      mrr20: report.metrics['mrr@20']! * 100,
      cases: report.cases,
      byTarget: report.groups!,
    }
  }

  const out = path.resolve(
    values.results ?? path.join('bench', 'results', `sim-federated-${dataset.name}.json`),
  )
  await mkdir(path.dirname(out), { recursive: true })
  if (values.channel === 'sparse-plaintext' || values.channel === 'sparse-secure') {
    const { shape } = splitWeights(global)
    const serverLr = number('server-lr')
    await simulateSparse({
      channel: values.channel,
      global,
      sessions: deviceSessions(later, number('devices')),
      later,
      evaluate,
      out,
      log,
      evalEvery: Math.max(1, number('eval-every')),
      ceiling: { spec: values.ceiling, parts: values['ceiling-parts']! },
      settings: {
        layout: {
          maxRows: numberOr('max-rows', DEFAULT_SPARSE.layout.maxRows),
          embedDim: shape.embedDim,
          denseCoordinates: numberOr('dense', DEFAULT_SPARSE.layout.denseCoordinates),
          negativeRows: numberOr('negatives', DEFAULT_SPARSE.layout.negativeRows),
        },
        buffer: numberOr('buffer', DEFAULT_SPARSE.bufferSize),
        clipNorm: numberOr('clip', DEFAULT_SPARSE.clipNorm),
        step: { tableRate: serverLr, denseRate: numberOr('dense-server-lr', serverLr) },
        training: {
          learningRate: numberOr('lr', DEFAULT_SPARSE.training.learningRate),
          denseLearningRate: numberOr('dense-lr', DEFAULT_SPARSE.training.denseLearningRate!),
          epochs: numberOr('epochs', DEFAULT_SPARSE.training.epochs),
        },
      },
      summary: {
        dataset: dataset.name,
        pretrain: { sessions: cut, epochs: number('pretrain-epochs') },
        evalCases,
        scoredOn: onValidation ? 'validation (last 5 % of training)' : 'test',
        newTargets,
      },
      started,
    })
    return
  }
  if (values.channel !== 'server')
    throw new Error(
      `--channel: expected server, sparse-plaintext or sparse-secure, got ${values.channel}`,
    )
  const work = await mkdtemp(path.join(os.tmpdir(), 'pocketrec-sim-'))
  let close = () => {}
  try {
    const artifactsDir = path.join(work, 'artifacts')
    await exportArtifacts({
      dataset: early,
      model: global,
      outDir: artifactsDir,
      createdAt: '2026-01-01T00:00:00.000Z',
    })
    const store = openSqliteStore(path.join(work, 'server.db'))
    const K = numberOr('buffer', 50)
    const serverOptimizer = values['server-optimizer']
    if (serverOptimizer !== 'sgd' && serverOptimizer !== 'adam')
      throw new Error(`--server-optimizer: expected sgd or adam, got ${serverOptimizer}`)
    const tableAggregation = values['table-aggregation']
    if (tableAggregation !== 'mean' && tableAggregation !== 'sum')
      throw new Error(`--table-aggregation: expected mean or sum, got ${tableAggregation}`)
    if (values['table-rows'] !== 'all' && values['table-rows'] !== 'new')
      throw new Error(`--table-rows: expected all or new, got ${values['table-rows']}`)
    const tableRows =
      values['table-rows'] === 'new'
        ? Uint8Array.from(earlyCounts, (count) => (count === 0 ? 1 : 0))
        : undefined
    const { shape } = splitWeights(global)
    const layoutArg = (name: 'slice-rows' | 'dense', all: number) =>
      values[name] === undefined ? undefined : values[name] === 'all' ? all : number(name)
    const sliceRows = layoutArg('slice-rows', shape.nItems)
    const dense = layoutArg('dense', shape.denseSize)
    const sketch = values['table-sketch']
    if (values['sketch-rows'] !== 'all' && values['sketch-rows'] !== 'new')
      throw new Error(`--sketch-rows: expected all or new, got ${values['sketch-rows']}`)
    let lastSeen = earlyCounts.length - 1
    while (lastSeen >= 0 && earlyCounts[lastSeen] === 0) lastSeen--
    const sketchFromRow = values['sketch-rows'] === 'new' ? lastSeen + 1 : undefined
    const modelLayout: UpdateLayout = {
      denseCoordinates: dense ?? Math.min(DEFAULT_DENSE_COORDINATES, shape.denseSize),
      sliceRows: sliceRows ?? Math.min(DEFAULT_SLICE_ROWS, shape.nItems),
      embedDim: shape.embedDim,
      ...(sketch && { tableSketch: true }),
      ...(sketch && sketchFromRow !== undefined && { sketchFromRow }),
    }
    const popularityBuckets =
      values['popularity-buckets'] === undefined
        ? popularityBucketsFor(modelLayout)
        : number('popularity-buckets')
    const layout = popularityBuckets > 0 ? { ...modelLayout, popularityBuckets } : modelLayout
    const federation = await createFederation({
      store,
      artifactsDir,
      settings: {
        layout,
        popularity: {
          ...DEFAULT_POPULARITY,
          ...(values['popularity-min-reports'] !== undefined && {
            minReports: number('popularity-min-reports'),
          }),
        },
        bufferSize: K,
        minBuffer: K,
        maxWaitMs: Number.MAX_SAFE_INTEGER,
        noiseMultiplier: number('noise'),
        clipNorm: numberOr('clip', 1),
        serverLearningRate: number('server-lr'),
        serverOptimizer,
        tableAggregation,
        ...(tableRows && { tableRows }),
        ...(values['example-cap'] !== undefined && { exampleCap: number('example-cap') }),
        maxStaleness: 1_000_000,
      },
      training: {
        learningRate: values.lr === undefined ? DEFAULT_UPDATE_TRAINING.learningRate : number('lr'),
        denseLearningRate:
          values['dense-lr'] === undefined
            ? DEFAULT_UPDATE_TRAINING.denseLearningRate
            : number('dense-lr'),
        epochs: values.epochs === undefined ? DEFAULT_UPDATE_TRAINING.epochs : number('epochs'),
      },
      rateLimits: { perClientPerMinute: Infinity, perSitePerMinute: Infinity },
    })
    const app = createApp({ distDir: work, federation: federation.deps })
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' })
    await new Promise((resolve) => server.once('listening', resolve))
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    close = () => server.close()
    // The row mask is 43,097 flags: the files say how many rows it lets move.
    const { tableRows: rowMask, ...shownSettings } = federation.deps.settings
    const settingsSummary = {
      ...shownSettings,
      ...(rowMask && {
        tableRows: `${rowMask.reduce((n, x) => n + x, 0)} rows (new since pre-training)`,
      }),
    }
    log(`server on ${origin}: ${JSON.stringify(settingsSummary)}`)

    // P20: the ledger's smallest σ (a release with popularity reports records σ/√2, P28).
    const spent = async () => {
      const ledger = await store.ledger()
      if (ledger.length === 0) return 0
      const sigma = Math.min(...ledger.map((e) => e.noiseMultiplier))
      return epsilonAfter(ledger.length, sigma, DEFAULT_DELTA)
    }
    // P28: how much of what the scored sessions view next the version's pools hold.
    const nextItems = scoredSessions.flatMap((s) => Array.from(s.subarray(1)))
    const trainerPools = (await store.current())!.manifest.pools.sha256
    const poolCoverage = async (record: VersionRecord): Promise<PoolCoverage> => {
      const pools = JSON.parse(
        new TextDecoder().decode((await store.artifact(record.manifest.pools.sha256))!),
      ) as CandidatePools
      const share = (pool: number[]) => {
        const held = new Set(pool)
        return (100 * nextItems.filter((item) => held.has(item)).length) / nextItems.length
      }
      const reports = Number(record.metrics.popularityReports ?? 0)
      const source = record.manifest.pools.sha256 === trainerPools ? 'trainer' : 'reports'
      return { popular: share(pools.popular), trending: share(pools.trending), reports, source }
    }
    const describePools = (p: PoolCoverage) =>
      `${p.source}'s pools hold ${p.popular.toFixed(2)} % (popular), ${p.trending.toFixed(2)} % (trending) of next items; ${p.reports} popularity reports`

    const start = await evaluate(decodeWeights(encodeWeights(global, { dtype: 'float16' })))
    const startPools = await poolCoverage((await store.current())!)
    log(
      `v1 (pre-trained on ${cut} sessions): Recall@20 ${start.recall20.toFixed(2)}, MRR@20 ${start.mrr20.toFixed(2)} on ${start.cases} ${values.on} cases; by target: ${describeGroups(start.byTarget)}; ${describePools(startPools)}`,
    )
    const rows: VersionRow[] = [
      {
        version: 1,
        devices: 0,
        recall20: start.recall20,
        mrr20: start.mrr20,
        epsilon: 0,
        byTarget: start.byTarget,
        pools: startPools,
      },
    ]

    const sessions = deviceSessions(later, number('devices'))
    const deviceCount = sessions.length
    let cached = null as { version: number; file: WeightsFile; bytes: number } | null
    let bytesUp = 0
    let bytesDown = 0
    let uploads = 0
    let clipped = 0
    let uploadMs = 0
    const evalEvery = Math.max(1, number('eval-every'))
    const progress = createProgressLine()
    const loopStarted = performance.now()
    /** Time spent evaluating versions inside the loop: the simulation's cost, not the federation's. */
    let evalMs = 0
    for (let i = 0; i < deviceCount; i++) {
      const session = sessions[i]!
      const issued = (await (
        await fetch(`${origin}/v1/token`, {
          method: 'POST',
          // An id as POST /v1/client issues it (P21), minted with the server's secret: a real
          // device did the work once; simulating it would only slow the run.
          body: JSON.stringify({
            siteKey: 'demo-shop',
            client: issueClientId(federation.deps, `sim-device-${i}`),
          }),
        })
      ).json()) as { token: string; slice: number; version: number }
      // Every device here is a new one (one session each): it downloads the manifest and the
      // current model. The simulation fetches each version's model once and counts it for all.
      const manifestResponse = await fetch(`${origin}/artifacts/manifest.json`)
      const manifestBytes = await manifestResponse.arrayBuffer()
      bytesDown += manifestBytes.byteLength
      const manifest = JSON.parse(new TextDecoder().decode(manifestBytes)) as ModelManifest
      const version = Number(manifest.version.slice(1))
      if (cached?.version !== version) {
        const bytes = new Uint8Array(
          await (await fetch(`${origin}/artifacts/${manifest.model.url}`)).arrayBuffer(),
        )
        cached = { version, file: decodeWeights(bytes), bytes: bytes.byteLength }
      }
      bytesDown += cached.bytes
      const update = await computeUpdate(cached.file, [session], {
        baseVersion: version,
        slice: issued.slice,
        layout: manifest.federation!.layout,
        clipNorm: manifest.federation!.clipNorm,
        training: {
          learningRate: manifest.federation!.learningRate,
          denseLearningRate: manifest.federation!.denseLearningRate,
          epochs: manifest.federation!.epochs,
        },
      })
      if (update) {
        const t0 = performance.now()
        const response = await fetch(`${origin}/v1/updates`, {
          method: 'POST',
          headers: { authorization: `Bearer ${issued.token}` },
          body: update.body as Uint8Array<ArrayBuffer>,
        })
        uploadMs += performance.now() - t0
        if (response.status !== 202)
          throw new Error(`upload ${i}: ${response.status} ${await response.text()}`)
        bytesUp += update.body.length
        uploads++
        if (update.clipped) clipped++
      }
      const attempt = await federation.publishNow()
      if (attempt.status === 'published') {
        const v = attempt.record.version
        const epsilon = await spent()
        if ((v - 1) % evalEvery === 0 || i === deviceCount - 1) {
          const bytes = await store.artifact(attempt.record.manifest.model.sha256)
          const evalStarted = performance.now()
          const result = await evaluate(decodeWeights(bytes!))
          const pools = await poolCoverage(attempt.record)
          evalMs += performance.now() - evalStarted
          rows.push({
            version: v,
            devices: i + 1,
            recall20: result.recall20,
            mrr20: result.mrr20,
            epsilon,
            byTarget: result.byTarget,
            pools,
          })
          progress.done(
            `v${v} after ${i + 1} devices: Recall@20 ${result.recall20.toFixed(2)}, MRR@20 ${result.mrr20.toFixed(2)}, ε ${epsilon.toFixed(2)}; Recall@20 by target: ${describeGroups(result.byTarget)}; ${describePools(pools)}`,
          )
          // A long run stopped early keeps what it measured; the last write has complete: true.
          const partial = {
            dataset: dataset.name,
            date: new Date().toISOString(),
            machine: describeMachine(),
            command: describeCommand('sim'),
            complete: false,
            devicesSoFar: i + 1,
          }
          await writeFile(out, JSON.stringify({ ...partial, versions: rows }, null, 2) + '\n')
        }
      }
      const elapsed = (performance.now() - loopStarted - evalMs) / 1000
      progress.update(
        `device ${i + 1}/${deviceCount} · ${(uploads / elapsed).toFixed(1)} updates/s · v${version} · ETA ${formatDuration(((deviceCount - i - 1) * elapsed) / (i + 1))}`,
      )
    }
    // Devices only: the evaluations below are the simulation's, not the federation's.
    const loopSeconds = (performance.now() - loopStarted - evalMs) / 1000
    // The last version, if it was not evaluated on publication.
    const current = (await store.current())!
    if (rows[rows.length - 1]!.version !== current.version) {
      const result = await evaluate(
        decodeWeights((await store.artifact(current.manifest.model.sha256))!),
      )
      const epsilon = await spent()
      rows.push({
        version: current.version,
        devices: deviceCount,
        pools: await poolCoverage(current),
        recall20: result.recall20,
        mrr20: result.mrr20,
        epsilon,
        byTarget: result.byTarget,
      })
    }
    const ceilings = await computeCeilings(
      values.ceiling,
      deviceCount,
      global,
      later,
      evaluate,
      values['ceiling-parts']!,
      log,
    )
    let reference: {
      file: string
      recall20: number
      mrr20: number
      byTarget: GroupReport[]
    } | null = null
    const referenceFile = values.reference ?? path.join(defaultModelDir(dataset.name), 'model.prw')
    if (values.reference !== 'none' && existsSync(referenceFile)) {
      const result = await evaluate(decodeWeights(await readFile(referenceFile)))
      const { recall20, mrr20, byTarget } = result
      reference = { file: referenceFile, recall20, mrr20, byTarget }
      log(`reference ${referenceFile}: by target: ${describeGroups(byTarget)}`)
    }
    // P27: each evaluated version's scores on the devices' own next items, taken before training
    // (the summary keeps the versions it evaluated, not one row per release).
    const scored = new Map((await store.deviceScores()).map((d) => [d.version, d]))
    const versions = rows.map((r) => {
      const d = scored.get(r.version)
      const onDevices = d && {
        updates: d.updates,
        cases: d.cases,
        recall20: d.cases ? (100 * d.hits20) / d.cases : null,
      }
      return { ...r, onDevices: onDevices ?? null }
    })
    const summary = {
      dataset: dataset.name,
      date: new Date().toISOString(),
      machine: describeMachine(),
      command: describeCommand('sim'),
      pretrain: { sessions: cut, epochs: number('pretrain-epochs') },
      devices: deviceCount,
      laterSessions: later.length,
      evalCases,
      scoredOn: onValidation ? 'validation (last 5 % of training)' : 'test',
      settings: settingsSummary,
      training: federation.deps.training,
      uploads,
      clipped,
      bytesUpPerDevice: uploads ? bytesUp / uploads : 0,
      bytesDownPerDevice: deviceCount ? bytesDown / deviceCount : 0,
      updatesPerSecond: uploads / loopSeconds,
      uploadMsMean: uploads ? uploadMs / uploads : 0,
      privacy: {
        releases: (await store.ledger()).length,
        epsilon: rows[rows.length - 1]!.epsilon,
        delta: DEFAULT_DELTA,
      },
      versions,
      ceilings,
      reference,
      newTargets,
      seconds: (performance.now() - started) / 1000,
    }
    log(
      '\n| version | devices so far | Recall@20 | MRR@20 | ε (δ = 1e-6) | Recall@20 on devices (cases) |',
    )
    log('| ---: | ---: | ---: | ---: | ---: | ---: |')
    for (const r of versions)
      log(
        `| v${r.version} | ${r.devices} | ${r.recall20.toFixed(2)} | ${r.mrr20.toFixed(2)} | ${r.epsilon.toFixed(2)} | ${r.onDevices?.recall20 != null ? `${r.onDevices.recall20.toFixed(2)} (${r.onDevices.cases})` : '–'} |`,
      )
    for (const c of ceilings) {
      log(
        `| ceiling: central epoch on ${c.devices} devices' sessions | | ${c.recall20.toFixed(2)} | ${c.mrr20.toFixed(2)} | |`,
      )
      if (c.parts)
        log(
          `| … its item table only | | ${c.parts.tableOnly.recall20.toFixed(2)} | ${c.parts.tableOnly.mrr20.toFixed(2)} | |\n` +
            `| … its other weights only | | ${c.parts.restOnly.recall20.toFixed(2)} | ${c.parts.restOnly.mrr20.toFixed(2)} | |`,
        )
    }
    if (reference)
      log(
        `| reference ${path.relative(process.cwd(), reference.file)} | | ${reference.recall20.toFixed(2)} | ${reference.mrr20.toFixed(2)} | |`,
      )
    log(
      `\n${uploads} updates (${clipped} clipped) from ${deviceCount} devices; ${summary.bytesUpPerDevice.toFixed(0)} B up and ` +
        `${(summary.bytesDownPerDevice / 1e6).toFixed(2)} MB down per device; ${summary.updatesPerSecond.toFixed(1)} updates/s end to end`,
    )
    await writeFile(out, JSON.stringify({ ...summary, complete: true }, null, 2) + '\n')
    log(`written ${path.relative(process.cwd(), out)} in ${formatDuration(summary.seconds)}`)
    await store.close()
  } finally {
    close()
    await rm(work, { recursive: true, force: true })
  }
}

/** The model trained on the early sessions only, cached under models/<dataset>/. */
async function pretrained(
  early: SessionDataset,
  epochs: number,
  fraction: number,
  dir: string,
): Promise<WeightsFile> {
  const file = path.join(dir, `pretrain-${fraction}-e${epochs}.prw`)
  if (existsSync(file)) {
    console.log(`pre-trained model: ${path.relative(process.cwd(), file)} (cached)`)
    return decodeWeights(await readFile(file))
  }
  const settings = { ...DEFAULT_TRAIN_SETTINGS, fit: { ...DEFAULT_TRAIN_SETTINGS.fit, epochs } }
  const { model } = await trainOnDataset(early, settings)
  const weights = await exportModelWeights(model)
  model.dispose()
  await mkdir(path.dirname(file), { recursive: true })
  await writeFile(file, encodeWeights(weights, { dtype: 'float32' }))
  return weights
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? `${error.name}: ${error.message}` : error)
  process.exit(1)
})
