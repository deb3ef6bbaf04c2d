// The Dataplane port in memory: records the table the node intends, for the simulator and tests.
// It behaves as WireGuard does where that matters to the reconciler: setting a peer replaces its
// AllowedIPs and takes each address away from any other peer that had it.
import type { DataplanePeer, DataplaneOp, DataplaneState } from '../protocols/dataplane-table.ts'
import type { Dataplane } from './ports.ts'
import { DataplaneError } from './dataplane-errors.ts'

export class MemoryDataplane implements Dataplane {
  readonly kind = 'memory'
  private readonly peers = new Map<string, DataplanePeer>()
  private readonly addresses = { interface: new Set<string>(), local: new Set<string>() }
  /** Operations applied, in order (tests read it to see that a matching table applies nothing). */
  readonly applied: DataplaneOp[] = []
  running = false

  async start (): Promise<void> { this.running = true }

  async stop (): Promise<void> {
    this.running = false
    this.peers.clear()
    this.addresses.interface.clear()
    this.addresses.local.clear()
  }

  async read (): Promise<DataplaneState> {
    if (!this.running) throw new DataplaneError('read', 'the interface is not up')
    return {
      interfaceAddresses: [...this.addresses.interface].sort(),
      localAddresses: [...this.addresses.local].sort(),
      peers: [...this.peers.values()].map((peer) => ({ ...peer, allowedIps: [...peer.allowedIps] })).sort((a, b) => a.publicKey < b.publicKey ? -1 : 1)
    }
  }

  async apply (ops: readonly DataplaneOp[]): Promise<void> {
    if (!this.running) throw new DataplaneError('apply', 'the interface is not up')
    for (const op of ops) {
      this.applied.push(op)
      if (op.op === 'peer.remove') { this.peers.delete(op.publicKey); continue }
      if (op.op === 'peer.set') {
        const taken = new Set(op.peer.allowedIps)
        for (const [key, peer] of this.peers) {
          if (key !== op.peer.publicKey) this.peers.set(key, { ...peer, allowedIps: peer.allowedIps.filter((ip) => !taken.has(ip)) })
        }
        const previous = this.peers.get(op.peer.publicKey)
        const endpoint = op.peer.endpoint ?? previous?.endpoint
        this.peers.set(op.peer.publicKey, { publicKey: op.peer.publicKey, allowedIps: [...op.peer.allowedIps], keepaliveS: op.peer.keepaliveS, ...(endpoint === undefined ? {} : { endpoint }) })
        continue
      }
      if (op.op === 'address.add') this.addresses[op.scope].add(op.address)
      else this.addresses[op.scope].delete(op.address)
    }
  }

  /** A hand change behind the reconciler's back (tests): remove a peer, as `wg set … remove` would. */
  tamperRemovePeer (publicKey: string): void { this.peers.delete(publicKey) }
  tamperAddAllowedIp (publicKey: string, cidr: string): void {
    const peer = this.peers.get(publicKey)
    if (peer !== undefined) this.peers.set(publicKey, { ...peer, allowedIps: [...peer.allowedIps, cidr] })
  }
}
