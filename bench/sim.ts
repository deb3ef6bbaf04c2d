// Simulator speed at scale: wall time and peak memory to simulate N nodes (the full actor set per
// node: sessions, heartbeat, probers, announcers, control plane) for S simulated seconds, with the
// shape of a shipped scale scenario (cities by population, three services, timeline faults).
// Run: node --import tsx bench/sim.ts [--scenario simulations/scale-1000.json] [--nodes N] [--seconds S] [--seed K]
//
// The scenario is cut to the first S simulated seconds (timeline events after that are dropped;
// random faults keep their rates inside the shorter window) and to N generated nodes, so a short
// run measures the same kind of world the long one would.
// Prints sim.wall_s, sim.wall_per_sim_s (wall seconds per simulated second: below 1 is faster than
// real time), sim.cpu_s, sim.peak_rss_mb, the steady rate over the second half of the run, and what
// a full run of the scenario would take at that rate. The
// checks are reported, not required: a cut run may end before any steady-state instant.
import { readFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { parseArgs } from 'node:util'
import { parseScenario } from '../simulations/scenario.ts'
import { runScenario } from '../simulations/runner.ts'
import { positiveFlag } from './flags.ts'

const { values } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'simulations/scale-1000.json' },
    nodes: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '60' },
    seed: { type: 'string', default: '1' }
  }
})
const NODES = positiveFlag('nodes', values.nodes)
const SECONDS = positiveFlag('seconds', values.seconds)
const SEED = positiveFlag('seed', values.seed)

const raw = JSON.parse(readFileSync(values.scenario!, 'utf8')) as {
  durationMs: number, generate?: { count: number }, timeline?: Array<{ at: number }>, faults?: { random?: unknown }
}
const fullSeconds = raw.durationMs / 1000
raw.durationMs = SECONDS * 1000
if (raw.generate !== undefined) raw.generate.count = NODES
raw.timeline = (raw.timeline ?? []).filter((event) => event.at < raw.durationMs)
// Random faults keep their rates, in a window that fits the cut run (the first and last tenth clear).
const random = (raw.faults as { random?: { fromMs?: number, untilMs?: number } } | undefined)?.random
if (random !== undefined) {
  random.fromMs = Math.min(random.fromMs ?? 0, Math.floor(raw.durationMs / 10))
  random.untilMs = Math.min(random.untilMs ?? raw.durationMs, Math.floor(raw.durationMs * 0.9))
}
const scenario = parseScenario(raw, values.scenario!)

console.log(`# ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}; ${values.scenario} cut to ${scenario.nodes.length} nodes × ${SECONDS} simulated s (full: ${fullSeconds} s), seed ${SEED}`)
let peakRss = process.memoryUsage.rss()
const sampler = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage.rss()) }, 200)
const cpuSeconds = (): number => { const used = process.cpuUsage(); return (used.user + used.system) / 1e6 }
const started = performance.now()
const cpuStarted = cpuSeconds()
// The second half of the run is timed apart: start-up (every session, stream and full table
// exchange at once) costs more than a simulated second of steady state, and a long run is mostly
// steady state.
let half: { simMs: number, wallMs: number, cpuS: number } | undefined
const run = await runScenario(scenario, SEED, {
  progress: (simMs) => { if (half === undefined && simMs >= SECONDS * 500) half = { simMs, wallMs: performance.now(), cpuS: cpuSeconds() } }
})
const wallS = (performance.now() - started) / 1000
const cpuS = cpuSeconds() - cpuStarted
clearInterval(sampler)
peakRss = Math.max(peakRss, process.memoryUsage.rss())
const perSim = wallS / SECONDS
console.log(`sim.nodes ${scenario.nodes.length}`)
console.log(`sim.simulated_s ${SECONDS}`)
console.log(`sim.wall_s ${wallS.toFixed(1)}`)
console.log(`sim.wall_per_sim_s ${perSim.toFixed(2)}`)
console.log(`sim.peak_rss_mb ${(peakRss / 1024 / 1024).toFixed(0)}`)
console.log(`sim.cpu_s ${cpuS.toFixed(1)}   (this process, user + system: the figure to trust on a busy machine)`)
if (half !== undefined) {
  const steadySimS = SECONDS - half.simMs / 1000
  const steadyWall = (performance.now() - half.wallMs) / 1000 / steadySimS
  const steadyCpu = (cpuSeconds() - half.cpuS) / steadySimS
  const startupWall = (half.wallMs - started) / 1000
  console.log(`sim.steady_wall_per_sim_s ${steadyWall.toFixed(2)}   (second half of the run)`)
  console.log(`sim.steady_cpu_per_sim_s ${steadyCpu.toFixed(2)}`)
  console.log(`sim.full_run_estimate_s ${(startupWall + steadyWall * (fullSeconds - half.simMs / 1000)).toFixed(0)}   (first half as measured, then ${fullSeconds - half.simMs / 1000} simulated s at the steady rate)`)
} else {
  console.log(`sim.full_run_estimate_s ${(perSim * fullSeconds).toFixed(0)}   (${fullSeconds} simulated s at this rate)`)
}
const failed = Object.entries(run.checks).filter(([, check]) => check !== undefined && !check.passed)
console.log(`sim.checks ${failed.length === 0 ? 'passed' : `FAILED ${failed.map(([name, check]) => `${name}: ${check!.examples[0] ?? ''}`).join('; ')}`}`)
