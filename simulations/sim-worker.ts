// The body of a sim worker thread (started through sim-worker-entry.js): load the scenario, run one
// seed, post log lines and the result back to sim-workers.ts.
import { parentPort, workerData } from 'node:worker_threads'
import { loadScenario } from './scenario.ts'
import { runScenario } from './runner.ts'
import type { WorkerMessage } from './sim-workers.ts'

const { file, seed } = workerData as { file: string, seed: number }
const post = (message: WorkerMessage): void => { parentPort?.postMessage(message) }
try {
  const result = await runScenario(loadScenario(file), seed, { file, log: (line) => post({ type: 'log', line }) })
  post({ type: 'result', result })
} catch (error) {
  post({ type: 'error', message: (error as Error).stack ?? String(error) })
}
