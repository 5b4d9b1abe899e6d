// The operator page (served at /operator.html): versions, updates per minute, accepted and
// refused counts, the privacy budget spent, and accuracy per version as a chart. It reads
// GET /v1/federation (public) and, with the admin token, GET /v1/admin/versions and each A/B
// experiment's totals (GET /v1/admin/outcomes, P30c: per arm click-through, add-to-cart,
// conversion and revenue per list with intervals that carry the noise, the mSPRT's always-valid
// test, and a chart per metric over the looks); the running experiments from the public manifest.
import { readExperiment } from '../../shared/experiment-looks'
import type { ManifestExperiment } from '../../shared/protocol'

/** Version metrics that count things (updates, P28's popularity reports), never charted. */
const COUNTS = new Set(['updates', 'popularityReports'])

interface FederationStatus {
  version: number | null
  buffered: number
  accepted: number
  refused: Record<string, number>
  privacy: { releases: number; epsilon: number | null; delta: number }
}

interface VersionRow {
  version: number
  parent: number | null
  createdAt: string
  metrics: Record<string, number>
  model: string
  /** P27: the version's Recall@20 / MRR@20 on devices' own next items, before they trained. */
  devices?: { updates: number; cases: number; recall20: number | null; mrr20: number | null }
}

const counters = document.querySelector<HTMLElement>('#counters')!
const versionsEl = document.querySelector<HTMLElement>('#versions')!
const tokenInput = document.querySelector<HTMLInputElement>('#token')!
let previous: { accepted: number; at: number } | null = null

function escapeHtml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/** An SVG line of `values` against their index, its highest and lowest values labelled. */
export function drawSeries(values: ReadonlyArray<number>, width = 360, height = 120): string {
  if (values.length < 2)
    return '<p class="muted">A chart appears once two versions have this metric.</p>'
  return drawLines([values], width, height)
}

/** SVG lines, one per series (an arm), against the look; dashed for every series but the first. */
export function drawLines(
  series: ReadonlyArray<ReadonlyArray<number>>,
  width = 360,
  height = 120,
): string {
  const all = series.flat().filter((v) => Number.isFinite(v))
  const length = Math.max(...series.map((s) => s.length))
  if (all.length === 0 || length < 2) return ''
  const min = Math.min(...all)
  const max = Math.max(...all)
  const span = max - min || 1
  const lines = series.map((values, k) => {
    const points = values
      .map((v, i) =>
        Number.isFinite(v)
          ? `${(i / (length - 1)) * (width - 8) + 4},${height - 4 - ((v - min) / span) * (height - 8)}`
          : '',
      )
      .filter(Boolean)
      .join(' ')
    const dash = k === 0 ? '' : ` stroke-dasharray="${2 + 3 * k} 3"`
    return `<polyline fill="none" stroke="currentColor" stroke-width="2"${dash} points="${points}"/>`
  })
  const first = series[0]!.find(Number.isFinite) ?? NaN
  const last = [...series[0]!].reverse().find(Number.isFinite) ?? NaN
  return (
    `<svg role="img" aria-label="from ${first.toFixed(2)} to ${last.toFixed(2)}" ` +
    `viewBox="0 0 ${width} ${height}" width="${width}" height="${height}">${lines.join('')}` +
    `<text x="4" y="12" font-size="11">${max.toFixed(2)}</text>` +
    `<text x="4" y="${height - 6}" font-size="11">${min.toFixed(2)}</text></svg>`
  )
}

async function refreshCounters(): Promise<void> {
  const response = await fetch('/v1/federation')
  if (!response.ok) {
    counters.innerHTML = `<p>This server does not aggregate (HTTP ${response.status}).</p>`
    return
  }
  const status = (await response.json()) as FederationStatus
  const now = Date.now()
  const perMinute =
    previous && now > previous.at
      ? ((status.accepted - previous.accepted) * 60_000) / (now - previous.at)
      : null
  previous = { accepted: status.accepted, at: now }
  const refused = Object.entries(status.refused)
  counters.innerHTML = `
    <dl class="facts">
      <dt>Current version</dt><dd>v${status.version ?? '–'}</dd>
      <dt>Updates accepted</dt><dd>${status.accepted}</dd>
      <dt>Updates per minute</dt><dd>${perMinute === null ? '…' : perMinute.toFixed(1)}</dd>
      <dt>Waiting for the next version</dt><dd>${status.buffered}</dd>
      <dt>Refused</dt><dd>${refused.length ? refused.map(([code, n]) => `${escapeHtml(code)} ${n}`).join(', ') : 'none'}</dd>
      <dt>Privacy spent</dt><dd>${
        status.privacy.epsilon === null
          ? 'no noised release: no ε is claimed'
          : `ε = ${status.privacy.epsilon.toFixed(2)} at δ = ${status.privacy.delta} over ${status.privacy.releases} noised releases`
      }</dd>
    </dl>`
}

/** The experiments devices apply now: arms, traffic shares, what each arm changes. */
export function describeExperiments(experiments: readonly ManifestExperiment[]): string {
  if (experiments.length === 0) {
    return '<h2>Experiments</h2><p class="muted">None running (PUT /v1/admin/experiments starts one).</p>'
  }
  const rows = experiments.map((e) => {
    const total = e.arms.reduce((sum, arm) => sum + arm.share, 0)
    const arms = e.arms
      .map(
        (arm, i) =>
          `${escapeHtml(arm.name)}${i === 0 ? ' (control)' : ''}: ${((100 * arm.share) / total).toFixed(1)} %, ` +
          (arm.lists === 'pools' ? 'lists without the model' : 'the model’s lists') +
          (arm.explore ? `, ${(100 * arm.explore).toFixed(0)} % of slots exploring new items` : ''),
      )
      .join('; ')
    return `<tr><td>${escapeHtml(e.id)}</td><td>${escapeHtml(e.key)}</td><td>${arms}</td></tr>`
  })
  return (
    '<h2>Experiments</h2><table><thead><tr><th>experiment</th><th>key</th><th>arms</th></tr></thead>' +
    `<tbody>${rows.join('')}</tbody></table>` +
    '<p class="muted">Devices count each arm’s lists, clicks, adds and purchases and report them ' +
    'once a day through the two servers, as sums only; the results show with the admin token.</p>'
  )
}

/** GET /v1/admin/outcomes (P30c). */
export interface OutcomesAnswer {
  experiments: Array<{
    id: string
    digest: string
    arms: string[]
    running: boolean
    batches: Array<{ at: string; reports: number; sigma: number; totals: string }>
  }>
}

const percent = (v: number) => (Number.isFinite(v) ? `${(100 * v).toFixed(2)} %` : '–')
const interval = ([lo, hi]: [number, number]) =>
  Number.isFinite(lo) && Number.isFinite(hi) ? `[${percent(lo)}, ${percent(hi)}]` : '–'

/** int32 little-endian cells from base64. */
function totalsOf(base64: string): Int32Array {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))
  return new Int32Array(bytes.buffer)
}

/**
 * Each experiment's arms with every list rate and its interval at the latest look, each arm
 * against the control with the always-valid interval and p-value, and a chart per metric of
 * every arm's rate over the looks (one look per batch of reports).
 */
export function describeResults(answer: OutcomesAnswer): string {
  if (answer.experiments.length === 0) return ''
  return answer.experiments
    .map((e) => {
      const reports = e.batches.reduce((n, b) => n + b.reports, 0)
      const head = `<h3>${escapeHtml(e.id)}${e.running ? '' : ' (ended)'}: ${reports} device reports in ${e.batches.length} batches</h3>`
      if (e.batches.length === 0)
        return `${head}<p class="muted">No batch yet: the servers sum reports once enough devices sent them.</p>`
      const metrics = readExperiment(
        e.batches.map((b) => totalsOf(b.totals)),
        e.arms.length,
      )
      const sigma = e.batches[e.batches.length - 1]!.sigma
      const sections = metrics.map(({ metric, label, looks }) => {
        const look = looks[looks.length - 1]!
        const rows = e.arms.map((arm, a) => {
          const versus = a === 0 ? undefined : look.versusControl[a - 1]
          return (
            `<tr><td>${escapeHtml(arm)}${a === 0 ? ' (control)' : ''}</td>` +
            `<td>${metric === 'revenue' ? (look.arms[a]!.rate || 0).toFixed(2) : percent(look.arms[a]!.rate)}</td>` +
            `<td>${metric === 'revenue' ? '' : interval(look.arms[a]!.interval)}</td>` +
            `<td>${versus ? `${percent(versus.lift)} ${interval(versus.alwaysValid)}` : ''}</td>` +
            `<td>${versus ? `${versus.pValue.toFixed(3)}${versus.significant ? ' · significant' : ''}` : ''}</td></tr>`
          )
        })
        const chart = drawLines(e.arms.map((_, a) => looks.map((l) => 100 * l.arms[a]!.rate)))
        return (
          `<h4>${escapeHtml(label)}</h4><table><thead><tr><th>arm</th><th>rate</th><th>95 % interval</th>` +
          `<th>against the control: lift, always-valid interval</th><th>always-valid p</th></tr></thead>` +
          `<tbody>${rows.join('')}</tbody></table>${chart}`
        )
      })
      return (
        head +
        `<p class="muted">Intervals use each arm's spread over 32 random groups, so they carry the ` +
        `servers' noise (σ = ${sigma} clip per cell). The always-valid interval and p hold however often ` +
        `you look; stop when p ≤ 0.05. Charts: every arm's rate after each batch (control solid).</p>` +
        sections.join('')
      )
    })
    .join('')
}

async function showExperiments(): Promise<void> {
  const response = await fetch('/artifacts/manifest.json')
  if (!response.ok) return
  const manifest = (await response.json()) as { experiments?: ManifestExperiment[] }
  document.querySelector<HTMLElement>('#experiments')!.innerHTML = describeExperiments(
    manifest.experiments ?? [],
  )
}

async function showResults(token: string): Promise<void> {
  const response = await fetch('/v1/admin/outcomes', {
    headers: { authorization: `Bearer ${token}` },
  })
  if (!response.ok) return
  const results = document.querySelector<HTMLElement>('#results')!
  results.innerHTML = describeResults((await response.json()) as OutcomesAnswer)
}

async function showVersions(): Promise<void> {
  const token = tokenInput.value
  sessionStorage.setItem('pocketrec-admin', token)
  void showResults(token)
  const response = await fetch('/v1/admin/versions', {
    headers: { authorization: `Bearer ${token}` },
  })
  if (!response.ok) {
    versionsEl.innerHTML = `<p>Refused (HTTP ${response.status}): check the admin token.</p>`
    return
  }
  const { current, versions } = (await response.json()) as {
    current: number
    versions: VersionRow[]
  }
  // Chart the first accuracy-like metric any version has (counts are not accuracy).
  const metric = ['validationRecall20', 'recall20']
    .concat(versions.flatMap((v) => Object.keys(v.metrics)))
    .find((name) => !COUNTS.has(name) && versions.some((v) => name in v.metrics))
  const series = metric
    ? versions.filter((v) => metric in v.metrics).map((v) => v.metrics[metric]!)
    : []
  const reported = versions.filter((v) => v.devices?.recall20 != null)
  const deviceChart = reported.length
    ? `<h3>Recall@20 on devices' own sessions, per version (${reported.reduce((n, v) => n + v.devices!.cases, 0)} cases)</h3>${drawSeries(reported.map((v) => v.devices!.recall20!))}`
    : ''
  versionsEl.innerHTML = `
    <h2>Versions</h2>
    ${metric ? `<h3>${escapeHtml(metric)} per version</h3>${drawSeries(series)}` : '<p class="muted">No version has an evaluation yet.</p>'}
    ${deviceChart}
    <table>
      <thead><tr><th>version</th><th>parent</th><th>published</th><th>metrics</th><th>devices: Recall@20 (cases)</th><th></th></tr></thead>
      <tbody>${versions
        .slice()
        .reverse()
        .map(
          (
            v,
          ) => `<tr><td>v${v.version}${v.version === current ? ' (current)' : ''}</td><td>${v.parent ? `v${v.parent}` : '–'}</td>
            <td>${escapeHtml(v.createdAt)}</td><td>${escapeHtml(JSON.stringify(v.metrics))}</td>
            <td>${v.devices?.recall20 != null ? `${v.devices.recall20.toFixed(2)} (${v.devices.cases})` : '–'}</td>
            <td>${
              v.version < current
                ? `<button data-action="rollback" data-version="${v.version}">Roll back to this</button>`
                : v.version > current
                  ? `<button data-action="promote" data-version="${v.version}">Promote</button>`
                  : ''
            }</td></tr>`,
        )
        .join('')}</tbody>
    </table>`
}

versionsEl.addEventListener('click', (event) => {
  const { action, version } = (event.target as HTMLElement).dataset
  if (!action || !version) return
  void fetch(`/v1/admin/${action}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tokenInput.value}` },
    body: JSON.stringify({ version: Number(version) }),
  }).then(async (response) => {
    // A promotion without an evaluation is refused (P24): say why.
    if (!response.ok) alert(((await response.json()) as { message: string }).message)
    await showVersions()
  })
})
document.querySelector('#admin')!.addEventListener('submit', (event) => {
  event.preventDefault()
  void showVersions()
})
tokenInput.value = sessionStorage.getItem('pocketrec-admin') ?? ''
void refreshCounters()
void showExperiments()
setInterval(() => void refreshCounters(), 5000)
