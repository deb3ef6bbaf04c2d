// Simulated overlay throughput and gossip quality.
// Run: node --import tsx bench/sim-overlay.ts [--seed N] [--skip-10k]
//
// - sim_overlay.messages_per_sec_<N>_nodes: simulated RPCs delivered (gossip messages, IHAVE/IWANT,
//   control) per wall second, N nodes on a random graph of degree 8, D = 6, 20 publishes per
//   virtual second from random nodes.
// - sim_overlay.wall_sec_per_sim_hour_idle_10000_nodes: heartbeats alone, extrapolated from 60 s.
// - sim_overlay.gossip_ms_to_99_9pct_1000_nodes_10pct_loss: worst over seeds of the time for one
//   message to reach 99.9 % of 1,000 nodes at 10 % loss.
// - sim_overlay.bytes_sent_per_copy_1000_nodes: bytes sent for one message ÷ (nodes × one copy).
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { VirtualClock } from '../src/runtime/clock.ts'
import { createRandom } from '../src/runtime/random.ts'
import { SimNetwork } from '../src/runtime/sim-network.ts'
import { RPC_HEADER_BYTES, type SimOverlay } from '../src/runtime/sim-overlay.ts'

const { values } = parseArgs({ options: { seed: { type: 'string', default: '1' }, 'skip-10k': { type: 'boolean', default: false } } })
const SEED = Number(values.seed)
if (!Number.isSafeInteger(SEED)) {
  console.error(`--seed must be an integer, got ${values.seed}`)
  process.exit(2)
}
const TOPIC = 'routes'
const DEGREE = 8
const PAYLOAD_BYTES = 100
const MESH_WARMUP_MS = 5000

interface Net {
  clock: VirtualClock
  network: SimNetwork
  nodes: SimOverlay[]
}

function build (n: number, seed: number, lossRate = 0): Net {
  const clock = new VirtualClock()
  const network = new SimNetwork({ clock, random: createRandom(seed), jitter: { ms: 5 } })
  const nodes = Array.from({ length: n }, (_, i) => network.createOverlay(`n${i}`))
  for (const node of nodes) void node.start()
  network.connectRandomGraph(nodes.map((node) => node.peerId), DEGREE)
  clock.advance(MESH_WARMUP_MS)
  network.setLoss(lossRate)
  return { clock, network, nodes }
}

function throughput (n: number, virtualSeconds: number, publishesPerSecond: number): void {
  const setupStart = performance.now()
  const { clock, network, nodes } = build(n, SEED)
  for (const node of nodes) node.subscribe(TOPIC, () => {})
  clock.advance(MESH_WARMUP_MS)
  const setupMs = performance.now() - setupStart
  const random = createRandom(SEED).fork('bench:publishers')
  const before = network.totals().messagesReceived
  const start = performance.now()
  const stepMs = 1000 / publishesPerSecond
  for (let k = 0; k < virtualSeconds * publishesPerSecond; k++) {
    void nodes[random.int(n)]!.publish(TOPIC, new Uint8Array(PAYLOAD_BYTES))
    clock.advance(stepMs)
  }
  const wallMs = performance.now() - start
  const delivered = network.totals().messagesReceived - before
  console.log(`sim_overlay.messages_per_sec_${n}_nodes ${Math.round(delivered / (wallMs / 1000))}`)
  console.log(`# ${n} nodes: setup ${setupMs.toFixed(0)} ms; ${virtualSeconds} virtual s, ${delivered} RPCs delivered in ${wallMs.toFixed(0)} ms wall; heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB`)
}

function idleHour (n: number): void {
  const { clock, nodes } = build(n, SEED)
  for (const node of nodes) node.subscribe(TOPIC, () => {})
  const start = performance.now()
  clock.advance(60_000)
  const wallMs = performance.now() - start
  console.log(`sim_overlay.wall_sec_per_sim_hour_idle_${n}_nodes ${(wallMs * 60 / 1000).toFixed(1)}`)
}

/** One message from n0; returns ms to 99.9 % coverage (undefined if never) and bytes ÷ one copy. */
function oneMessage (n: number, seed: number, lossRate: number): { msTo999: number | undefined, coverage: number, bytesPerCopy: number } {
  const { clock, network, nodes } = build(n, seed)
  const receivedAt: number[] = []
  for (const node of nodes) node.subscribe(TOPIC, () => { receivedAt.push(clock.now()) })
  clock.advance(MESH_WARMUP_MS)
  network.setLoss(lossRate)
  const bytesBefore = network.totals().bytesSent
  const publishedAt = clock.now()
  void nodes[0]!.publish(TOPIC, new Uint8Array(PAYLOAD_BYTES))
  clock.advance(10_000)
  const reached = receivedAt.length + 1
  const needed = Math.ceil(0.999 * n) - 1
  const msTo999 = receivedAt.length >= needed ? receivedAt.sort((a, b) => a - b)[needed - 1]! - publishedAt : undefined
  const oneCopy = RPC_HEADER_BYTES + TOPIC.length + PAYLOAD_BYTES
  return { msTo999, coverage: reached / n, bytesPerCopy: (network.totals().bytesSent - bytesBefore) / (n * oneCopy) }
}

function gossipQuality (): void {
  const seeds = [SEED, SEED + 1, SEED + 2, SEED + 3, SEED + 4]
  const lossy = seeds.map((seed) => oneMessage(1000, seed, 0.1))
  const worst = lossy.some((r) => r.msTo999 === undefined) ? 'never' : Math.max(...lossy.map((r) => r.msTo999!)).toFixed(0)
  console.log(`sim_overlay.gossip_ms_to_99_9pct_1000_nodes_10pct_loss ${worst}`)
  console.log(`# per seed ${seeds.join(',')}: ${lossy.map((r) => `${r.msTo999?.toFixed(0) ?? 'never'} ms, coverage ${(r.coverage * 100).toFixed(1)}%`).join('; ')}`)
  const clean = oneMessage(1000, SEED, 0)
  console.log(`sim_overlay.bytes_sent_per_copy_1000_nodes ${clean.bytesPerCopy.toFixed(2)}`)
  console.log(`# one ${PAYLOAD_BYTES}-byte message, copy = ${RPC_HEADER_BYTES + TOPIC.length + PAYLOAD_BYTES} bytes with header; includes IHAVE/IWANT over the following 10 s`)
}

console.log(`# seed ${SEED}, degree ${DEGREE}, D 6, latency 20 ms + 0–5 ms jitter, node ${process.version}`)
throughput(1000, 60, 20)
if (values['skip-10k'] !== true) {
  throughput(10_000, 10, 20)
  idleHour(10_000)
}
gossipQuality()
