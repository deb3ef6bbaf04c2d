// Runs scenario seeds in worker threads, one run per worker at a time, so `--seeds K` uses every
// core. Each run is the same deterministic code as in the main thread (same seed, same trace
// hash); workers only change which runs overlap in wall time. A worker gets its own heap limit:
// a 1,000-node world needs more than a default main-thread heap leaves it.
import { Worker } from 'node:worker_threads'
import { totalmem } from 'node:os'
import type { RunResult } from './runner.ts'

export type WorkerMessage =
  | { type: 'log', line: string }
  | { type: 'progress', simMs: number, durationMs: number }
  | { type: 'result', result: RunResult }
  | { type: 'error', message: string }

/** What a worker is asked to do: one seed of one scenario file. */
export interface WorkerJob {
  file: string
  seed: number
  /** Collect RunResult.series (for --report). */
  series: boolean
  /** Write the run's JSONL trace to this file. */
  tracePath?: string
}

/** Per-run options shared by worker and in-thread runs. */
export interface SeedRunOptions {
  series?: boolean
  /** The trace file for a seed, or undefined for none. */
  tracePath?: (seed: number) => string | undefined
  progress?: (seed: number, simMs: number, durationMs: number) => void
}

export interface SimulationCrash { seed: number, message: string }

/** One or more runs threw inside the simulation (or their worker died); the others finished. */
export class SimulationCrashError extends Error {
  override readonly name = 'SimulationCrashError'
  constructor (readonly crashes: SimulationCrash[], readonly results: RunResult[]) {
    super(`the simulation crashed for seed${crashes.length === 1 ? '' : 's'} ${crashes.map((crash) => crash.seed).join(', ')}: ${crashes[0]?.message.split('\n')[0] ?? ''}`)
  }
}

const MAX_HEAP_MB = 12_288
/**
 * A young generation larger than V8's default (16 MB semi-spaces): a 1,000-node world allocates
 * snapshots and messages fast enough that scavenges took a fifth of its time; 64 MB semi-spaces
 * cut wall time by about a tenth.
 */
const YOUNG_GENERATION_MB = 192

function runOne (job: WorkerJob, heapMb: number, out: (line: string) => void, options: SeedRunOptions): Promise<RunResult> {
  const { seed } = job
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./sim-worker-entry.js', import.meta.url), {
      workerData: job,
      // Not the parent's: a TypeScript --import (as under `npm test`) fails in a Node 20 worker.
      execArgv: [],
      resourceLimits: { maxOldGenerationSizeMb: heapMb, maxYoungGenerationSizeMb: YOUNG_GENERATION_MB }
    })
    let result: RunResult | undefined
    let failure: Error | undefined
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'log') out(message.line)
      else if (message.type === 'progress') options.progress?.(seed, message.simMs, message.durationMs)
      else if (message.type === 'result') result = message.result
      else failure = new Error(message.message)
    })
    worker.on('error', (error) => { failure ??= new Error(`worker failed: ${error.stack ?? error.message}`) })
    worker.on('exit', (code) => {
      if (result !== undefined) resolve(result)
      else reject(failure ?? new Error(`worker exited with code ${code} before reporting`))
    })
  })
}

/**
 * Run every seed, at most `workers` at once; results in seed order, each also to onResult as it
 * finishes. A run that crashes does not stop the others: when all are done, SimulationCrashError
 * lists the crashed seeds and carries the results of the rest.
 */
export async function runInWorkers (file: string, seeds: readonly number[], workers: number, out: (line: string) => void, onResult: (run: RunResult) => void = () => {}, options: SeedRunOptions = {}): Promise<RunResult[]> {
  const heapMb = Math.max(1024, Math.min(MAX_HEAP_MB, Math.floor(totalmem() / 1024 / 1024 / (workers + 1))))
  const results: Array<RunResult | undefined> = new Array(seeds.length)
  const crashes: SimulationCrash[] = []
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < seeds.length) {
      const index = next++
      const seed = seeds[index]!
      const tracePath = options.tracePath?.(seed)
      try {
        const run = await runOne({ file, seed, series: options.series === true, ...(tracePath === undefined ? {} : { tracePath }) }, heapMb, out, options)
        results[index] = run
        onResult(run)
      } catch (error) {
        crashes.push({ seed, message: (error as Error).message })
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, workers) }, lane))
  const finished = results.filter((run) => run !== undefined)
  if (crashes.length > 0) throw new SimulationCrashError(crashes.sort((a, b) => a.seed - b.seed), finished)
  return finished
}
