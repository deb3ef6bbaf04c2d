// Runs the Overlay compliance suite on the simulated overlay. Virtual time advances whenever the test
// is waiting (a pump fires the next due timers on each macrotask), so 15 virtual seconds of waiting
// cost milliseconds of wall time and promises like `await openStream()` resolve on their own.
import { VirtualClock } from '../../src/runtime/clock.ts'
import type { Overlay } from '../../src/runtime/ports.ts'
import { createRandom } from '../../src/runtime/random.ts'
import { SimNetwork } from '../../src/runtime/sim-network.ts'
import { type OverlayTestWorld, overlayCompliance } from './overlay-compliance.ts'

const SEED = 42
/** Real-time pause when no timer is pending, so an idle pump doesn't spin. */
const IDLE_WAIT_MS = 1

class SimWorld implements OverlayTestWorld {
  readonly name = `sim (seed ${SEED})`
  readonly clock = new VirtualClock()
  readonly network = new SimNetwork({ clock: this.clock, random: createRandom(SEED), jitter: { ms: 2 } })
  readonly disconnectTimeoutMs = this.network.connectionTimeoutMs + 5000
  private closed = false
  private created = 0

  constructor () {
    this.pump()
  }

  /** Fire every timer due at the next due time, then yield to the test's continuations. */
  private pump (): void {
    if (this.closed) return
    const due = this.clock.nextDueMs()
    if (due === undefined) {
      setTimeout(() => { this.pump() }, IDLE_WAIT_MS)
      return
    }
    this.clock.runUntil(Math.max(due, this.clock.now()))
    setImmediate(() => { this.pump() })
  }

  async createNodes (n: number, options: { connected?: boolean } = {}): Promise<Overlay[]> {
    const nodes = Array.from({ length: n }, () => this.network.createOverlay(`sim-${this.created++}`))
    for (const node of nodes) await node.start()
    if (options.connected !== false) {
      const dials: Array<Promise<void>> = []
      for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) dials.push(nodes[i]!.dial(nodes[j]!.peerId))
      await Promise.all(dials)
    }
    return nodes
  }

  async waitFor (predicate: () => boolean, options: { timeoutMs: number, label: string }): Promise<void> {
    const deadline = this.clock.now() + options.timeoutMs
    while (!predicate()) {
      if (this.clock.now() >= deadline) throw new Error(`waitFor timed out after ${options.timeoutMs} virtual ms: ${options.label}`)
      await this.sleep(10)
    }
  }

  async sleep (ms: number): Promise<void> {
    await new Promise<void>((resolve) => { this.clock.setTimeout(resolve, ms) })
  }

  async crash (node: Overlay): Promise<void> {
    this.network.crash(node.peerId)
  }

  async close (): Promise<void> {
    for (const id of this.network.nodeIds()) await this.network.overlay(id)!.stop()
    this.closed = true
  }
}

overlayCompliance(async () => new SimWorld(), `sim (seed ${SEED})`)
