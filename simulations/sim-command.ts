// `form-anycast sim FILE [--seed N | --seeds K] [--json OUT] [--workers W]`: run a scenario on the
// simulated overlay and judge it. Exit 0 when every check of every run passed, 1 when one failed,
// 2 for bad input (flags, or a scenario file: ConfigError, reported by the CLI).
import { writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { InvalidArgumentError, type Command } from 'commander'
import { loadScenario } from './scenario.ts'
import { runScenario, summariseRuns, type RunResult } from './runner.ts'
import { runInWorkers } from './sim-workers.ts'

export interface SimCommandIo {
  out: (line: string) => void
  err: (line: string) => void
}

const MAX_SEEDS = 1000
const MAX_WORKERS = 16

function integerOption (name: string, min: number, max: number) {
  return (value: string): number => {
    const parsed = Number(value)
    if (!/^\d+$/.test(value) || parsed < min || parsed > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`)
    return parsed
  }
}

interface SimOptions { seed?: number, seeds?: number, json?: string, workers?: number }

export function registerSimCommand (program: Command, io: SimCommandIo, setExitCode: (code: number) => void): void {
  program.command('sim')
    .description('run a scenario (nodes, services, failure timeline) on the simulated overlay and check convergence, loops and optimality')
    .argument('<file>', 'scenario JSON file (format: simulations/scenario.ts)')
    .option('--seed <n>', 'run this seed (with --seeds: the first seed)', integerOption('--seed', 0, 2 ** 31))
    .option('--seeds <k>', `run k seeds (1..k, or from --seed) and aggregate (1-${MAX_SEEDS})`, integerOption('--seeds', 1, MAX_SEEDS))
    .option('--json <out>', 'write the result JSON to this file')
    .option('--workers <w>', `runs in parallel worker threads (default: one per CPU core, at most the number of seeds; 0 runs in this thread)`, integerOption('--workers', 0, MAX_WORKERS))
    .action(async (file: string, options: SimOptions) => {
      setExitCode(await runSimCommand(file, options, io))
    })
}

async function runSimCommand (file: string, options: SimOptions, io: SimCommandIo): Promise<number> {
  const scenario = loadScenario(file)
  const first = options.seed ?? 1
  const seeds = Array.from({ length: options.seeds ?? 1 }, (_, index) => first + index)
  const workers = Math.min(options.workers ?? availableParallelism(), seeds.length)
  io.out(`scenario ${scenario.name}: ${scenario.nodes.length} nodes, ${scenario.services.length} services, ${scenario.timeline.length} events, ${scenario.durationMs / 1000} s simulated; seeds ${seeds.join(', ')}`)
  const finished: RunResult[] = []
  // Rewritten after every run, so a long batch that is interrupted keeps what it measured.
  const onResult = (run: RunResult): void => {
    finished.push(run)
    finished.sort((a, b) => a.seed - b.seed)
    if (options.json !== undefined && options.seeds !== undefined) writeJson(options.json, { runs: finished, summary: summariseRuns(finished), complete: finished.length === seeds.length })
  }
  const runs: RunResult[] = workers === 0
    ? await runHere(scenario, seeds, file, io, onResult)
    : await runInWorkers(file, seeds, workers, io.out, onResult)
  if (options.seeds !== undefined) printSummary(summariseRuns(runs), io)
  if (options.json !== undefined && options.seeds === undefined) writeJson(options.json, runs[0])
  return runs.every((run) => run.passed) ? 0 : 1
}

function writeJson (path: string, value: unknown): void {
  writeFileSync(path, JSON.stringify(value, null, 2) + '\n')
}

async function runHere (scenario: ReturnType<typeof loadScenario>, seeds: number[], file: string, io: SimCommandIo, onResult: (run: RunResult) => void): Promise<RunResult[]> {
  const runs: RunResult[] = []
  for (const seed of seeds) {
    const run = await runScenario(scenario, seed, { log: io.out, file })
    runs.push(run)
    onResult(run)
  }
  return runs
}

function printSummary (summary: ReturnType<typeof summariseRuns>, io: SimCommandIo): void {
  const ms = (value: number | null): string => value === null ? '∞' : `${value}`
  for (const [kind, stats] of Object.entries(summary.convergence.byType)) {
    if (stats.samples > 0) io.out(`${kind}: ${stats.samples} samples, p50 ${ms(stats.p50Ms)} ms, p99 ${ms(stats.p99Ms)} ms, max ${ms(stats.maxMs)} ms`)
  }
  io.out(`optimality ${summary.optimality.share === null ? 'n/a' : `${(summary.optimality.share * 100).toFixed(2)} % (worst run ${((summary.optimality.min ?? 0) * 100).toFixed(2)} %)`}; ` +
    `traffic ${summary.gossip.bytesPerNodePerSec} B/node/s, ${summary.gossip.messagesPerNodePerSec} messages/node/s; wall ${summary.wallSecondsPerRun.mean} s per run`)
  io.out(summary.checksPassed ? 'all checks passed' : `checks FAILED for seeds ${summary.failedSeeds.join(', ')}`)
}
