// GeoDNS throughput and latency on loopback: geo + health + ECS answers, the target of DESIGN.md §5
// (≥ 60,000 queries/s per core, p99 ≤ 1 ms at half load).
// Run: node --import tsx bench/dns.ts [--seconds 5] [--names 300] [--concurrency 64] [--sockets 4]
//        [--pacing timer|busy] [--rate QPS]
//
// The server runs in a child process (this file with --serve), so its CPU is its own and measured
// with process.cpuUsage(); the load generator is this process. The server is the real stack:
// createDnsServer (node:dgram) → decodeQuery → createAnswerer → the node agent's own zone
// (createNodeZone, src/runtime/zone-view.ts) over a view of 97 nodes serving `--names` services of
// 8 origins each: it looks the ECS address up in a GeoIP database (geoIpFromBuffer over an .mmdb of
// 1,024 networks built with writeMmdb, so the maxmind reader is on the path) and ranks the name's
// origins with chooseNearest (haversine score, failed origins excluded, degraded penalised), 3 A
// records per answer, prom-client counters. Every query carries EDNS0 with an ECS /24 drawn from those networks.
// No answer cache: every query is located and ranked afresh.
//
// - full load: closed loop, `concurrency` queries always in flight over `sockets` UDP sockets.
//   dns.queries_per_sec, dns.p50_us, dns.p99_us; dns.server_cpu_pct is the server process's CPU
//   over the window (100 = one core), and dns.queries_per_server_cpu_sec = answers ÷ server CPU
//   seconds, the per-core figure (it does not depend on the load generator keeping up).
// - half load: open loop at half the full-load rate (see openLoop for the pacing); latency is from
//   send to reply as the client sees it (both processes' event loops included).
// Latencies are from a 1 µs histogram. On 2 cores client and server each get about one (on a quiet
// 2-vCPU host the server saturates its core at full load); loopback softirq work and any other busy
// process share the same cores, which shows in the tails (compare a bare UDP echo server's).
import { fork, type ChildProcess } from 'node:child_process'
import { createSocket, type Socket } from 'node:dgram'
import { cpus } from 'node:os'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import dnsPacket from 'dns-packet'
import type { ZoneView } from '../src/protocols/dns-answer.ts'
import { createDnsServer } from '../src/runtime/dns-server.ts'
import { geoIpFromBuffer } from '../src/runtime/geoip.ts'
import { createSilentLogger } from '../src/runtime/logger.ts'
import { createPromMetrics } from '../src/runtime/metrics.ts'
import { writeMmdb } from '../src/runtime/mmdb-writer.ts'
import { createNodeZone, type ZoneMember, type ZoneOrigin } from '../src/runtime/zone-view.ts'
import { positiveFlag } from './flags.ts'

const { values } = parseArgs({
  options: {
    serve: { type: 'boolean', default: false },
    seconds: { type: 'string', default: '5' },
    names: { type: 'string', default: '300' },
    concurrency: { type: 'string', default: '64' },
    sockets: { type: 'string', default: '4' },
    pacing: { type: 'string', default: 'timer' },
    rate: { type: 'string' }
  }
})
const SECONDS = positiveFlag('seconds', values.seconds)
const NAMES = positiveFlag('names', values.names)
const CONCURRENCY = positiveFlag('concurrency', values.concurrency)
const SOCKETS = Math.min(positiveFlag('sockets', values.sockets), CONCURRENCY)
if (values.pacing !== 'timer' && values.pacing !== 'busy') { console.error(`--pacing must be timer or busy, got ${values.pacing}`); process.exit(2) }
const BUSY_PACING = values.pacing === 'busy'
/** Open-loop rate; default half the measured full-load rate. */
const FIXED_RATE = values.rate === undefined ? undefined : positiveFlag('rate', values.rate)
const WARMUP_MS = 1000
const NETWORKS = 1024
const ORIGINS_PER_NAME = 8
const NODES = 97
const QUERY_TEMPLATES = 4096
const RESEND_AFTER_MS = 1000
const HISTOGRAM_US = 100_000

const CITIES = [
  { lat: 52.37, lon: 4.9, country: 'NL' }, { lat: 50.11, lon: 8.68, country: 'DE' }, { lat: 51.51, lon: -0.13, country: 'GB' },
  { lat: 48.86, lon: 2.35, country: 'FR' }, { lat: 40.71, lon: -74.0, country: 'US', subdivision: 'NY' }, { lat: 37.77, lon: -122.42, country: 'US', subdivision: 'CA' },
  { lat: 41.88, lon: -87.63, country: 'US', subdivision: 'IL' }, { lat: 43.65, lon: -79.38, country: 'CA' }, { lat: -23.55, lon: -46.63, country: 'BR' },
  { lat: 35.68, lon: 139.69, country: 'JP' }, { lat: 1.35, lon: 103.82, country: 'SG' }, { lat: -33.87, lon: 151.21, country: 'AU' },
  { lat: 19.08, lon: 72.88, country: 'IN' }, { lat: 37.57, lon: 126.98, country: 'KR' }, { lat: -26.2, lon: 28.05, country: 'ZA' },
  { lat: 59.33, lon: 18.07, country: 'SE' }
]

/** The i-th client network: 20.0.0.0/16 … 23.255.0.0/16. */
const network = (index: number): [number, number] => [20 + (index >> 8), index & 0xff]

// ---------------------------------------------------------------------------------------------
// Server (child process)

function benchZone (): ZoneView {
  const mmdb = writeMmdb({
    databaseType: 'bench-city',
    records: Array.from({ length: NETWORKS }, (_, index) => {
      const [a, b] = network(index)
      const city = CITIES[(index * 7) % CITIES.length]
      return { network: `${a}.${b}.0.0/16`, data: { latitude: city.lat + (index % 10) / 10, longitude: city.lon - (index % 7) / 10, country_code: city.country } }
    })
  })
  // The node agent's zone (createNodeZone) over a fixed view of a network: NODES members with
  // addresses and locations, NAMES services of ORIGINS_PER_NAME origins each, some failed or
  // degraded. The zone re-reads this source every 250 ms, as it reads a live node's route table.
  const members: ZoneMember[] = Array.from({ length: NODES }, (_, n) => {
    const city = CITIES[(n * 3) % CITIES.length]
    return { id: `node-${n}`, name: `node-${n}`, address: `100.64.${n >> 8}.${(n & 0xff) + 1}`, location: { lat: city.lat, lon: city.lon, country: city.country } }
  })
  const origins: ZoneOrigin[] = []
  for (let s = 0; s < NAMES; s++) {
    for (let k = 0; k < ORIGINS_PER_NAME; k++) {
      const member = members[(s * ORIGINS_PER_NAME + k * 13) % NODES]
      const health = k === 0 && s % 5 === 0 ? 'failed' : k === 1 && s % 3 === 0 ? 'degraded' : 'healthy'
      origins.push({ id: member.id, service: `svc-${s}`, health, load: ((s + k) % 10) / 10, location: member.location! })
    }
  }
  return createNodeZone({
    source: { origins: () => origins, members: () => members },
    now: () => performance.now(),
    geoip: geoIpFromBuffer(mmdb, 'bench.mmdb'),
    zone: 'anycast.form',
    ttlS: 30,
    failoverTtlS: 5,
    failoverWindowMs: 30_000,
    maxAnswers: 3
  })
}

async function serve (): Promise<void> {
  const server = createDnsServer({ zone: benchZone(), logger: createSilentLogger(), metrics: createPromMetrics(), port: 0 })
  await server.start()
  process.on('disconnect', () => { process.exit(0) }) // the load generator died: do not linger
  process.on('message', (message) => {
    if (message === 'cpu') process.send?.({ cpu: process.cpuUsage() })
    if (message === 'stop') void server.stop().then(() => { process.exit(0) })
  })
  process.send?.({ port: server.port })
}

// ---------------------------------------------------------------------------------------------
// Load generator

class Histogram {
  private readonly buckets = new Uint32Array(HISTOGRAM_US + 1)
  count = 0
  record (us: number): void { this.buckets[Math.min(HISTOGRAM_US, Math.max(0, Math.round(us)))]++; this.count++ }
  percentile (p: number): number {
    const target = Math.ceil(this.count * p)
    let seen = 0
    for (let us = 0; us <= HISTOGRAM_US; us++) { seen += this.buckets[us]; if (seen >= target) return us }
    return HISTOGRAM_US
  }
}

function templates (): Buffer[] {
  return Array.from({ length: QUERY_TEMPLATES }, (_, index) => {
    const [a, b] = network((index * 131) % NETWORKS)
    return dnsPacket.encode({
      type: 'query',
      id: 0,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ name: `svc-${(index * 17) % NAMES}.anycast.form`, type: 'A', class: 'IN' }],
      additionals: [{
        type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false,
        options: [{ code: 8, family: 1, sourcePrefixLength: 24, scopePrefixLength: 0, ip: `${a}.${b}.${index & 0xff}.0` }]
      }]
    })
  })
}

interface Phase { answered: number, lost: number, histogram: Histogram, elapsedMs: number, serverCpuMs: number }

async function connectSockets (port: number): Promise<Socket[]> {
  return await Promise.all(Array.from({ length: SOCKETS }, async () => {
    const socket = createSocket('udp4')
    await new Promise<void>((resolve) => { socket.connect(port, '127.0.0.1', resolve) })
    try { socket.setRecvBufferSize(4 * 1024 * 1024) } catch { /* kernel cap */ }
    return socket
  }))
}

async function serverCpuMs (child: ChildProcess): Promise<number> {
  return await new Promise((resolve) => {
    const onMessage = (message: unknown): void => {
      const cpu = (message as { cpu?: NodeJS.CpuUsage }).cpu
      if (cpu === undefined) return
      child.off('message', onMessage)
      resolve((cpu.user + cpu.system) / 1000)
    }
    child.on('message', onMessage)
    child.send('cpu')
  })
}

/** Replies that were not NOERROR with at least one answer record; reported, and the bench fails on any. */
let badReplies = 0

/** Replies on each socket: the id indexes `sentAt` (per socket); `onReply` gets the latency. */
function listen (sockets: Socket[], sentAt: Float64Array, onReply: (socket: number, id: number, latencyUs: number) => void): void {
  sockets.forEach((socket, index) => {
    socket.removeAllListeners('message')
    socket.on('message', (reply: Buffer) => {
      const id = (reply[0] << 8) | reply[1]
      const at = sentAt[index * 65_536 + id]
      if (at === 0) return // a late reply to a query already counted as lost
      sentAt[index * 65_536 + id] = 0
      // Every query names a service with healthy origins: anything but NOERROR with answers is wrong.
      if ((reply[3] & 0x0f) !== 0 || ((reply[6] << 8) | reply[7]) === 0) badReplies++
      onReply(index, id, (performance.now() - at) * 1000)
    })
  })
}

async function measure (child: ChildProcess, durationMs: number, run: (recording: { on: boolean }, phase: Phase) => () => Promise<void>): Promise<Phase> {
  const phase: Phase = { answered: 0, lost: 0, histogram: new Histogram(), elapsedMs: 0, serverCpuMs: 0 }
  const recording = { on: false }
  const finish = run(recording, phase)
  await new Promise((resolve) => setTimeout(resolve, WARMUP_MS))
  const cpuBefore = await serverCpuMs(child)
  const startedAt = performance.now()
  recording.on = true
  await new Promise((resolve) => setTimeout(resolve, durationMs))
  recording.on = false
  phase.elapsedMs = performance.now() - startedAt
  phase.serverCpuMs = await serverCpuMs(child) - cpuBefore
  await finish()
  return phase
}

/** Closed loop: CONCURRENCY queries always in flight; a reply triggers the next query in its slot. */
function closedLoop (sockets: Socket[], queries: Buffer[]) {
  return (recording: { on: boolean }, phase: Phase): (() => Promise<void>) => {
    const sentAt = new Float64Array(SOCKETS * 65_536)
    const buffers = Array.from({ length: CONCURRENCY }, () => Buffer.alloc(queries[0].length + 64))
    let running = true
    let cursor = 0
    const send = (slot: number): void => {
      const socket = slot % SOCKETS
      const query = queries[cursor++ % queries.length]
      const buffer = buffers[slot].subarray(0, query.length)
      query.copy(buffer)
      buffer[0] = slot >> 8
      buffer[1] = slot & 0xff
      sentAt[socket * 65_536 + slot] = performance.now()
      sockets[socket].send(buffer)
    }
    listen(sockets, sentAt, (_, slot, latencyUs) => {
      if (recording.on) { phase.answered++; phase.histogram.record(latencyUs) }
      if (running) send(slot)
    })
    const sweep = setInterval(() => {
      const now = performance.now()
      for (let slot = 0; slot < CONCURRENCY; slot++) {
        const index = (slot % SOCKETS) * 65_536 + slot
        if (sentAt[index] !== 0 && now - sentAt[index] > RESEND_AFTER_MS) { if (recording.on) phase.lost++; send(slot) }
      }
    }, 200)
    for (let slot = 0; slot < CONCURRENCY; slot++) send(slot)
    return async () => { running = false; clearInterval(sweep); await new Promise((resolve) => setTimeout(resolve, 200)) }
  }
}

/**
 * Open loop: `rate` queries per second. --pacing timer (default) sends the batch due every
 * millisecond (the finest timer Node has): a harsher arrival pattern than Poisson at the same rate,
 * and replies wait while the client sends a batch, so the tail is conservative. --pacing busy checks
 * on every turn of the event loop and spreads queries finely, but burns the client's core: on a
 * machine with other busy processes the server then loses its core to the scheduler now and then.
 */
function openLoop (sockets: Socket[], queries: Buffer[], rate: number) {
  return (recording: { on: boolean }, phase: Phase): (() => Promise<void>) => {
    const sentAt = new Float64Array(SOCKETS * 65_536)
    // A ring of send buffers, reused long after their datagram left: no allocation per query, so the
    // client's own garbage collection does not show up as server latency.
    const buffers = Array.from({ length: QUERY_TEMPLATES }, (_, index) => Buffer.from(queries[index % queries.length]))
    let running = true
    let sent = 0
    let id = 0
    const startedAt = performance.now()
    listen(sockets, sentAt, (_, __, latencyUs) => { if (recording.on) { phase.answered++; phase.histogram.record(latencyUs) } })
    const tick = (): void => {
      if (!running) return
      const due = Math.floor((performance.now() - startedAt) * rate / 1000)
      while (sent < due) {
        const socket = sent % SOCKETS
        id = (id + 1) & 0xffff
        const buffer = buffers[sent % buffers.length]
        buffer[0] = id >> 8
        buffer[1] = id & 0xff
        const index = socket * 65_536 + id
        if (sentAt[index] !== 0 && recording.on) phase.lost++
        sentAt[index] = performance.now()
        sockets[socket].send(buffer)
        sent++
      }
      if (BUSY_PACING) setImmediate(tick)
      else setTimeout(tick, 1)
    }
    setTimeout(tick, 1)
    return async () => { running = false; await new Promise((resolve) => setTimeout(resolve, 200)) }
  }
}

function report (prefix: string, phase: Phase): void {
  const qps = phase.answered / (phase.elapsedMs / 1000)
  console.log(`${prefix}queries_per_sec ${Math.round(qps)}`)
  console.log(`${prefix}p50_us ${phase.histogram.percentile(0.5)}`)
  console.log(`${prefix}p99_us ${phase.histogram.percentile(0.99)}`)
  console.log(`${prefix}server_cpu_pct ${(100 * phase.serverCpuMs / phase.elapsedMs).toFixed(0)}`)
  console.log(`${prefix}queries_per_server_cpu_sec ${Math.round(phase.answered / (phase.serverCpuMs / 1000))}`)
  console.log(`${prefix}lost ${phase.lost}`)
}

async function main (): Promise<void> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', '--names', String(NAMES)], { execArgv: process.execArgv, stdio: 'inherit' })
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (message) => { resolve((message as { port: number }).port) })
    child.once('exit', (code) => { reject(new Error(`server exited with ${code}`)) })
  })
  const sockets = await connectSockets(port)
  const queries = templates()
  console.log(`# ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}; ${NAMES} names × ${ORIGINS_PER_NAME} origins, ${NETWORKS} GeoIP networks, ECS /24 on every query; ${CONCURRENCY} in flight over ${SOCKETS} sockets; ${SECONDS} s per phase after ${WARMUP_MS} ms warm-up`)
  const full = await measure(child, SECONDS * 1000, closedLoop(sockets, queries))
  report('dns.', full)
  const halfRate = FIXED_RATE ?? Math.round(full.answered / (full.elapsedMs / 1000) / 2)
  const half = await measure(child, SECONDS * 1000, openLoop(sockets, queries, halfRate))
  console.log(`# half load: open loop at ${halfRate} queries/s (${FIXED_RATE === undefined ? 'half the full-load rate' : 'set by --rate'}), ${BUSY_PACING ? 'busy' : '1 ms timer'} pacing`)
  report('dns.half_load.', half)
  console.log(`dns.bad_replies ${badReplies}`)
  for (const socket of sockets) socket.close()
  child.send('stop')
  await new Promise((resolve) => child.once('exit', resolve))
  if (badReplies > 0) { console.error(`bench/dns: ${badReplies} replies were not NOERROR with answers`); process.exitCode = 1 }
}

if (values.serve === true) await serve()
else await main()
