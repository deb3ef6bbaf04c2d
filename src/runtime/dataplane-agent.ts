// Assembles the dataplane of a running node: publishes this node's WireGuard public key and
// endpoint in the replicated state (`nodes/<node id>`), learns every other node's from there and
// their overlay addresses from the unicast leases, and reconciles the interface on every route
// change, every change to nodes or leases, and periodically.
import { desiredDataplane, type DataplanePeerInfo, type DesiredDataplane } from '../protocols/dataplane-table.ts'
import { isLive, parseLeaseKey, parseUnicastLease } from '../protocols/ipam.ts'
import type { JsonObject } from '../protocols/state-crdt.ts'
import { DataplaneReconciler } from './dataplane-reconciler.ts'
import type { NodeHost } from './node.ts'
import type { Dataplane } from './ports.ts'

/** The `nodes/<node id>` record this node writes. */
export interface WireguardNodeRecord { name: string, wireguard: { publicKey: string, endpoint?: string } }

const WIREGUARD_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/
const ENDPOINT = /^[0-9a-fA-F.:[\]]{2,64}:\d{1,5}$/

/**
 * Peers from the `nodes` and `leases` collections. Records this version cannot read are skipped,
 * and so is a `nodes/<id>` record whose signed author is not `<id>`: any member may write any key,
 * and a key published for another node would pull that node's traffic into the writer's tunnel.
 */
export function dataplanePeers (nodes: ReadonlyArray<readonly [string, JsonObject]>, leases: ReadonlyArray<readonly [string, JsonObject]>, nowMs: number, authorOf: (nodeId: string) => string | undefined): DataplanePeerInfo[] {
  const overlay = new Map<string, string>()
  for (const [key, value] of leases) {
    try {
      const parsed = parseLeaseKey(key)
      if (parsed.kind !== 'unicast') continue
      const lease = parseUnicastLease(value)
      if (isLive(lease, nowMs)) overlay.set(lease.holder, parsed.address)
    } catch { /* another version's register */ }
  }
  const peers: DataplanePeerInfo[] = []
  for (const [nodeId, value] of nodes) {
    if (authorOf(nodeId) !== nodeId) continue
    const wireguard = value.wireguard as Record<string, unknown> | undefined
    const publicKey = wireguard?.publicKey
    if (typeof publicKey !== 'string' || !WIREGUARD_KEY.test(publicKey)) continue
    const endpoint = wireguard?.endpoint
    const address = overlay.get(nodeId)
    peers.push({
      nodeId,
      publicKey,
      ...(typeof value.name === 'string' ? { name: value.name } : {}),
      ...(typeof endpoint === 'string' && ENDPOINT.test(endpoint) ? { endpoint } : {}),
      ...(address === undefined ? {} : { overlayAddress: address })
    })
  }
  return peers
}

export interface DataplaneAgentInit {
  host: NodeHost
  dataplane: Dataplane
  publicKey: string
  endpoint?: string
  /** Only prefixes inside the anycast pool are installed (desiredDataplane). */
  anycastCidr: string
  intervalMs: number
}

export interface DataplaneAgent {
  reconciler: DataplaneReconciler
  stop(): Promise<void>
}

/** Starts the dataplane of a started node; needs the node's replicated state (leases, nodes). */
export async function startDataplaneAgent (init: DataplaneAgentInit): Promise<DataplaneAgent> {
  const { host } = init
  const replicator = host.replicator
  const leases = host.leases
  if (replicator === undefined || leases === undefined) throw new Error('the dataplane needs the replicated state (state.enabled)')
  const { clock, logger, metrics } = host.components
  const self = host.peerId
  const record: WireguardNodeRecord = { name: host.config.name, wireguard: { publicKey: init.publicKey, ...(init.endpoint === undefined ? {} : { endpoint: init.endpoint }) } }
  const desired = (): DesiredDataplane => desiredDataplane({
    self,
    anycastCidr: init.anycastCidr,
    overlayAddress: leases.unicastAddress(),
    routes: host.controlPlane.routes(),
    peers: dataplanePeers(replicator.state.entries('nodes'), replicator.state.entries('leases'), clock.now(), (nodeId) => replicator.state.getOp('nodes', nodeId)?.op.author)
  })
  const reconciler = new DataplaneReconciler({ clock, logger: logger.child({ component: 'dataplane' }), metrics, dataplane: init.dataplane }, { intervalMs: init.intervalMs, desired })
  let stopped = false
  const publish = async (): Promise<void> => {
    const current = replicator.get('nodes', self)
    if (JSON.stringify(current) === JSON.stringify(record)) return
    try { await replicator.write('nodes', self, record as unknown as JsonObject) } catch (error) {
      logger.warn('publishing the WireGuard key failed; retried at the next reconcile', { error: (error as Error).message })
    }
  }
  await publish()
  await reconciler.start()
  host.controlPlane.onRouteChange(() => { if (!stopped) reconciler.trigger() })
  const unsubscribe = replicator.onChange((change) => {
    const collection = change.signed.op.collection
    if (collection === 'nodes' || collection === 'leases') reconciler.trigger()
    if (collection === 'nodes' && change.signed.op.key === self) void publish()
  })
  return {
    reconciler,
    stop: async () => {
      if (stopped) return
      stopped = true
      unsubscribe()
      await reconciler.stop()
    }
  }
}
