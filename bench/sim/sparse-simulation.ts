// `npm run sim -- --scenario plaintext | secure | …` (issue 12): the devices through a
// sparse channel (sparse-channel.ts), every published version scored, the ceiling beside them,
// one table printed; the results file's fields returned.
import { decodeWeights, encodeWeights, type WeightsFile } from '../../shared/weights-codec'
import { formatDuration } from '../../train/progress'
import { computeCeilings, describeGroups, type Evaluate, type VersionRow } from './ceilings'
import { runSparseChannel, type SparseChannelOptions } from './sparse-channel'

export interface SparseSimulation {
  channel: 'sparse-plaintext' | 'sparse-secure'
  global: WeightsFile
  /** One session per device, in arrival order. */
  sessions: Int32Array[]
  /** Every later session, which --ceiling draws from. */
  later: Int32Array[]
  evaluate: Evaluate
  log: (line: string) => void
  evalEvery: number
  ceiling: { spec: string | undefined; parts: boolean }
  settings: Pick<
    SparseChannelOptions,
    'layout' | 'buffer' | 'clipNorm' | 'step' | 'training' | 'noise'
  >
  /** performance.now() when the command started. */
  started: number
}

/** Runs the channel and the ceilings; returns the results file's fields. */
export async function simulateSparse(o: SparseSimulation) {
  const rows: VersionRow[] = []
  const record = async (file: WeightsFile, version: number, devices: number) => {
    const result = await o.evaluate(file)
    rows.push({ version, devices, epsilon: 0, ...result })
    o.log(
      `\nv${version} after ${devices} devices: Recall@20 ${result.recall20.toFixed(2)}, MRR@20 ${result.mrr20.toFixed(2)}; by target: ${describeGroups(result.byTarget)}`,
    )
  }
  await record(decodeWeights(encodeWeights(o.global, { dtype: 'float16' })), 1, 0)
  o.log(`${o.channel} channel: ${JSON.stringify(o.settings)}`)
  const report = await runSparseChannel({
    ...o.settings,
    global: o.global,
    sessions: o.sessions,
    evalEvery: o.evalEvery,
    evaluate: record,
    secure: o.channel === 'sparse-secure',
  })
  const ceilings = await computeCeilings(
    o.ceiling.spec,
    o.sessions.length,
    o.global,
    o.later,
    o.evaluate,
    o.ceiling.parts,
    o.log,
  )
  const groups = (byTarget: VersionRow['byTarget']) =>
    byTarget.map((g) => g.recall20.toFixed(2)).join(' / ')
  const names = (rows[0]?.byTarget ?? []).map((g) => g.name).join(' / ')
  o.log(`\n| version | devices so far | Recall@20 | MRR@20 | ${names} |`)
  o.log('| ---: | ---: | ---: | ---: | ---: |')
  for (const r of rows)
    o.log(
      `| v${r.version} | ${r.devices} | ${r.recall20.toFixed(2)} | ${r.mrr20.toFixed(2)} | ${groups(r.byTarget)} |`,
    )
  for (const c of ceilings)
    o.log(
      `| ceiling: central epoch on ${c.devices} devices' sessions | | ${c.recall20.toFixed(2)} | ${c.mrr20.toFixed(2)} | ${groups(c.byTarget)} |`,
    )
  o.log(`\n${JSON.stringify(report)}`)
  const seconds = (performance.now() - o.started) / 1000
  o.log(`done in ${formatDuration(seconds)}`)
  return {
    channel: o.channel,
    devices: o.sessions.length,
    settings: o.settings,
    report,
    versions: rows,
    ceilings,
    seconds,
  }
}
