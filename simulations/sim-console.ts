// What `form-anycast sim` shows on a terminal: a progress bar on stderr, redrawn in place and only
// when stderr is a TTY (a pipe or a CI log gets none of it), and the summary table at the end.
import { CHECK_KINDS, checkNamesOf, type RunResult } from './runner.ts'
import { FAILURE_EVENTS } from './scenario.ts'

/** The part of a stream the progress bar uses (process.stderr fits). */
export interface ProgressStream {
  isTTY?: boolean
  columns?: number
  write(text: string): unknown
}

export interface ProgressBar {
  /** A run's simulated clock reached simMs. */
  update(seed: number, simMs: number): void
  /** Erase the bar (before a log line); the next update draws it again. */
  clear(): void
  /** Erase it for good. */
  finish(): void
}

/** Redraws at most this often (wall ms): a terminal is not a log. */
const REDRAW_MS = 100
const BAR_WIDTH = 30
const ERASE_LINE = '\r\x1b[2K'

/** One frame of the bar: `[█████░░░░░] 50% text`, cut to the terminal's width. */
export function renderProgress (fraction: number, text: string, columns = 80): string {
  const share = Math.min(1, Math.max(0, fraction))
  const filled = Math.round(share * BAR_WIDTH)
  const line = `[${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)}] ${String(Math.floor(share * 100)).padStart(3)}% ${text}`
  return line.length < columns ? line : line.slice(0, Math.max(0, columns - 1))
}

const quiet: ProgressBar = { update: () => {}, clear: () => {}, finish: () => {} }

/** A progress bar over every seed's simulated time; silent unless `stream` is a TTY. */
export function createProgressBar (stream: ProgressStream | undefined, input: { seeds: readonly number[], durationMs: number, now?: () => number }): ProgressBar {
  if (stream?.isTTY !== true) return quiet
  const now = input.now ?? (() => performance.now())
  const started = now()
  const reached = new Map<number, number>()
  let lastDraw = -Infinity
  let drawn = false
  let finished = false
  const draw = (): void => {
    const total = input.durationMs * input.seeds.length
    const done = [...reached.values()].reduce((a, b) => a + b, 0)
    const complete = [...reached.values()].filter((simMs) => simMs >= input.durationMs).length
    const text = `${complete}/${input.seeds.length} runs, ${(done / 1000).toFixed(1)} of ${(total / 1000).toFixed(0)} s simulated, wall ${((now() - started) / 1000).toFixed(1)} s`
    stream.write(ERASE_LINE + renderProgress(total === 0 ? 1 : done / total, text, stream.columns))
    drawn = true
    lastDraw = now()
  }
  return {
    update (seed, simMs) {
      if (finished) return
      reached.set(seed, Math.max(reached.get(seed) ?? 0, simMs))
      if (now() - lastDraw >= REDRAW_MS) draw()
    },
    clear () {
      if (drawn) stream.write(ERASE_LINE)
      drawn = false
      lastDraw = -Infinity
    },
    finish () {
      this.clear()
      finished = true
    }
  }
}

/** Rows of text cells as aligned columns: the first and last left-aligned (text), the others right-aligned (figures). */
export function formatTable (rows: readonly string[][]): string[] {
  const widths: number[] = []
  for (const row of rows) row.forEach((cell, column) => { widths[column] = Math.max(widths[column] ?? 0, cell.length) })
  const last = widths.length - 1
  return rows.map((row) => row.map((cell, column) => column === 0 || column === last ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)).join('  ').trimEnd())
}

const ms = (value: number | null): string => value === null ? '∞' : String(Math.round(value))

/** What failed in a run: `ok`, or the failed checks with their kind (safety, liveness). */
export function verdictOf (run: RunResult): string {
  const failed = checkNamesOf(run).filter((name) => !run.checks[name]!.passed)
  return failed.length === 0 ? 'ok' : `FAILED ${failed.map((name) => `${name} (${CHECK_KINDS[name]})`).join(', ')}`
}

/** The summary table printed at the end of `form-anycast sim`: one row per seed. */
export function summaryTable (runs: readonly RunResult[], crashes: ReadonlyArray<{ seed: number, message: string }>): string[] {
  const kinds = FAILURE_EVENTS.filter((kind) => runs.some((run) => run.convergence.byType[kind].samples > 0))
  // NAT columns only where some run had nodes behind NAT, DNS accuracy only for scenarios with
  // clients, so other scenarios' tables stay as they were.
  const nat = runs.some((run) => run.nat !== undefined)
  const dns = runs.some((run) => run.dns !== undefined)
  const share = (value: number | null | undefined): string => value === null || value === undefined ? 'n/a' : `${(value * 100).toFixed(2)} %`
  const head = ['seed', ...kinds.map((kind) => `${kind} p99 ms`), 'optimality', ...(nat ? ['reachable', 'direct (NAT)', 'relayed only'] : []), ...(dns ? ['dns.accuracy'] : []), 'falseDead', 'msg/node/s', 'B/node/s', 'peak RSS MB', 'wall s', 'checks']
  const rows = runs.map((run) => [String(run.seed), ...kinds.map((kind) => ms(run.convergence.byType[kind].p99Ms)),
    share(run.optimality.share),
    ...(nat ? [share(run.nat?.reachableShare), share(run.nat?.directPathShare), String(run.nat?.relayedOnly ?? 'n/a')] : []),
    ...(dns ? [share(run.dns?.accuracy)] : []),
    String(run.falseDead),
    String(run.gossip.messagesPerNodePerSec), String(run.gossip.bytesPerNodePerSec), run.memory.peakRssMb.toFixed(1), String(run.wallSeconds), verdictOf(run)])
  const crashed = crashes.map((crash) => [String(crash.seed), ...kinds.map(() => '-'), '-', ...(nat ? ['-', '-', '-'] : []), ...(dns ? ['-'] : []), '-', '-', '-', '-', '-', `CRASHED ${crash.message.split('\n')[0] ?? ''}`])
  return formatTable([head, ...[...rows, ...crashed].sort((a, b) => Number(a[0]) - Number(b[0]))])
}
