// What inspection costs a running network: the same simulated world (same seed, so the same work)
// run with no inspection sink attached, as production nodes run by default, and with the sinks
// the debugger uses. Prints wall time for the measured simulated seconds, session messages
// delivered per wall second, and inspection records per simulated second.
// Run: node --import tsx bench/inspect-cost.ts [--nodes N] [--seconds S] [--rounds R]
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { SimWorld } from '../simulations/world.ts'
import { createHashSink, createJsonlFileSink, createMemorySink, type InspectionBus, type InspectionSink } from '../src/runtime/inspection.ts'
import type { InspectionEvent } from '../src/runtime/ports.ts'
import { positiveFlag } from './flags.ts'

const { values } = parseArgs({ options: { nodes: { type: 'string', default: '100' }, seconds: { type: 'string', default: '10' }, rounds: { type: 'string', default: '3' } } })
const NODES = positiveFlag('nodes', values.nodes, 100_000)
const SECONDS = positiveFlag('seconds', values.seconds, 100_000)
const ROUNDS = positiveFlag('rounds', values.rounds, 100_000)
const WARMUP_MS = 5000
const CITIES = [{ lat: 50.11, lon: 8.68 }, { lat: 40.71, lon: -74.01 }, { lat: 1.35, lon: 103.82 }]

type Mode = 'off' | 'sha256' | 'jsonl' | 'memory'
const MODES: Mode[] = ['off', 'sha256', 'jsonl']


interface Sample { wallMs: number, cpuMs: number, messages: number, records: number }

/** Counts records without keeping them; attached only in the modes that have a sink already. */
function counter (): InspectionSink & { count: number } {
  return { count: 0, write () { this.count++ } }
}

async function runOnce (mode: Mode, dir: string): Promise<Sample> {
  const world = new SimWorld({
    seed: 7,
    nodes: NODES,
    degree: 6,
    location: (index) => CITIES[index % CITIES.length],
    services: (index) => index < 3 ? [{ name: 'api', prefix: '10.42.255.1/32', check: { kind: 'tcp', host: 'svc', port: 80 }, preference: 100 }] : []
  })
  // The simulator always hashes its trace (traceHash); a production node has no sink until a trace
  // file or a /v1/inspect client asks. Detach the hash for the other modes so "off" means off.
  const bus: InspectionBus = world.bus
  if (mode !== 'sha256') (bus as unknown as { sinks: InspectionSink[] }).sinks.splice(0)
  const file = mode === 'jsonl' ? createJsonlFileSink(join(dir, 'trace.jsonl')) : undefined
  if (file !== undefined) bus.addSink(file)
  if (mode === 'memory') bus.addSink(kept)
  const records = counter()
  if (mode !== 'off') bus.addSink(records)
  await world.start()
  await world.run(WARMUP_MS)
  const before = world.network.totals().messagesReceived
  const recordsBefore = records.count
  const started = performance.now()
  const cpu = process.cpuUsage()
  await world.run(SECONDS * 1000)
  const used = process.cpuUsage(cpu)
  const wallMs = performance.now() - started
  const messages = world.network.totals().messagesReceived - before
  await world.stop()
  file?.close()
  return { wallMs, cpuMs: (used.user + used.system) / 1000, messages, records: records.count - recordsBefore }
}

/** The measured window's records, kept by one extra run to time the sinks alone. */
const kept = createMemorySink({ limit: 5_000_000 })

/** CPU µs per record for a sink fed the same records, best of three passes (the sink's own cost, no world around it). */
function sinkCost (records: InspectionEvent[], make: () => InspectionSink & { close?: () => void }): number {
  let best = Infinity
  for (let pass = 0; pass < 3; pass++) {
    const sink = make()
    const cpu = process.cpuUsage()
    for (const record of records) sink.write(record)
    sink.close?.()
    const used = process.cpuUsage(cpu)
    best = Math.min(best, (used.user + used.system) / records.length)
  }
  return best
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
const dir = mkdtempSync(join(tmpdir(), 'form-anycast-bench-inspect-cost-'))
try {
  const samples = new Map<Mode, Sample[]>(MODES.map((mode) => [mode, []]))
  // One round first to warm the JIT, not counted; then interleaved rounds, so a neighbour's load
  // on the machine falls on every mode alike.
  for (const mode of MODES) await runOnce(mode, dir)
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of MODES) samples.get(mode)!.push(await runOnce(mode, dir))
  }
  // CPU time of this (single-threaded) process is the figure: on a shared machine wall time also
  // counts the neighbours. Both are printed.
  const offCpu = median(samples.get('off')!.map((sample) => sample.cpuMs))
  console.log(`inspection cost: ${NODES} nodes, ${SECONDS} simulated s measured after ${WARMUP_MS / 1000} s of start-up, median of ${ROUNDS} interleaved rounds after one warm-up round`)
  for (const mode of MODES) {
    const list = samples.get(mode)!
    const cpuMs = median(list.map((sample) => sample.cpuMs))
    const wallMs = median(list.map((sample) => sample.wallMs))
    const messages = list[0]!.messages
    const records = median(list.map((sample) => sample.records))
    const sameWork = list.every((sample) => sample.messages === messages)
    const label = { off: 'no sink (production default)', sha256: 'sha256 of the trace (every sim run)', jsonl: 'JSONL trace file (node traceFile, sim --trace)', memory: '' }[mode]
    console.log(`  ${label}: ${cpuMs.toFixed(0)} ms CPU (${(cpuMs / offCpu * 100 - 100).toFixed(1)} % vs off; rounds ${list.map((sample) => sample.cpuMs.toFixed(0)).join(', ')}), ` +
      `${(messages / (cpuMs / 1000) / 1000).toFixed(1)} k overlay messages delivered per CPU s, ${wallMs.toFixed(0)} ms wall` +
      (sameWork ? '' : ' (message counts differ between rounds!)') +
      (mode === 'off' ? '' : `; ${(records / SECONDS).toFixed(0)} records per simulated s, ${((cpuMs - offCpu) * 1000 / records).toFixed(2)} µs CPU per record`))
  }
  // The sinks alone over the same records: steadier than differences of whole runs.
  await runOnce('memory', dir)
  const records = kept.events
  const perSimSecond = records.length / (WARMUP_MS / 1000 + SECONDS)
  const hashUs = sinkCost(records, () => createHashSink())
  const fileUs = sinkCost(records, () => createJsonlFileSink(join(dir, 'sink.jsonl')))
  const share = (us: number): string => `${(us * perSimSecond / 1000).toFixed(1)} ms CPU per simulated s = ${(us * perSimSecond / 1000 / (offCpu / SECONDS) * 100).toFixed(1)} % of the off run's CPU`
  console.log(`  sinks alone over the run's ${records.length} records (${perSimSecond.toFixed(0)} per simulated s, start-up included): sha256 ${hashUs.toFixed(2)} µs per record (${share(hashUs)}); JSONL file ${fileUs.toFixed(2)} µs per record (${share(fileUs)})`)
} finally {
  rmSync(dir, { recursive: true, force: true })
}
