// The dataplane table: what a node's tunnel interface should hold, computed from its route table
// and the peers it knows, and the diff that turns what the interface has into that.
//
// WireGuard's cryptokey routing lets one address sit in only one peer's AllowedIPs (the WireGuard
// paper, §2), which is exactly anycast: each anycast prefix goes in the AllowedIPs of the peer its
// best route's next hop names, beside that peer's own overlay /32 (formnet). A prefix whose best
// route is this node is delivered locally (bound on loopback), never sent into the tunnel.
import type { RouteEntry } from './routes.ts'
import { parsePrefix, prefixWithin } from './cidr.ts'

/** formnet's keepalive, so NAT mappings outlive idle periods (FORMATION-FACTS.md). */
export const DEFAULT_KEEPALIVE_S = 25

export interface DataplanePeer {
  /** WireGuard public key, base64. */
  publicKey: string
  /** host:port, when known; a peer without one waits for the other side to reach us. */
  endpoint?: string
  /** CIDRs, sorted, no duplicates. */
  allowedIps: string[]
  keepaliveS: number
}

/** What the interface and loopback hold (desired or read back). */
export interface DataplaneState {
  /** Addresses on the tunnel interface: this node's overlay /32. */
  interfaceAddresses: string[]
  /** Anycast addresses this node serves (its best route is itself), bound on loopback. */
  localAddresses: string[]
  /** Sorted by public key. */
  peers: DataplanePeer[]
}

export type DataplaneOp =
  | { op: 'peer.set', peer: DataplanePeer }
  | { op: 'peer.remove', publicKey: string }
  | { op: 'address.add' | 'address.remove', scope: 'interface' | 'local', address: string }

/** A node the dataplane may send to, as the replicated state describes it. */
export interface DataplanePeerInfo {
  nodeId: string
  name?: string
  publicKey: string
  endpoint?: string
  /** The node's overlay address (its unicast lease), without a length. */
  overlayAddress?: string
}

/** Where packets for one anycast prefix go, for `status` and the proxy. */
export interface DataplaneRoute {
  prefix: string
  service: string
  origin: string | undefined
  nextHop: string | undefined
  /**
   * 'local': bound here; 'peer': in that peer's AllowedIPs; 'none': no usable origin, its next
   * hop has no key yet, or the prefix lies outside the anycast pool (`reason` says which).
   */
  via: 'local' | 'peer' | 'none'
  reason?: 'no-origin' | 'no-key' | 'outside-pool'
  publicKey?: string
}

export interface DesiredDataplane {
  state: DataplaneState
  routes: DataplaneRoute[]
}

export interface DesiredDataplaneInput {
  self: string
  overlayAddress: string | undefined
  routes: readonly RouteEntry[]
  peers: readonly DataplanePeerInfo[]
  /**
   * Only prefixes inside this pool are installed. Origin validation (a live anycast lease) covers
   * only the pool, so a prefix outside it — 0.0.0.0/0, another node's overlay address — would let
   * any member pull traffic into its tunnel.
   */
  anycastCidr: string
  keepaliveS?: number
}

const byText = (a: string, b: string): number => a < b ? -1 : a > b ? 1 : 0

function hostPrefix (address: string): string {
  return address.includes('/') ? address : `${address}/${address.includes(':') ? 128 : 32}`
}

/** The table a node should have; pure, so one function serves the agent, the simulator and tests. */
export function desiredDataplane (input: DesiredDataplaneInput): DesiredDataplane {
  const keepaliveS = input.keepaliveS ?? DEFAULT_KEEPALIVE_S
  const byNode = new Map<string, DataplanePeerInfo>()
  for (const peer of input.peers) if (peer.nodeId !== input.self) byNode.set(peer.nodeId, peer)
  const allowed = new Map<string, Set<string>>()
  for (const peer of byNode.values()) {
    const ips = allowed.get(peer.publicKey) ?? new Set<string>()
    if (peer.overlayAddress !== undefined) ips.add(hostPrefix(peer.overlayAddress))
    allowed.set(peer.publicKey, ips)
  }
  const local = new Set<string>()
  const routes: DataplaneRoute[] = []
  for (const entry of input.routes) {
    const base = { prefix: entry.prefix, service: entry.service, origin: entry.origin, nextHop: entry.nextHop }
    if (!prefixWithin(entry.prefix, input.anycastCidr)) { routes.push({ ...base, via: 'none', reason: 'outside-pool' }); continue }
    if (entry.origin === undefined) { routes.push({ ...base, via: 'none', reason: 'no-origin' }); continue }
    if (entry.origin === input.self) { local.add(parsePrefix(entry.prefix).text); routes.push({ ...base, via: 'local' }); continue }
    const peer = entry.nextHop === undefined ? undefined : byNode.get(entry.nextHop)
    if (peer === undefined) { routes.push({ ...base, via: 'none', reason: 'no-key' }); continue }
    allowed.get(peer.publicKey)!.add(parsePrefix(entry.prefix).text)
    routes.push({ ...base, via: 'peer', publicKey: peer.publicKey })
  }
  const peers: DataplanePeer[] = [...byNode.values()]
    .filter((peer, index, all) => all.findIndex((other) => other.publicKey === peer.publicKey) === index)
    .map((peer) => ({
      publicKey: peer.publicKey,
      ...(peer.endpoint === undefined ? {} : { endpoint: peer.endpoint }),
      allowedIps: [...allowed.get(peer.publicKey)!].sort(byText),
      keepaliveS
    }))
    .sort((a, b) => byText(a.publicKey, b.publicKey))
  return {
    state: {
      interfaceAddresses: input.overlayAddress === undefined ? [] : [hostPrefix(input.overlayAddress)],
      localAddresses: [...local].sort(byText),
      peers
    },
    routes: routes.sort((a, b) => byText(a.prefix, b.prefix))
  }
}

function samePeer (desired: DataplanePeer, actual: DataplanePeer): boolean {
  return desired.keepaliveS === actual.keepaliveS &&
    (desired.endpoint === undefined || desired.endpoint === actual.endpoint) &&
    desired.allowedIps.length === actual.allowedIps.length &&
    [...desired.allowedIps].sort(byText).every((ip, index) => ip === [...actual.allowedIps].sort(byText)[index])
}

/**
 * The operations that turn `actual` into `desired`; empty when they match. Peers are set whole
 * (WireGuard replaces a peer's AllowedIPs and moves an address from any other peer that had it),
 * so applying the list in order is idempotent. An endpoint we do not know is left as WireGuard
 * learnt it (roaming, the WireGuard paper §2.1). Addresses are only added and removed within the
 * sets given: `actual` is expected to hold only what this node manages.
 */
export function diffDataplane (desired: DataplaneState, actual: DataplaneState): DataplaneOp[] {
  const ops: DataplaneOp[] = []
  const actualPeers = new Map(actual.peers.map((peer) => [peer.publicKey, peer]))
  const desiredKeys = new Set(desired.peers.map((peer) => peer.publicKey))
  for (const peer of actual.peers) if (!desiredKeys.has(peer.publicKey)) ops.push({ op: 'peer.remove', publicKey: peer.publicKey })
  for (const peer of desired.peers) {
    const current = actualPeers.get(peer.publicKey)
    if (current === undefined || !samePeer(peer, current)) ops.push({ op: 'peer.set', peer })
  }
  for (const scope of ['interface', 'local'] as const) {
    const want = new Set(scope === 'interface' ? desired.interfaceAddresses : desired.localAddresses)
    const have = new Set(scope === 'interface' ? actual.interfaceAddresses : actual.localAddresses)
    for (const address of have) if (!want.has(address)) ops.push({ op: 'address.remove', scope, address })
    for (const address of want) if (!have.has(address)) ops.push({ op: 'address.add', scope, address })
  }
  return ops
}
