// The operator page (served at /operator.html): versions, updates per minute, accepted and
// refused counts, the privacy budget spent, and accuracy per version as a chart. It reads
// GET /v1/federation (public) and, with the admin token, GET /v1/admin/versions; the running A/B
// experiments (P30) from the public manifest.
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
  const min = Math.min(...values)
  const max = Math.max(...values)
  const span = max - min || 1
  const points = values
    .map(
      (v, i) =>
        `${(i / (values.length - 1)) * (width - 8) + 4},${height - 4 - ((v - min) / span) * (height - 8)}`,
    )
    .join(' ')
  return (
    `<svg role="img" aria-label="from ${values[0]!.toFixed(2)} to ${values[values.length - 1]!.toFixed(2)}" ` +
    `viewBox="0 0 ${width} ${height}" width="${width}" height="${height}">` +
    `<polyline fill="none" stroke="currentColor" stroke-width="2" points="${points}"/>` +
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
          (arm.lists === 'pools' ? 'lists without the model' : 'the model’s lists'),
      )
      .join('; ')
    return `<tr><td>${escapeHtml(e.id)}</td><td>${escapeHtml(e.key)}</td><td>${arms}</td></tr>`
  })
  return (
    '<h2>Experiments</h2><table><thead><tr><th>experiment</th><th>key</th><th>arms</th></tr></thead>' +
    `<tbody>${rows.join('')}</tbody></table>` +
    '<p class="muted">Devices count each arm’s lists, clicks, adds and purchases on the device; ' +
    'this server does not collect their reports yet.</p>'
  )
}

async function showExperiments(): Promise<void> {
  const response = await fetch('/artifacts/manifest.json')
  if (!response.ok) return
  const manifest = (await response.json()) as { experiments?: ManifestExperiment[] }
  document.querySelector<HTMLElement>('#experiments')!.innerHTML = describeExperiments(
    manifest.experiments ?? [],
  )
}

async function showVersions(): Promise<void> {
  const token = tokenInput.value
  sessionStorage.setItem('pocketrec-admin', token)
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
