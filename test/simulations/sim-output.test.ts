// What `form-anycast sim` prints and writes: the options line first, the summary table, distinct
// exit codes for a safety failure (an injected route loop), a liveness failure and a crash, the
// --trace file whose sha256 is the run's traceHash, falseDead and memory in --json, and a progress
// bar only on a terminal. Plus the pieces on their own: false dead counting from the inspection
// stream, the bounded time-series recorder.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { main } from '../../src/runtime/cli.ts'
import { runSimCommand, SIM_EXIT, simExitCode, traceFileFor } from '../../simulations/sim-command.ts'
import type { RunResult } from '../../simulations/runner.ts'
import { SimWorld } from '../../simulations/world.ts'
import { createProgressBar, renderProgress } from '../../simulations/sim-console.ts'
import { createFalseDeadSink } from '../../simulations/false-dead.ts'
import { MAX_MAP_INSTANTS, MAX_SAMPLES, NODE_DOWN, NO_ROUTE, SeriesRecorder, sampleIntervalMs } from '../../simulations/time-series.ts'
import type { InspectionEvent } from '../../src/runtime/ports.ts'
import { MINI_SCENARIO } from '../support/mini-scenario.ts'

const miniValue = MINI_SCENARIO

async function withDir (body: (dir: string, file: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'form-anycast-sim-output-'))
  try {
    const file = join(dir, 'mini.json')
    writeFileSync(file, JSON.stringify(miniValue))
    await body(dir, file)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

function collect (): { lines: string[], errors: string[], io: { out: (line: string) => void, err: (line: string) => void } } {
  const lines: string[] = []
  const errors: string[] = []
  return { lines, errors, io: { out: (line) => lines.push(line), err: (line) => errors.push(line) } }
}

const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex')

test('sim output: the options line comes first, --trace writes the trace whose sha256 is traceHash, --json gains falseDead and memory, a summary table ends the run, seed 3', async () => {
  await withDir(async (dir, file) => {
    const out = join(dir, 'out.json')
    const trace = join(dir, 'trace.jsonl')
    const { lines, io } = collect()
    const code = await main(['node', 'form-anycast', 'sim', file, '--seed', '3', '--workers', '0', '--json', out, '--trace', trace], io)
    assert.is(code, SIM_EXIT.passed, lines.join('\n'))
    assert.is(lines[0], `seed 3; seeds 3 (1 run); workers 0; json ${out}; report none; trace ${trace}; scenario mini (${file}): 20 nodes, 2 services, 3 events, 10 s simulated, loop check every 500 ms, samples every 500 ms`)
    assert.is(lines[1], 'seed 3')
    const result = JSON.parse(readFileSync(out, 'utf8')) as RunResult
    assert.equal(Object.keys(result), ['scenario', 'file', 'seed', 'nodes', 'simSeconds', 'wallSeconds', 'traceHash', 'convergence', 'checks', 'optimality', 'gossip', 'falseDead', 'memory', 'passed'])
    assert.is(result.falseDead, 0)
    assert.ok(result.memory.peakRssMb > 20 && result.memory.peakRssMb < 16_384, `peak RSS ${result.memory.peakRssMb} MB`)
    assert.is(sha256(trace), result.traceHash)
    assert.ok(readFileSync(trace, 'utf8').split('\n').length > 1000)
    const header = lines.findIndex((line) => line.startsWith('seed  '))
    assert.ok(header > 1, lines.join('\n'))
    assert.match(lines[header]!, /^seed\s+serviceDown p99 ms\s+nodeCrash p99 ms\s+optimality\s+falseDead\s+msg\/node\/s\s+B\/node\/s\s+peak RSS MB\s+wall s\s+checks$/)
    assert.match(lines[header + 1]!, /^3\s+\d+\s+\d+\s+100\.00 %\s+0\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+ok$/)
    assert.is(header + 2, lines.length, 'the table ends the output of a passing run')
  })
})

test('sim output: with --seeds, one trace file per seed named after it, each hashing to its run, seeds 4 and 5 in workers', async () => {
  await withDir(async (dir, file) => {
    const out = join(dir, 'out.json')
    const trace = join(dir, 'trace.jsonl')
    const { lines, io } = collect()
    const code = await main(['node', 'form-anycast', 'sim', file, '--seed', '4', '--seeds', '2', '--workers', '2', '--json', out, '--trace', trace], io)
    assert.is(code, SIM_EXIT.passed, lines.join('\n'))
    const { runs, summary, crashes } = JSON.parse(readFileSync(out, 'utf8')) as { runs: RunResult[], summary: { falseDead: number, memory: { peakRssMb: number } }, crashes: unknown[] }
    assert.equal(crashes, [])
    assert.is(summary.falseDead, 0)
    assert.ok(summary.memory.peakRssMb > 0)
    assert.not.ok(existsSync(trace))
    for (const run of runs) assert.is(sha256(join(dir, `trace.seed-${run.seed}.jsonl`)), run.traceHash)
    assert.is.not(runs[0]!.traceHash, runs[1]!.traceHash)
  })
  assert.is(traceFileFor('/x/out.jsonl', 7, false), '/x/out.jsonl')
  assert.is(traceFileFor('/x/out.jsonl', 7, true), '/x/out.seed-7.jsonl')
  assert.is(traceFileFor('/x/out', 7, true), '/x/out.seed-7')
})

test('sim output: a broken expectation is a liveness failure and exits 3, seed 3', async () => {
  await withDir(async (dir) => {
    const file = join(dir, 'impossible.json')
    writeFileSync(file, JSON.stringify({ ...miniValue, expect: { ...miniValue.expect, convergenceP99Ms: { serviceDown: 1 } } }))
    const { lines, io } = collect()
    const code = await main(['node', 'form-anycast', 'sim', file, '--seed', '3', '--workers', '0'], io)
    assert.is(code, SIM_EXIT.liveness)
    assert.ok(lines.some((line) => /^3\s.*FAILED convergenceWithinTarget \(liveness\)$/.test(line)), lines.join('\n'))
    assert.is(lines[lines.length - 1], `reproduce: form-anycast sim ${file} --seed 3`)
  })
})

/** Two nodes that do not restart, told to forward the api prefix to each other from t = 3 s. */
function injectLoop (world: SimWorld, atMs: number): void {
  if (atMs !== 3000) return
  const pair = [['fra-1', 'fra-2'], ['fra-2', 'fra-1']] as const
  for (const [node, other] of pair) {
    const plane = world.hosts.get(node)!.controlPlane
    const routes = plane.routes.bind(plane)
    plane.routes = () => routes().map((entry) => entry.prefix === '10.42.255.1/32' && entry.origin !== undefined ? { ...entry, nextHop: other } : entry)
  }
}

test('sim output: an injected route loop is a safety failure and exits 1 (safety wins over liveness, a crash over both), seed 3', async () => {
  await withDir(async (dir, file) => {
    const out = join(dir, 'out.json')
    const { lines, io } = collect()
    const code = await runSimCommand(file, { seed: 3, json: out }, io, { inject: injectLoop })
    assert.is(code, SIM_EXIT.safety, lines.join('\n'))
    const result = JSON.parse(readFileSync(out, 'utf8')) as RunResult
    assert.is(result.checks.routeLoops.passed, false)
    assert.match(result.checks.routeLoops.examples[0]!, /^t=3500 \S+ 10\.42\.255\.1\/32: forwarding loops (\S+ → )*(fra-1 → fra-2 → fra-1|fra-2 → fra-1 → fra-2)$/)
    assert.ok(lines.some((line) => /^3\s.*FAILED routeLoops \(safety\)$/.test(line)), lines.join('\n'))
    assert.is(lines[lines.length - 1], `reproduce: form-anycast sim ${file} --seed 3`)
  })
  const run = (failed: Array<keyof RunResult['checks']>): RunResult => ({
    checks: Object.fromEntries(['routeLoops', 'failedOriginAfterConvergence', 'steadyStateOptimality', 'convergenceWithinTarget'].map((name) => [name, { passed: !failed.includes(name as keyof RunResult['checks']), violations: 0, examples: [] }]))
  }) as unknown as RunResult
  assert.is(simExitCode([run([])], 0), 0)
  assert.is(simExitCode([run(['steadyStateOptimality'])], 0), 3)
  assert.is(simExitCode([run(['convergenceWithinTarget']), run(['failedOriginAfterConvergence'])], 0), 1)
  assert.is(simExitCode([run(['routeLoops'])], 1), 4)
  assert.is(simExitCode([], 1), 4)
})

test('sim output: an exception inside the simulation is a crash: exit 4, the other seeds still run, the trace is closed, seeds 3 and 4', async () => {
  await withDir(async (dir, file) => {
    const out = join(dir, 'out.json')
    const trace = join(dir, 'trace.jsonl')
    const { lines, errors, io } = collect()
    let seedRunning = 0
    const code = await runSimCommand(file, { seed: 3, seeds: 2, json: out, trace }, io, {
      inject: (world, atMs) => {
        seedRunning = world.options.seed
        if (world.options.seed === 3 && atMs === 3000) throw new Error('boom inside the world')
      }
    })
    assert.is(code, SIM_EXIT.crash, lines.join('\n'))
    assert.is(seedRunning, 4, 'seed 4 ran after seed 3 crashed')
    assert.ok(lines.includes('seed 3 CRASHED: Error: boom inside the world'), lines.join('\n'))
    assert.match(errors.join('\n'), /seed 3: the simulation crashed: Error: boom inside the world\n\s+at /)
    assert.ok(lines.some((line) => /^3\s.*CRASHED Error: boom inside the world$/.test(line)), lines.join('\n'))
    assert.ok(lines.includes('CRASHED for seeds 3'))
    assert.is(lines[lines.length - 1], `reproduce: form-anycast sim ${file} --seed 3`)
    const batch = JSON.parse(readFileSync(out, 'utf8')) as { runs: RunResult[], complete: boolean, crashes: Array<{ seed: number }> }
    assert.equal(batch.runs.map((run) => run.seed), [4])
    assert.is(batch.complete, false)
    assert.equal(batch.crashes.map((crash) => crash.seed), [3])
    assert.ok(readFileSync(join(dir, 'trace.seed-3.jsonl'), 'utf8').endsWith('\n'), 'the crashed run\'s trace was flushed and closed')
    assert.is(sha256(join(dir, 'trace.seed-4.jsonl')), batch.runs[0]!.traceHash)
  })
})

test('sim output: --help documents the exit codes', async () => {
  const { lines, io } = collect()
  const code = await main(['node', 'form-anycast', 'sim', '--help'], io)
  assert.is(code, 0)
  const help = lines.join('\n')
  for (const line of [
    '  0  every check of every run passed',
    '  1  a safety check failed (routeLoops, failedOriginAfterConvergence, leaseSafety, ackedWritesKept)',
    '  2  bad input: a flag or the scenario file (the message names the field)',
    '  3  a liveness check failed (steadyStateOptimality, convergenceWithinTarget, stateConverged, originsReachable, dnsAccuracy) and no safety check did',
    '  4  a run crashed: an exception inside the simulation (wins over 1 and 3)'
  ]) assert.ok(help.includes(line), `${line}\n${help}`)
  assert.match(help, /--report <out\.html>/)
  assert.match(help, /--trace <out\.jsonl>/)
})

test('sim output: a bad output path is bad input (exit 2) naming the flag', async () => {
  await withDir(async (dir, file) => {
    const { errors, io } = collect()
    const code = await main(['node', 'form-anycast', 'sim', file, '--report', join(dir, 'missing', 'r.html')], io)
    assert.is(code, 2)
    assert.match(errors.join('\n'), /--report: .*missing\/r\.html: directory .*missing does not exist/)
  })
})

test('sim output: no progress bar when stderr is not a TTY (a real process with piped stderr), seed 2', async () => {
  await withDir(async (_dir, file) => {
    const { stdout, stderr, code } = await new Promise<{ stdout: string, stderr: string, code: number | null }>((resolve) => {
      const child = execFile(process.execPath, ['bin/form-anycast.js', 'sim', file, '--seed', '2', '--workers', '0'], { timeout: 60_000 }, (_error, stdout, stderr) => {
        resolve({ stdout, stderr, code: child.exitCode })
      })
    })
    assert.is(code, 0, stdout + stderr)
    assert.match(stdout, /^seed 2; seeds 2 \(1 run\)/)
    assert.is(stderr, '')
    assert.not.match(stdout, /[\r█░]/)
  })
})

test('sim output: on a TTY the bar is redrawn in place, throttled, and erased at the end', () => {
  const writes: string[] = []
  let wallMs = 0
  const bar = createProgressBar({ isTTY: true, columns: 120, write: (text) => writes.push(text) }, { seeds: [1, 2], durationMs: 10_000, now: () => wallMs })
  bar.update(1, 500)
  bar.update(1, 1000) // within 100 ms of wall time: not redrawn
  wallMs = 140
  bar.update(2, 5000)
  bar.clear()
  wallMs = 160
  bar.update(2, 10_000) // after a clear it draws at once
  bar.finish()
  bar.update(1, 10_000)
  assert.equal(writes, [
    '\r\x1b[2K' + renderProgress(0.025, '0/2 runs, 0.5 of 20 s simulated, wall 0.0 s', 120),
    '\r\x1b[2K' + renderProgress(0.3, '0/2 runs, 6.0 of 20 s simulated, wall 0.1 s', 120),
    '\r\x1b[2K',
    '\r\x1b[2K' + renderProgress(0.55, '1/2 runs, 11.0 of 20 s simulated, wall 0.2 s', 120),
    '\r\x1b[2K'
  ])
  assert.is(renderProgress(0.5, 'half', 80), `[${'█'.repeat(15)}${'░'.repeat(15)}]  50% half`)
  assert.is(renderProgress(1, 'x'.repeat(100), 40).length, 39)
  const silent: string[] = []
  const quiet = createProgressBar({ isTTY: false, write: (text) => silent.push(text) }, { seeds: [1], durationMs: 1000 })
  quiet.update(1, 500)
  quiet.clear()
  quiet.finish()
  assert.equal(silent, [])
})

function proberEvent (node: string, origin: string, kind: InspectionEvent['kind'], verdict?: string, t = 0): InspectionEvent {
  return { t, node, kind, systemId: `origin-probe:${origin}`, actor: 'health-prober', ...(verdict === undefined ? {} : { state: { schedule: 'resting', verdict } }) }
}

test('false dead: a failed verdict counts once per entry into failed, only for a live, reachable origin seen from a live node', () => {
  const dead = new Set(['b'])
  const sink = createFalseDeadSink({ isObserved: (node) => node !== 'crashed', isAliveAndReachable: (_node, origin) => !dead.has(origin) })
  sink.write(proberEvent('n1', 'a', 'actor.snapshot', 'healthy'))
  sink.write(proberEvent('n1', 'a', 'actor.snapshot', 'failed', 100))
  sink.write(proberEvent('n1', 'a', 'actor.event'))
  sink.write(proberEvent('n1', 'a', 'actor.snapshot', 'failed', 200)) // still failed: the same verdict
  sink.write(proberEvent('n1', 'b', 'actor.snapshot', 'failed')) // b is really dead: a true verdict
  sink.write(proberEvent('crashed', 'a', 'actor.snapshot', 'failed')) // a dead node's actors do not count
  sink.write({ ...proberEvent('n1', 'a', 'actor.snapshot', 'failed'), systemId: 'service:api' }) // not an origin probe
  sink.write(proberEvent('n2', 'a', 'actor.snapshot', 'degraded'))
  sink.write({ ...proberEvent('n2', 'a', 'actor.snapshot'), state: { schedule: 'probing', verdict: { degraded: 'suspect' } } })
  assert.is(sink.count, 1)
  assert.is(sink.failedVerdicts, 2)
  sink.write(proberEvent('n1', 'a', 'actor.snapshot', 'healthy'))
  sink.write(proberEvent('n1', 'a', 'actor.snapshot', 'failed', 300)) // failed again after recovering
  sink.write(proberEvent('n1', 'a', 'actor.stopped', 'failed'))
  sink.write(proberEvent('n1', 'a', 'actor.snapshot', 'failed', 400)) // a new prober after a restart
  assert.is(sink.count, 3)
  assert.equal(sink.examples, ['t=100 n1 declared a failed while it was alive and reachable', 't=300 n1 declared a failed while it was alive and reachable', 't=400 n1 declared a failed while it was alive and reachable'])
})

test('false dead: on a real world the sink sees every prober declare a crashed origin failed, and counts none of them as false, seed 9', async () => {
  const crashed = new Set<string>()
  const probers = new Set<string>()
  const truth = createFalseDeadSink({ isObserved: (node) => !crashed.has(node), isAliveAndReachable: (_node, origin) => !crashed.has(origin) })
  // The same stream judged by a ground truth that ignores the crash: every verdict looks false.
  const blind = createFalseDeadSink({ isObserved: (node) => !crashed.has(node), isAliveAndReachable: () => true })
  const world = new SimWorld({
    seed: 9,
    nodes: 8,
    degree: 3,
    latencyMs: 10,
    sinks: [truth, blind, { write: (event) => { if (event.systemId === 'origin-probe:n00000' && event.kind === 'actor.started') probers.add(event.node) } }],
    services: (index) => index === 0 ? [{ name: 'api', prefix: '10.42.255.1/32', check: { kind: 'http', url: 'http://n00000.sim/api/health' }, preference: 100 }] : []
  })
  await world.start()
  await world.run(4000)
  assert.is(truth.failedVerdicts, 0)
  assert.is(probers.size, 7, 'every other node probes the origin')
  crashed.add('n00000')
  world.crashNode('n00000')
  await world.run(4000)
  await world.stop()
  assert.is(truth.failedVerdicts, 7)
  assert.is(truth.count, 0)
  assert.is(blind.count, 7)
})

test('time series: rates per node between samples, counters of a new life start from zero, route changes per interval', () => {
  const recorder = new SeriesRecorder({ intervalMs: 1000, nodes: [{ id: 'a', lat: 0, lon: 0 }, { id: 'b', lat: 1, lon: 1 }], origins: { p: ['a'] } })
  const lifeA = {}
  const lifeB = {}
  const stats = (messagesSent: number, bytesSent: number) => ({ messagesSent, bytesSent, messagesReceived: 0, bytesReceived: 0 })
  recorder.routeChanged('p')
  recorder.sample(1000, [{ id: 'a', life: lifeA, stats: stats(10, 1000) }, { id: 'b', life: lifeB, stats: stats(30, 3000) }])
  recorder.sample(1000, []) // the same instant twice: ignored
  const lifeB2 = {}
  recorder.sample(3000, [{ id: 'a', life: lifeA, stats: stats(30, 2000) }, { id: 'b', life: lifeB2, stats: stats(4, 400) }])
  const series = recorder.result()
  assert.equal(series.atMs, [1000, 3000])
  assert.equal(series.messagesPerNodePerSec, { mean: [20, 6], p50: [10, 2], p99: [30, 10], max: [30, 10] })
  assert.equal(series.bytesPerNodePerSec.max, [3000, 500])
  assert.equal(series.routeChanges, { total: [1, 0], byPrefix: { p: [1, 0] } })
})

test('time series: the interval keeps samples bounded and on loop-check instants; map frames stop after MAX_MAP_INSTANTS', () => {
  assert.is(sampleIntervalMs(10_000, 500), 500)
  assert.is(sampleIntervalMs(3_600_000, 500), 9000)
  assert.ok(3_600_000 / sampleIntervalMs(3_600_000, 500) <= MAX_SAMPLES)
  const recorder = new SeriesRecorder({ intervalMs: 500, nodes: [{ id: 'a', lat: 0, lon: 0 }, { id: 'b', lat: 1, lon: 1 }], origins: { p: ['a', 'b'] } })
  for (let k = 1; k <= MAX_MAP_INSTANTS + 3; k++) recorder.frame(k * 1000, [`event ${k}`], (node) => node !== 'b' || k % 2 === 0, (_prefix, node) => node === 'a' && k > 1 ? 'b' : undefined)
  recorder.frame(99_000, [], () => true, () => 'a')
  const series = recorder.result()
  assert.is(series.frames.length, MAX_MAP_INSTANTS + 1)
  assert.is(series.framesLeftOff, 3)
  assert.equal(series.frames[0], { atMs: 1000, events: ['event 1'], chosen: { p: [NO_ROUTE, NODE_DOWN] } })
  assert.equal(series.frames[1], { atMs: 2000, events: ['event 2'], chosen: { p: [1, NO_ROUTE] } })
  assert.equal(series.frames[MAX_MAP_INSTANTS]!.events, [], 'the last kept frame only closes the last mapped instant')
  assert.is(series.frames[MAX_MAP_INSTANTS]!.atMs, (MAX_MAP_INSTANTS + 1) * 1000)
})

test.run()
