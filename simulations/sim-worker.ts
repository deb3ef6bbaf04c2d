// The body of a sim worker thread (started through sim-worker-entry.js): load the scenario, run one
// seed, post log lines, progress and the result back to sim-workers.ts.
import { parentPort, workerData } from 'node:worker_threads'
import { loadScenario } from './scenario.ts'
import { runScenario } from './runner.ts'
import type { WorkerJob, WorkerMessage } from './sim-workers.ts'

const job = workerData as WorkerJob
const post = (message: WorkerMessage): void => { parentPort?.postMessage(message) }
try {
  const result = await runScenario(loadScenario(job.file), job.seed, {
    file: job.file,
    log: (line) => post({ type: 'log', line }),
    progress: (simMs, durationMs) => post({ type: 'progress', simMs, durationMs }),
    series: job.series,
    ...(job.tracePath === undefined ? {} : { tracePath: job.tracePath })
  })
  post({ type: 'result', result })
} catch (error) {
  post({ type: 'error', message: (error as Error).stack ?? String(error) })
}
