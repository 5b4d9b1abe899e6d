// A live status line for long jobs: rewritten in place on a terminal, one line every
// `logEverySec` when the output is a file (so `tail -f` on a log shows steady progress).
// Also how every results file names its command and machine.
import os from 'node:os'

export interface ProgressLine {
  update(text: string): void
  done(text?: string): void
}

export function createProgressLine(
  stream: NodeJS.WriteStream = process.stderr,
  logEverySec = 30,
): ProgressLine {
  let lastLog = -Infinity
  let last = ''
  return {
    update(text) {
      last = text
      if (stream.isTTY) {
        stream.write(`\r\x1b[2K${text}`)
        return
      }
      const now = performance.now()
      if (now - lastLog >= logEverySec * 1000) {
        lastLog = now
        stream.write(`${text}\n`)
      }
    },
    done(text) {
      if (stream.isTTY) stream.write(`\r\x1b[2K${text ?? last}\n`)
      else stream.write(`${text ?? last}\n`)
      lastLog = -Infinity
    },
  }
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?'
  const s = Math.max(0, Math.round(seconds))
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(s % 60).padStart(2, '0')}s`
}

/** The npm command line that produced a result, for reports (`npm run x -- args`). */
export function describeCommand(script: string): string {
  const args = process.argv.slice(2)
  return args.length > 0 ? `npm run ${script} -- ${args.join(' ')}` : `npm run ${script}`
}

/** The machine a result was measured on, for results files: CPU × cores, memory, Node. */
export function describeMachine(): string {
  const cpus = os.cpus()
  return `${cpus[0]?.model ?? 'unknown CPU'} × ${cpus.length}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`
}
