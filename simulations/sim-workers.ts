// Runs scenario seeds in worker threads, one run per worker at a time, so `--seeds K` uses every
// core. Each run is the same deterministic code as in the main thread (same seed, same trace
// hash); workers only change which runs overlap in wall time. A worker gets its own heap limit:
// a 1,000-node world needs more than a default main-thread heap leaves it.
import { Worker } from 'node:worker_threads'
import { totalmem } from 'node:os'
import type { RunResult } from './runner.ts'

export type WorkerMessage =
  | { type: 'log', line: string }
  | { type: 'result', result: RunResult }
  | { type: 'error', message: string }

const MAX_HEAP_MB = 12_288
/**
 * A young generation larger than V8's default (16 MB semi-spaces): a 1,000-node world allocates
 * snapshots and messages fast enough that scavenges took a fifth of its time; 64 MB semi-spaces
 * cut wall time by about a tenth.
 */
const YOUNG_GENERATION_MB = 192

function runOne (file: string, seed: number, heapMb: number, out: (line: string) => void): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./sim-worker-entry.js', import.meta.url), {
      workerData: { file, seed },
      // Not the parent's: a TypeScript --import (as under `npm test`) fails in a Node 20 worker.
      execArgv: [],
      resourceLimits: { maxOldGenerationSizeMb: heapMb, maxYoungGenerationSizeMb: YOUNG_GENERATION_MB }
    })
    let result: RunResult | undefined
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'log') out(message.line)
      else if (message.type === 'result') result = message.result
      else reject(new Error(`seed ${seed}: ${message.message}`))
    })
    worker.on('error', (error) => reject(new Error(`seed ${seed}: worker failed: ${error.message}`)))
    worker.on('exit', (code) => {
      if (result !== undefined) resolve(result)
      else reject(new Error(`seed ${seed}: worker exited with code ${code} before reporting`))
    })
  })
}

/** Run every seed, at most `workers` at once; results in seed order, each also to onResult as it finishes. */
export async function runInWorkers (file: string, seeds: readonly number[], workers: number, out: (line: string) => void, onResult: (run: RunResult) => void = () => {}): Promise<RunResult[]> {
  const heapMb = Math.max(1024, Math.min(MAX_HEAP_MB, Math.floor(totalmem() / 1024 / 1024 / (workers + 1))))
  const results: RunResult[] = new Array(seeds.length)
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < seeds.length) {
      const index = next++
      const run = await runOne(file, seeds[index]!, heapMb, out)
      results[index] = run
      onResult(run)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, workers) }, lane))
  return results
}
