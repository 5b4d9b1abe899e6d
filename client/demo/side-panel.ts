// The side panel: what the worker chose and why, how fast it answers, where each recommended
// item came from, and the on-device training as a loss curve. Pure rendering from state.
import type { RecommendResponse, WorkerStatus } from '../../shared/protocol'

export interface PanelState {
  status: WorkerStatus | null
  last: RecommendResponse | null
  error: string | null
}

function escapeHtml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/** An SVG polyline of the losses, scaled to the box; empty until two points exist. */
export function drawLossCurve(losses: readonly number[], width = 240, height = 80): string {
  if (losses.length < 2) {
    return `<p class="muted">No local training yet.</p>`
  }
  const min = Math.min(...losses)
  const max = Math.max(...losses)
  const span = max - min || 1
  const points = losses
    .map((loss, i) => {
      const x = (i / (losses.length - 1)) * (width - 8) + 4
      const y = height - 4 - ((loss - min) / span) * (height - 8)
      return `${x.toFixed(1)},${y.toFixed(1)}`
    })
    .join(' ')
  return (
    `<svg class="loss-curve" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" ` +
    `aria-label="training loss from ${losses[0]!.toFixed(3)} to ${losses.at(-1)!.toFixed(3)}">` +
    `<polyline fill="none" stroke="currentColor" stroke-width="2" points="${points}"/></svg>` +
    `<p class="muted">loss ${losses.at(-1)!.toFixed(3)} (min ${min.toFixed(3)}, max ${max.toFixed(3)})</p>`
  )
}

export function renderPanel(panel: HTMLElement, state: PanelState): void {
  const { status, last, error } = state
  const probes = (status?.probes ?? [])
    .map(
      (p) =>
        `<li>${p.backend}: ${p.ok ? `${p.medianMs?.toFixed(1)} ms` : `skipped — ${escapeHtml(p.reason ?? '')}`}</li>`,
    )
    .join('')
  const sources = last
    ? last.items
        .map((item) => `<li>${escapeHtml(item.name)} <span class="why">${item.source}</span></li>`)
        .join('')
    : ''
  const index = status?.recallIndex
  const recall =
    index?.state === 'ready'
      ? `index of ${index.clusters} clusters (built in ${index.buildMs?.toFixed(0)} ms)`
      : index?.state === 'exact'
        ? 'exact (every item scored)'
        : (index?.state ?? '—')
  panel.innerHTML =
    `<h2>pocketrec</h2>` +
    (error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : '') +
    `<dl>` +
    `<dt>Consent</dt><dd id="panel-consent">${status ? (status.consent ? 'given' : 'not given') : 'waiting for the script tag'}</dd>` +
    `<dt>Backend</dt><dd id="panel-backend">${status?.backend ?? '—'}</dd>` +
    `<dt>Why</dt><dd>${escapeHtml(status?.backendReason ?? '—')}<ul class="probes">${probes}</ul></dd>` +
    `<dt>Similar-item recall</dt><dd id="panel-recall">${escapeHtml(recall)}</dd>` +
    `<dt>Model version</dt><dd id="panel-version">${escapeHtml(status?.modelVersion ?? '—')}</dd>` +
    `<dt>Stored on this device</dt><dd>${status ? `${status.events} events, ${status.sessions} sessions` : '—'}</dd>` +
    `<dt>Last recommendation</dt><dd id="panel-latency">${last ? `${last.scenario}: ${last.latencyMs.toFixed(1)} ms${last.coldStart ? ' (cold start: trending)' : ''}` : '—'}</dd>` +
    `</dl>` +
    (sources ? `<h3>Where the last list came from</h3><ol class="sources">${sources}</ol>` : '') +
    `<h3>On-device training</h3><p>${status ? `${status.training.state}, ${status.training.steps} steps` : '—'}</p>` +
    drawLossCurve(status?.training.losses ?? []) +
    `<button type="button" id="forget" class="secondary">Forget me (delete on-device data)</button>`
}
