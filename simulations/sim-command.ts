// `form-anycast sim FILE [--seed N | --seeds K] [--json OUT] [--report OUT.html] [--trace OUT.jsonl]
// [--workers W]`: run a scenario on the simulated overlay and judge it. Prints the seed and every
// option first (one line), a progress bar on stderr when it is a terminal, a summary table at the
// end. Exit codes (SIM_EXIT): 0 every check of every run passed; 1 a safety check failed; 3 only
// liveness checks failed; 4 a run crashed (an exception inside the simulation); 2 bad input (flags,
// or a scenario file: ConfigError, reported by the CLI).
import { existsSync, statSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { dirname, extname } from 'node:path'
import { InvalidArgumentError, type Command } from 'commander'
import { ConfigError } from '../src/runtime/config.ts'
import { loadScenario, type Scenario } from './scenario.ts'
import { CHECK_KINDS, CHECK_NAMES, checkNamesOf, runScenario, summariseRuns, type RunOptions, type RunResult } from './runner.ts'
import { runInWorkers, SimulationCrashError, type SeedRunOptions, type SimulationCrash } from './sim-workers.ts'
import { createProgressBar, summaryTable, type ProgressStream } from './sim-console.ts'
import { MAX_PLOTTED_RUNS, renderReport } from './report-html.ts'
import { sampleIntervalMs } from './time-series.ts'

export interface SimCommandIo {
  out: (line: string) => void
  err: (line: string) => void
  /** Where the progress bar goes (stderr); it draws only when this is a TTY. */
  progress?: ProgressStream
}

export const SIM_EXIT = { passed: 0, safety: 1, badInput: 2, liveness: 3, crash: 4 } as const

const MAX_SEEDS = 1000
const MAX_WORKERS = 16
const LOOP_CHECK_INTERVAL_MS = 500

const EXIT_HELP = `
Exit codes:
  0  every check of every run passed
  1  a safety check failed (${CHECK_NAMES.filter((name) => CHECK_KINDS[name] === 'safety').join(', ')})
  2  bad input: a flag or the scenario file (the message names the field)
  3  a liveness check failed (${CHECK_NAMES.filter((name) => CHECK_KINDS[name] === 'liveness').join(', ')}) and no safety check did
  4  a run crashed: an exception inside the simulation (wins over 1 and 3)

--trace with several seeds writes one file per seed: out.jsonl becomes out.seed-<N>.jsonl.`

function integerOption (name: string, min: number, max: number) {
  return (value: string): number => {
    const parsed = Number(value)
    if (!/^\d+$/.test(value) || parsed < min || parsed > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`)
    return parsed
  }
}

export interface SimOptions { seed?: number, seeds?: number, json?: string, report?: string, trace?: string, workers?: number }

/** Test hooks that only an in-thread run (--workers 0) can take. */
export interface SimHooks { inject?: RunOptions['inject'] }

export function registerSimCommand (program: Command, io: SimCommandIo, setExitCode: (code: number) => void): void {
  program.command('sim')
    .description('run a scenario (nodes, services, failure timeline) on the simulated overlay and check convergence, loops, optimality and, with clients, DNS accuracy')
    .argument('<file>', 'scenario JSON file (format: simulations/scenario.ts)')
    .option('--seed <n>', 'run this seed (with --seeds: the first seed)', integerOption('--seed', 0, 2 ** 31))
    .option('--seeds <k>', `run k seeds (1..k, or from --seed) and aggregate (1-${MAX_SEEDS})`, integerOption('--seeds', 1, MAX_SEEDS))
    .option('--json <out>', 'write the result JSON to this file')
    .option('--report <out.html>', 'write a self-contained HTML report with plots (convergence CDF, traffic, route changes, world maps)')
    .option('--trace <out.jsonl>', 'write the JSONL inspection trace (sha256 = traceHash); one file per seed with --seeds')
    .option('--workers <w>', `runs in parallel worker threads (default: one per CPU core, at most the number of seeds; 0 runs in this thread)`, integerOption('--workers', 0, MAX_WORKERS))
    .addHelpText('after', EXIT_HELP)
    .action(async (file: string, options: SimOptions) => {
      setExitCode(await runSimCommand(file, options, io))
    })
}

/** The exit code of a batch: a crash, then a safety failure, then a liveness failure. */
export function simExitCode (runs: readonly RunResult[], crashes: number): number {
  if (crashes > 0) return SIM_EXIT.crash
  const failed = runs.flatMap((run) => checkNamesOf(run).filter((name) => !run.checks[name]!.passed))
  if (failed.some((name) => CHECK_KINDS[name] === 'safety')) return SIM_EXIT.safety
  if (failed.length > 0) return SIM_EXIT.liveness
  return SIM_EXIT.passed
}

/** The trace file of one seed: the path as given for a single run, `<name>.seed-<N><ext>` for several. */
export function traceFileFor (path: string, seed: number, several: boolean): string {
  if (!several) return path
  const extension = extname(path)
  return `${path.slice(0, path.length - extension.length)}.seed-${seed}${extension}`
}

/** An output file must go into an existing directory and must not be a directory. */
function checkOutputPath (flag: string, path: string | undefined): void {
  if (path === undefined) return
  if (!existsSync(dirname(path)) || !statSync(dirname(path)).isDirectory()) throw new ConfigError('form-anycast sim', flag, `${path}: directory ${dirname(path)} does not exist`)
  if (existsSync(path) && statSync(path).isDirectory()) throw new ConfigError('form-anycast sim', flag, `${path} is a directory`)
}

/** The first line of a run: the seed, then every option with its effective value. */
export function optionsLine (file: string, scenario: Scenario, seeds: readonly number[], workers: number, options: SimOptions): string {
  const first = seeds[0]!
  const last = seeds[seeds.length - 1]!
  const trace = options.trace === undefined ? 'none' : seeds.length > 1 ? traceFileFor(options.trace, first, true).replace(`seed-${first}`, 'seed-<N>') : options.trace
  return `seed ${first}; seeds ${first === last ? `${first}` : `${first}..${last}`} (${seeds.length} run${seeds.length === 1 ? '' : 's'}); workers ${workers}; ` +
    `json ${options.json ?? 'none'}; report ${options.report ?? 'none'}; trace ${trace}; ` +
    `scenario ${scenario.name} (${file}): ${scenario.nodes.length} nodes, ${scenario.services.length} services, ${scenario.timeline.length} events, ${scenario.durationMs / 1000} s simulated, ` +
    `loop check every ${LOOP_CHECK_INTERVAL_MS} ms, samples every ${sampleIntervalMs(scenario.durationMs, LOOP_CHECK_INTERVAL_MS)} ms`
}

export async function runSimCommand (file: string, options: SimOptions, io: SimCommandIo, hooks: SimHooks = {}): Promise<number> {
  const scenario = loadScenario(file)
  checkOutputPath('--json', options.json)
  checkOutputPath('--report', options.report)
  checkOutputPath('--trace', options.trace)
  const first = options.seed ?? 1
  const seeds = Array.from({ length: options.seeds ?? 1 }, (_, index) => first + index)
  const workers = hooks.inject !== undefined ? 0 : Math.min(options.workers ?? availableParallelism(), seeds.length)
  io.out(optionsLine(file, scenario, seeds, workers, options))
  const bar = createProgressBar(io.progress, { seeds, durationMs: scenario.durationMs })
  const out = (line: string): void => { bar.clear(); io.out(line) }
  const finished: RunResult[] = []
  const crashes: SimulationCrash[] = []
  const writeBatchJson = (): void => {
    if (options.json !== undefined && options.seeds !== undefined) {
      writeJson(options.json, { runs: finished.map(withoutSeries), summary: summariseRuns(finished), complete: finished.length === seeds.length, crashes })
    }
  }
  // Rewritten after every run, so a long batch that is interrupted keeps what it measured.
  const onResult = (run: RunResult): void => {
    finished.push(keptForReport(run, seeds))
    finished.sort((a, b) => a.seed - b.seed)
    writeBatchJson()
  }
  const seedOptions: SeedRunOptions = {
    series: options.report !== undefined,
    progress: (seed, simMs) => { bar.update(seed, simMs) },
    ...(options.trace === undefined ? {} : { tracePath: (seed: number) => traceFileFor(options.trace!, seed, seeds.length > 1) })
  }
  try {
    if (workers === 0) await runHere(scenario, seeds, file, out, onResult, seedOptions, hooks)
    else await runInWorkers(file, seeds, workers, out, onResult, seedOptions)
  } catch (error) {
    if (!(error instanceof SimulationCrashError)) throw error
    crashes.push(...error.crashes)
  } finally {
    bar.finish()
  }
  return finish({ file, scenario, seeds, workers, options, finished, crashes, io, writeBatchJson })
}

interface Finished {
  file: string
  scenario: Scenario
  seeds: number[]
  workers: number
  options: SimOptions
  finished: RunResult[]
  crashes: SimulationCrash[]
  io: SimCommandIo
  writeBatchJson: () => void
}

/** Crash reports, the summary table, the JSON and the report; returns the exit code. */
function finish (done: Finished): number {
  const { io, options, finished, crashes } = done
  for (const crash of crashes) {
    io.err(`seed ${crash.seed}: the simulation crashed: ${crash.message}`)
    io.out(`seed ${crash.seed} CRASHED: ${crash.message.split('\n')[0]}`)
  }
  for (const line of summaryTable(finished, crashes)) io.out(line)
  if (options.seeds !== undefined) printSummary(summariseRuns(finished), crashes, io)
  // Last, where a reader looks first: how to replay each seed that failed or crashed.
  const failedSeeds = [...finished.filter((run) => !run.passed).map((run) => run.seed), ...crashes.map((crash) => crash.seed)].sort((a, b) => a - b)
  for (const seed of failedSeeds) io.out(`reproduce: form-anycast sim ${done.file} --seed ${seed}`)
  if (options.json !== undefined && options.seeds === undefined && finished[0] !== undefined) writeJson(options.json, withoutSeries(finished[0]))
  if (options.seeds !== undefined) done.writeBatchJson()
  if (options.report !== undefined) {
    writeFileSync(options.report, renderReport({
      scenario: { name: done.scenario.name, file: done.file, nodes: done.scenario.nodes.length, durationMs: done.scenario.durationMs, ...(done.scenario.description === undefined ? {} : { description: done.scenario.description }) },
      runs: finished,
      crashes: crashes.map((crash) => ({ seed: crash.seed, message: crash.message.split('\n')[0] ?? '' })),
      options: optionsLine(done.file, done.scenario, done.seeds, done.workers, options)
    }))
    io.out(`report: ${options.report}`)
  }
  return simExitCode(finished, crashes.length)
}

/**
 * What a batch keeps of a run's series, so a long batch's memory stays bounded: the maps of the
 * first seed only, the time series of the first MAX_PLOTTED_RUNS seeds (what the report draws).
 */
function keptForReport (run: RunResult, seeds: readonly number[]): RunResult {
  if (run.series === undefined) return run
  if (seeds.indexOf(run.seed) >= MAX_PLOTTED_RUNS) return withoutSeries(run)
  return run.seed === seeds[0] ? run : { ...run, series: { ...run.series, frames: [] } }
}

function withoutSeries (run: RunResult): Omit<RunResult, 'series'> {
  const { series: _series, ...rest } = run
  return rest
}

function writeJson (path: string, value: unknown): void {
  writeFileSync(path, JSON.stringify(value, null, 2) + '\n')
}

/** Every seed in this thread; a run that throws is a crash and the next seed still runs. */
async function runHere (scenario: Scenario, seeds: number[], file: string, out: (line: string) => void, onResult: (run: RunResult) => void, options: SeedRunOptions, hooks: SimHooks): Promise<void> {
  const crashes: SimulationCrash[] = []
  const results: RunResult[] = []
  for (const seed of seeds) {
    const tracePath = options.tracePath?.(seed)
    try {
      const run = await runScenario(scenario, seed, {
        log: out,
        file,
        series: options.series === true,
        progress: (simMs, durationMs) => options.progress?.(seed, simMs, durationMs),
        ...(tracePath === undefined ? {} : { tracePath }),
        ...(hooks.inject === undefined ? {} : { inject: hooks.inject })
      })
      results.push(run)
      onResult(run)
    } catch (error) {
      crashes.push({ seed, message: (error as Error).stack ?? String(error) })
    }
  }
  if (crashes.length > 0) throw new SimulationCrashError(crashes, results)
}

function printSummary (summary: ReturnType<typeof summariseRuns>, crashes: readonly SimulationCrash[], io: SimCommandIo): void {
  const ms = (value: number | null): string => value === null ? '∞' : `${value}`
  for (const [kind, stats] of Object.entries(summary.convergence.byType)) {
    if (stats.samples > 0) io.out(`${kind}: ${stats.samples} samples, p50 ${ms(stats.p50Ms)} ms, p99 ${ms(stats.p99Ms)} ms, max ${ms(stats.maxMs)} ms`)
  }
  io.out(`optimality ${summary.optimality.share === null ? 'n/a' : `${(summary.optimality.share * 100).toFixed(2)} % (worst run ${((summary.optimality.min ?? 0) * 100).toFixed(2)} %)`}; ` +
    `traffic ${summary.gossip.bytesPerNodePerSec} B/node/s, ${summary.gossip.messagesPerNodePerSec} messages/node/s; false dead ${summary.falseDead}; peak RSS ${summary.memory.peakRssMb} MB; wall ${summary.wallSecondsPerRun.mean} s per run`)
  if (summary.nat !== undefined) {
    const pct = (value: number | null): string => value === null ? 'n/a' : `${(value * 100).toFixed(2)} %`
    io.out(`NAT: origins reachable ${pct(summary.nat.reachableShareMin)} (worst run); direct after hole punching ${pct(summary.nat.directPathShare)} of ${summary.nat.natPairs} NAT pairs; ${summary.nat.relayedOnly} pairs relayed only`)
  }
  if (summary.dns !== undefined) {
    const share = (value: number | null): string => value === null ? 'n/a' : `${(value * 100).toFixed(2)} %`
    const lag = summary.dns.failedOriginAnswers
    io.out(`dns.accuracy ${share(summary.dns.accuracy)} of ${summary.dns.samples} first answers (worst run ${share(summary.dns.min)})` +
      (lag.samples === 0 ? '' : `; a failed origin still answered for p50 ${ms(lag.p50Ms)} ms, p99 ${ms(lag.p99Ms)} ms after its failure (${lag.samples} failures)`))
  }
  if (crashes.length > 0) io.out(`CRASHED for seeds ${crashes.map((crash) => crash.seed).join(', ')}`)
  io.out(summary.checksPassed ? 'all checks passed' : `checks FAILED for seeds ${summary.failedSeeds.join(', ')}`)
}
