// Assembles the libp2p node behind the overlay: TCP + noise + yamux, identify, ping, gossipsub
// (StrictSign) and bootstrap discovery. Only assembly and address parsing live here; behaviour is
// in libp2p-overlay.ts.
import './polyfill.ts'
import { gossipsub, type GossipSub, type GossipSubComponents, type GossipsubOpts } from '@chainsafe/libp2p-gossipsub'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { bootstrap } from '@libp2p/bootstrap'
import { identify, type Identify } from '@libp2p/identify'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping, type Ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { isMultiaddr, multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p, type ServiceFactoryMap } from 'libp2p'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { autoNAT, type AutoNATComponents } from '@libp2p/autonat'
import { dcutr } from '@libp2p/dcutr'
import type { PeerId as Libp2pPeerId, PrivateKey } from '@libp2p/interface'
import { checkRelayLimits, RELAY_DEFAULT_DATA_LIMIT_BYTES, RELAY_DEFAULT_DURATION_LIMIT_MS, type RelayOptions } from './relay-options.ts'

export type { RelayOptions } from './relay-options.ts'

export interface OverlayServices extends Record<string, unknown> {
  identify: Identify
  ping: Ping
  pubsub: GossipSub
}
export type OverlayLibp2p = Libp2p<OverlayServices>

/** gossipsub settings the overlay relies on; callers cannot override these. */
export const FIXED_PUBSUB_OPTIONS = {
  globalSignaturePolicy: 'StrictSign',
  emitSelf: false,
  allowPublishToZeroTopicPeers: true
} as const

/** Tunables callers may set (heartbeat, mesh degree, scoring); the fixed policy above wins. */
export type PubsubOptions = Partial<Omit<GossipsubOpts, keyof typeof FIXED_PUBSUB_OPTIONS>>

export const DEFAULT_LISTEN = ['/ip4/127.0.0.1/tcp/0']

export interface Libp2pNodeInit {
  privateKey: PrivateKey
  listen?: string[]
  /** Addresses to advertise besides the listen addresses (e.g. a NAT's public side, known out of band). */
  appendAnnounce?: string[]
  bootstrap?: BootstrapPeer[]
  pubsub?: PubsubOptions
  /** Inbound connections accepted per remote host per second (libp2p default 5). */
  inboundConnectionThreshold?: number
  /** The private network's pre-shared key (network-key.ts): only holders can connect. */
  networkKey?: Uint8Array
  /**
   * NAT traversal (opt-in): `client` dials and listens through circuit relays (v2), learns its
   * reachability with AutoNAT and upgrades relayed connections to direct ones with DCUtR hole
   * punching; `server` also serves as a relay, with libp2p's default limits (no looser).
   */
  relay?: RelayOptions
}

/**
 * AutoNAT (v1, @libp2p/autonat 2.0.38) answers a peer's dial-back request with
 * `openConnection(address)` and closes whatever it gets. Without `force` the connection manager
 * hands back the connection the request came over, so the answer closes it: a relay asked by a
 * client for a public address dropped the client's connection and its reservation with it (seen in
 * test/netns/holepunch.ts). Dial-backs (one address, no `force`) are forced to a fresh connection;
 * AutoNAT's other dials (a peer's address list, from its random walk) are left alone.
 */
function autoNATWithFreshDialBack (): (components: AutoNATComponents) => unknown {
  const factory = autoNAT()
  return (components) => {
    const connectionManager = components.connectionManager
    const forcing = new Proxy(connectionManager, {
      get (target, property, receiver) {
        if (property !== 'openConnection') return Reflect.get(target, property, receiver)
        return async (peer: Parameters<typeof connectionManager.openConnection>[0], options: Parameters<typeof connectionManager.openConnection>[1] = {}) => {
          const single = !Array.isArray(peer) && isMultiaddr(peer)
          return await target.openConnection(peer, single && options.force === undefined ? { ...options, force: true } : options)
        }
      }
    })
    return factory(new Proxy(components, {
      get (target, property, receiver) {
        return property === 'connectionManager' ? forcing : Reflect.get(target, property, receiver)
      }
    }))
  }
}

function isRelayEnabled (relay: RelayOptions | undefined): boolean {
  return relay !== undefined && (relay.client || relay.server)
}

/** The relay, AutoNAT and DCUtR services, keyed as libp2p's docs name them. */
function relayServices (relay: RelayOptions | undefined): ServiceFactoryMap<Record<string, unknown>> {
  if (relay === undefined || !isRelayEnabled(relay)) return {}
  checkRelayLimits(relay)
  return {
    autoNAT: autoNATWithFreshDialBack(),
    dcutr: dcutr(),
    ...(relay.server
      ? {
          relay: circuitRelayServer({
            reservations: {
              applyDefaultLimit: true,
              defaultDurationLimit: relay.durationLimitMs ?? RELAY_DEFAULT_DURATION_LIMIT_MS,
              defaultDataLimit: BigInt(relay.dataLimitBytes ?? RELAY_DEFAULT_DATA_LIMIT_BYTES)
            }
          })
        }
      : {})
  }
}

/** A bootstrap list entry, parsed: the peer and the address to reach it at. */
export interface BootstrapPeer {
  peerId: Libp2pPeerId
  address: Multiaddr
}

/** A configured address is not a multiaddr, or a bootstrap address lacks its /p2p/ peer id. */
export class InvalidOverlayAddressError extends Error {
  override name = 'InvalidOverlayAddressError'
  readonly address: string
  constructor(address: string, reason: string, options?: { cause?: unknown }) {
    super(`invalid overlay address "${address}": ${reason}`, options)
    this.address = address
  }
}

export function parseListenAddresses(addresses: readonly string[]): string[] {
  for (const address of addresses) parseMultiaddr(address)
  return [...addresses]
}

/** Parse the bootstrap list, dropping this node's own entries (one list is shared by all nodes). */
export function parseBootstrapList(addresses: readonly string[], selfPeerId: string): BootstrapPeer[] {
  const peers: BootstrapPeer[] = []
  for (const text of addresses) {
    const address = parseMultiaddr(text)
    const peerIdText = address.getPeerId()
    if (peerIdText === null) throw new InvalidOverlayAddressError(text, 'bootstrap addresses must end in /p2p/<peer id>')
    let peerId: Libp2pPeerId
    try {
      peerId = peerIdFromString(peerIdText)
    } catch (err) {
      throw new InvalidOverlayAddressError(text, `bad peer id "${peerIdText}"`, { cause: err })
    }
    if (peerId.toString() !== selfPeerId) peers.push({ peerId, address })
  }
  return peers
}

function parseMultiaddr(text: string): Multiaddr {
  try {
    return multiaddr(text)
  } catch (err) {
    throw new InvalidOverlayAddressError(text, err instanceof Error ? err.message : String(err), { cause: err })
  }
}

/** Build (but do not start) the libp2p node. */
export async function createLibp2pNode(init: Libp2pNodeInit): Promise<OverlayLibp2p> {
  const bootstrapList = (init.bootstrap ?? []).map((peer) => peer.address.toString())
  return await createLibp2p<OverlayServices>({
    start: false,
    privateKey: init.privateKey,
    addresses: {
      listen: [...parseListenAddresses(init.listen ?? DEFAULT_LISTEN), ...(init.relay?.client === true ? ['/p2p-circuit'] : [])],
      ...(init.appendAnnounce === undefined ? {} : { appendAnnounce: parseListenAddresses(init.appendAnnounce) })
    },
    transports: [tcp(), ...(init.relay?.client === true || init.relay?.server === true ? [circuitRelayTransport()] : [])],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    ...(init.networkKey === undefined ? {} : { connectionProtector: preSharedKey({ psk: init.networkKey }) }),
    connectionManager: {
      inboundConnectionThreshold: init.inboundConnectionThreshold
    },
    // @libp2p/bootstrap throws on an empty list, so a node without bootstrap peers has no discovery.
    peerDiscovery: bootstrapList.length > 0 ? [bootstrap({ list: bootstrapList })] : [],
    services: {
      ...relayServices(init.relay),
      identify: identify(),
      ping: ping(),
      // The per-message bound (MAX_MESSAGE_BYTES) is enforced by the overlay's topic validators, not
      // by maxInboundDataLength: that bounds a whole RPC, which may batch many messages.
      // The factory is typed as returning the generic PubSub; the instance is a GossipSub, whose
      // mesh view (getMeshPeers) the overlay reports.
      // With relaying on, gossip also runs over limited (relayed) connections: a node reachable only
      // through a relay would otherwise hear no routes, health or state at all.
      pubsub: gossipsub({
        ...init.pubsub,
        ...FIXED_PUBSUB_OPTIONS,
        runOnLimitedConnection: isRelayEnabled(init.relay)
      }) as (components: GossipSubComponents) => GossipSub
    }
  })
}
