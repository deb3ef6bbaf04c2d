// The simulated world: many NodeHosts — the production assembly — on one virtual clock, one
// seeded PRNG and one simulated overlay. Nothing here is a model of a node; only the network and
// time are simulated. Same seed and code, same trace, byte for byte.
import { VirtualClock } from '../src/runtime/clock.ts'
import { createRandom } from '../src/runtime/random.ts'
import { SimNetwork } from '../src/runtime/sim-network.ts'
import { InspectionBus, createHashSink, type InspectionSink } from '../src/runtime/inspection.ts'
import { createMemoryLogger } from '../src/runtime/logger.ts'
import { createMemoryMetrics } from '../src/runtime/metrics.ts'
import { defaultNodeTiming, NodeHost } from '../src/runtime/node.ts'
import { defaultPeerSessionConfig, type PeerSessionConfig } from '../src/actors/peer-session.ts'
import type { PeerId } from '../src/runtime/ports.ts'
import { KeyDirectory, createSimSigner } from '../src/runtime/signing.ts'
import { createSimProber, type ServiceOracle } from '../src/runtime/probers.ts'
import type { ServiceConfig } from '../src/runtime/config.ts'

export interface WorldOptions {
  seed: number
  nodes: number
  /** Average overlay degree of the random neighbour graph. */
  degree?: number
  latencyMs?: number
  lossRate?: number
  session?: Partial<PeerSessionConfig>
  heartbeatIntervalMs?: number
  /** Extra inspection sinks (trace file, memory). */
  sinks?: InspectionSink[]
  /** Services each node serves (by node index); none by default. */
  services?: (index: number, id: PeerId) => ServiceConfig[]
  /** One-way latency between two nodes; default a constant latencyMs. */
  latency?: (a: PeerId, b: PeerId) => number
  /** Overrides of the control-plane timing. */
  timing?: Partial<typeof defaultNodeTiming>
}

export class SimWorld {
  readonly clock = new VirtualClock()
  readonly network: SimNetwork
  readonly bus = new InspectionBus()
  readonly hosts = new Map<PeerId, NodeHost>()
  readonly keys = new KeyDirectory({ fromPeerIds: false })
  /** Services the world has taken down, as `<node>/<service>`; their checks fail. */
  readonly downServices = new Set<string>()
  private readonly hash = createHashSink()

  constructor (readonly options: WorldOptions) {
    const random = createRandom(options.seed)
    this.network = new SimNetwork({
      clock: this.clock,
      random: random.fork('network'),
      latencyMs: options.latency ?? (() => options.latencyMs ?? 20),
      lossRate: options.lossRate ?? 0
    })
    this.bus.addSink(this.hash)
    for (const sink of options.sinks ?? []) this.bus.addSink(sink)
    const ids = Array.from({ length: options.nodes }, (_, index) => `n${String(index).padStart(5, '0')}`)
    for (const id of ids) {
      const overlay = this.network.createOverlay(id)
      const services = options.services?.(ids.indexOf(id), id) ?? []
      // A simulated service check answers from the world: up unless the scenario took it down.
      const oracle: ServiceOracle = (target) => {
        const service = services.find((candidate) => JSON.stringify(candidate.check) === JSON.stringify(target))
        return { up: service !== undefined && !this.downServices.has(`${id}/${service.name}`), latencyMs: 1 }
      }
      this.hosts.set(id, new NodeHost({
        clock: this.clock,
        random: random.fork(`node:${id}`),
        overlay,
        logger: createMemoryLogger({ limit: 100, bindings: { node: id } }),
        metrics: createMemoryMetrics(),
        inspector: this.bus,
        signer: createSimSigner(id, random.fork(`key:${id}`), this.keys),
        verifier: this.keys,
        makeProber: (peers) => createSimProber(peers, this.clock, oracle)
      }, {
        name: id,
        networkId: 'sim',
        session: { ...defaultPeerSessionConfig, ...options.session },
        ...defaultNodeTiming,
        ...options.timing,
        heartbeatIntervalMs: options.heartbeatIntervalMs ?? defaultNodeTiming.heartbeatIntervalMs,
        neighbours: [],
        services
      }))
    }
  }

  /** sha256 of the JSONL inspection trace so far. */
  traceHash (): string { return this.hash.digest() }
  get traceLines (): number { return this.hash.lines }

  async start (): Promise<void> {
    for (const host of this.hosts.values()) await host.start()
    this.network.connectRandomGraph([...this.hosts.keys()], this.options.degree ?? 4)
    await settle()
  }

  /**
   * Advance virtual time by `ms`, one due instant at a time, letting promise continuations (dials,
   * publishes) run between instants as they would between real timer callbacks.
   */
  async run (ms: number): Promise<void> {
    const end = this.clock.now() + ms
    for (let guard = 0; guard < 50_000_000; guard++) {
      const next = this.clock.nextDueMs()
      if (next === undefined || next > end) break
      this.clock.runUntil(next)
      await settle()
    }
    this.clock.runUntil(end)
    await settle()
  }

  crash (id: PeerId): void { this.network.crash(id) }

  /** Stops every node, running virtual time meanwhile: a stopping node drains on the clock. */
  async stop (): Promise<void> {
    let stopped = false
    const stopping = Promise.all([...this.hosts.values()].map(async (host) => await host.stop())).then(() => { stopped = true })
    for (let guard = 0; !stopped && guard < 10_000; guard++) await this.run(10)
    await stopping
  }
}

/** Lets every queued promise continuation run: a macrotask turn runs only after microtasks drain. */
export async function settle (): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve))
}
