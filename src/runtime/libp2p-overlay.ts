// The production Overlay: gossipsub topics, framed per-peer streams, peer events and RTT over a real
// libp2p node. The simulated Overlay models the same contract; test/runtime/overlay-compliance.ts
// holds both to it. Stream framing is in libp2p-frame-stream.ts, RTT probing in libp2p-rtt.ts.
import './polyfill.ts'
import { setMaxListeners } from 'node:events'
import { TopicValidatorResult, type Connection, type Message, type PeerId as Libp2pPeerId, type PrivateKey, type Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { Libp2pFrameStream, linkedSignal } from './libp2p-frame-stream.ts'
import {
  createLibp2pNode, parseBootstrapList, type BootstrapPeer, type OverlayLibp2p, type PubsubOptions, type RelayOptions
} from './libp2p-node.ts'
import { DEFAULT_RTT_INTERVAL_MS, RTT_PROTOCOL, RttProber, serveRttEcho } from './libp2p-rtt.ts'
import { peerIdFromKey } from './node-key.ts'
import {
  MessageTooLargeError, OverlayNotRunningError, UnsupportedProtocolError, describeError
} from './overlay-errors.ts'
import {
  MAX_MESSAGE_BYTES, type FrameStream, type Logger, type Overlay, type OverlayMessage,
  type OverlayStats, type PeerEvent, type PeerId, type TopicValidator, type Unsubscribe, type ValidationResult
} from './ports.ts'

export interface Libp2pOverlayInit {
  privateKey: PrivateKey
  networkId: string
  /** Multiaddrs to listen on; default 127.0.0.1 on an ephemeral TCP port. */
  listen?: string[]
  /** Multiaddrs ending in /p2p/<peer id>; this node's own entries are skipped. */
  bootstrap?: string[]
  logger?: Logger
  rttIntervalMs?: number
  pubsub?: PubsubOptions
  /** Inbound connections accepted per remote host per second (libp2p default 5; raise for loopback demos). */
  inboundConnectionThreshold?: number
  /** The private network's pre-shared key: without the same key no connection completes. */
  networkKey?: Uint8Array
  /** Circuit relay v2, AutoNAT and DCUtR (libp2p-node.ts); off unless given. */
  relay?: RelayOptions
}

export interface Libp2pOverlay extends Overlay {
  readonly networkId: string
  /** Listen addresses including /p2p/<peer id>, once started. */
  multiaddrs(): string[]
  /** Peers known to subscribe to a topic (their SUBSCRIBE reached us): floodPublish reaches these. */
  topicPeers(topic: string): PeerId[]
  /** Peers in this node's gossipsub mesh for a topic (grafted at heartbeats). */
  meshPeers(topic: string): PeerId[]
  /** The underlying node, for diagnostics and tests (e.g. to simulate a crash). */
  readonly libp2p: OverlayLibp2p
}

const silentLogger: Logger = {
  debug() {}, info() {}, warn() {}, error() {},
  child() { return silentLogger }
}

type LifecycleState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped'

export async function createLibp2pOverlay(init: Libp2pOverlayInit): Promise<Libp2pOverlay> {
  if (init.networkId.length === 0) throw new TypeError('networkId must not be empty')
  const rttIntervalMs = init.rttIntervalMs ?? DEFAULT_RTT_INTERVAL_MS
  if (!(rttIntervalMs > 0)) throw new RangeError(`rttIntervalMs must be positive, got ${rttIntervalMs}`)
  const peerId = peerIdFromKey(init.privateKey)
  const bootstrap = parseBootstrapList(init.bootstrap ?? [], peerId)
  const libp2p = await createLibp2pNode({
    privateKey: init.privateKey,
    listen: init.listen,
    bootstrap,
    pubsub: init.pubsub,
    inboundConnectionThreshold: init.inboundConnectionThreshold,
    ...(init.networkKey === undefined ? {} : { networkKey: init.networkKey }),
    ...(init.relay === undefined ? {} : { relay: init.relay })
  })
  const logger = (init.logger ?? silentLogger).child({ component: 'libp2p-overlay', networkId: init.networkId })
  const limited = init.relay !== undefined && (init.relay.client || init.relay.server)
  return new Libp2pOverlayImpl(libp2p, init.networkId, bootstrap, rttIntervalMs, logger, limited)
}

class Libp2pOverlayImpl implements Libp2pOverlay {
  readonly peerId: PeerId
  private state: LifecycleState = 'idle'
  private transition: Promise<void> | undefined
  /** Shared by every dial and stream of this overlay, so it carries many abort listeners at once. */
  private readonly controller = withListenerLimit(new AbortController())
  private readonly subscriptions = new Map<string, Set<(message: OverlayMessage) => void>>()
  private readonly validators = new Map<string, TopicValidator>()
  private readonly peerListeners = new Set<(event: PeerEvent) => void>()
  private readonly streams = new Set<Libp2pFrameStream>()
  private readonly rtt: RttProber
  private readonly counters: OverlayStats = { messagesSent: 0, bytesSent: 0, messagesReceived: 0, bytesReceived: 0 }

  constructor(
    readonly libp2p: OverlayLibp2p,
    readonly networkId: string,
    private readonly bootstrap: BootstrapPeer[],
    rttIntervalMs: number,
    private readonly log: Logger,
    /**
     * Run our protocols over limited (relayed) connections too: a node reachable only through a
     * circuit relay forms sessions, answers probes and syncs state over it, within the relay's limits.
     */
    private readonly runOnLimitedConnection = false
  ) {
    this.peerId = libp2p.peerId.toString()
    this.rtt = new RttProber({
      intervalMs: rttIntervalMs,
      connectedPeers: () => this.connectedPeers(),
      openStream: async (peer, protocol, options) => await this.openStream(peer, protocol, options),
      log: log.child({ component: 'rtt' })
    })
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  async start(): Promise<void> {
    if (this.state === 'running') return
    if (this.state === 'starting') return await this.transition
    if (this.state !== 'idle') throw new OverlayNotRunningError('a stopped overlay cannot be restarted; create a new one')
    this.state = 'starting'
    this.transition = this.doStart()
    try {
      await this.transition
    } catch (err) {
      await this.stop() // e.g. the listen address is taken: release whatever did start
      throw err
    }
  }

  private async doStart(): Promise<void> {
    this.libp2p.addEventListener('peer:connect', this.onPeerConnect)
    this.libp2p.addEventListener('peer:disconnect', this.onPeerDisconnect)
    this.libp2p.addEventListener('connection:open', this.onConnectionOpen)
    this.libp2p.services.pubsub.addEventListener('message', this.onPubsubMessage)
    this.handleStream(RTT_PROTOCOL, (stream) => serveRttEcho(stream))
    await this.libp2p.start()
    for (const topic of this.subscriptions.keys()) this.libp2p.services.pubsub.subscribe(topic)
    this.state = 'running'
    this.log.info('overlay started', { peerId: this.peerId, multiaddrs: this.multiaddrs() })
    for (const peer of this.bootstrap) void this.dialBootstrapPeer(peer)
    this.rtt.start(this.controller.signal)
  }

  async stop(): Promise<void> {
    if (this.state === 'starting') await this.transition?.catch(() => undefined)
    if (this.state === 'stopping') return await this.transition
    if (this.state === 'stopped') return
    const wasIdle = this.state === 'idle'
    this.state = 'stopping'
    this.transition = wasIdle ? Promise.resolve() : this.doStop()
    try {
      await this.transition
    } finally {
      this.state = 'stopped'
    }
  }

  private async doStop(): Promise<void> {
    this.controller.abort(new OverlayNotRunningError('overlay stopped'))
    this.rtt.stop()
    // Close streams before connections so remotes see clean closes, not lost connections.
    await Promise.all([...this.streams].map(async (stream) => await stream.closeAndSettle()))
    this.libp2p.removeEventListener('peer:connect', this.onPeerConnect)
    this.libp2p.removeEventListener('peer:disconnect', this.onPeerDisconnect)
    this.libp2p.removeEventListener('connection:open', this.onConnectionOpen)
    this.libp2p.services.pubsub.removeEventListener('message', this.onPubsubMessage)
    await this.libp2p.stop()
    this.log.info('overlay stopped', { peerId: this.peerId })
  }

  private requireRunning(operation: string): void {
    if (this.state !== 'running') throw new OverlayNotRunningError(`${operation}: overlay is ${this.state}`)
  }

  multiaddrs(): string[] {
    return this.libp2p.getMultiaddrs().map(String)
  }

  // ---- pubsub ----------------------------------------------------------------------------------

  subscribe(topic: string, handler: (message: OverlayMessage) => void): Unsubscribe {
    let handlers = this.subscriptions.get(topic)
    if (handlers === undefined) {
      handlers = new Set()
      this.subscriptions.set(topic, handlers)
      this.installTopicValidator(topic)
      if (this.state === 'running') this.libp2p.services.pubsub.subscribe(topic)
    }
    // Wrap so the same function may subscribe twice and unsubscribe each registration separately.
    const registration = (message: OverlayMessage): void => handler(message)
    handlers.add(registration)
    return () => {
      const current = this.subscriptions.get(topic)
      if (current === undefined || !current.delete(registration) || current.size > 0) return
      this.subscriptions.delete(topic)
      this.removeTopicValidatorIfUnused(topic)
      if (this.state === 'running') this.libp2p.services.pubsub.unsubscribe(topic)
    }
  }

  setValidator(topic: string, validator: TopicValidator | undefined): void {
    if (validator === undefined) {
      this.validators.delete(topic)
      this.removeTopicValidatorIfUnused(topic)
    } else {
      this.validators.set(topic, validator)
      this.installTopicValidator(topic)
    }
  }

  async publish(topic: string, data: Uint8Array): Promise<void> {
    if (data.byteLength > MAX_MESSAGE_BYTES) throw new MessageTooLargeError(data.byteLength, MAX_MESSAGE_BYTES, 'message')
    this.requireRunning('publish')
    // allowPublishToZeroTopicPeers: no listener yet is not an error.
    await this.libp2p.services.pubsub.publish(topic, data)
    this.counters.messagesSent++
    this.counters.bytesSent += data.byteLength
  }

  topicPeers(topic: string): PeerId[] {
    return this.libp2p.services.pubsub.getSubscribers(topic).map(String)
  }

  meshPeers(topic: string): PeerId[] {
    return this.libp2p.services.pubsub.getMeshPeers(topic)
  }

  /**
   * Every topic this node uses gets a gossipsub topic validator, so the size bound holds even
   * without a caller's validator; gossipsub runs it before delivery and before forwarding.
   */
  private installTopicValidator(topic: string): void {
    const validators = this.libp2p.services.pubsub.topicValidators
    if (validators.has(topic)) return
    validators.set(topic, (_propagationSource, message) => this.validate(topic, message))
  }

  private removeTopicValidatorIfUnused(topic: string): void {
    if (this.subscriptions.has(topic) || this.validators.has(topic)) return
    this.libp2p.services.pubsub.topicValidators.delete(topic)
  }

  private validate(topic: string, message: Message): TopicValidatorResult {
    // StrictSign already rejected unsigned messages and forged authors; this is belt and braces.
    if (message.type !== 'signed') return TopicValidatorResult.Reject
    if (message.data.byteLength > MAX_MESSAGE_BYTES) return TopicValidatorResult.Reject
    const validator = this.validators.get(topic)
    if (validator === undefined) return TopicValidatorResult.Accept
    try {
      return toTopicValidatorResult(validator({ topic, from: message.from.toString(), data: message.data }))
    } catch (err) {
      this.log.error('topic validator threw; rejecting message', { topic, error: describeError(err) })
      return TopicValidatorResult.Reject
    }
  }

  private readonly onPubsubMessage = (event: CustomEvent<Message>): void => {
    const message = event.detail
    if (message.type !== 'signed') return
    const handlers = this.subscriptions.get(message.topic)
    if (handlers === undefined) return
    this.counters.messagesReceived++
    this.counters.bytesReceived += message.data.byteLength
    const delivered: OverlayMessage = { topic: message.topic, from: message.from.toString(), data: message.data }
    for (const handler of [...handlers]) {
      try {
        handler(delivered)
      } catch (err) {
        this.log.error('subscriber threw', { topic: message.topic, error: describeError(err) })
      }
    }
  }

  stats(): OverlayStats {
    return { ...this.counters }
  }

  // ---- streams ---------------------------------------------------------------------------------

  handleStream(protocol: string, handler: (stream: FrameStream) => void): void {
    const registering = this.libp2p.handle(protocol, ({ stream, connection }) => {
      // 'starting': remotes may open streams as soon as libp2p listens, before start() returns.
      if (this.state !== 'running' && this.state !== 'starting') {
        stream.abort(new OverlayNotRunningError('overlay is not running'))
        return
      }
      const frameStream = this.track(stream, connection.remotePeer.toString(), protocol)
      try {
        handler(frameStream)
      } catch (err) {
        this.log.error('stream handler threw; closing stream', { protocol, error: describeError(err) })
        frameStream.close()
      }
    }, { force: true, runOnLimitedConnection: this.runOnLimitedConnection })
    registering.catch((err: unknown) => this.log.error('could not register protocol', { protocol, error: describeError(err) }))
  }

  unhandleStream(protocol: string): void {
    this.libp2p.unhandle(protocol).catch((err: unknown) => {
      this.log.error('could not unregister protocol', { protocol, error: describeError(err) })
    })
  }

  async openStream(peer: PeerId, protocol: string, options: { signal?: AbortSignal } = {}): Promise<FrameStream> {
    this.requireRunning('openStream')
    const remote = parsePeerId(peer)
    const signal = linkedSignal([this.controller.signal, options.signal])
    let stream: Stream
    try {
      stream = await this.libp2p.dialProtocol(remote, protocol, { signal: signal.signal, runOnLimitedConnection: this.runOnLimitedConnection })
    } catch (err) {
      if (err instanceof Error && err.name === 'UnsupportedProtocolError') {
        throw new UnsupportedProtocolError(peer, protocol, { cause: err })
      }
      throw err
    } finally {
      signal.dispose()
    }
    if (this.state !== 'running') {
      stream.abort(new OverlayNotRunningError('overlay stopped while opening a stream'))
      throw new OverlayNotRunningError('openStream: overlay stopped')
    }
    return this.track(stream, peer, protocol)
  }

  private track(stream: Stream, remotePeer: PeerId, protocol: string): Libp2pFrameStream {
    const log = this.log.child({ remotePeer, protocol, stream: stream.id })
    const frameStream = new Libp2pFrameStream(stream, remotePeer, protocol, log, () => this.streams.delete(frameStream))
    this.streams.add(frameStream)
    frameStream.start()
    return frameStream
  }

  // ---- peers -----------------------------------------------------------------------------------

  async dial(peer: PeerId, options: { signal?: AbortSignal } = {}): Promise<void> {
    this.requireRunning('dial')
    const remote = parsePeerId(peer)
    const signal = linkedSignal([this.controller.signal, options.signal])
    try {
      await this.libp2p.dial(remote, { signal: signal.signal })
    } finally {
      signal.dispose()
    }
  }

  /** Remember the bootstrap address (so dial() can find it later) and connect now. */
  private async dialBootstrapPeer(peer: BootstrapPeer): Promise<void> {
    const signal = this.controller.signal
    try {
      await this.libp2p.peerStore.merge(peer.peerId, { multiaddrs: [peer.address] }, { signal })
      await this.libp2p.dial(peer.peerId, { signal })
    } catch (err) {
      // Expected while peers are still starting; the peer sessions retry with back-off.
      if (!signal.aborted) this.log.info('bootstrap dial failed', { peer: peer.peerId.toString(), error: describeError(err) })
    }
  }

  connectedPeers(): PeerId[] {
    return this.libp2p.getPeers().map(String)
  }

  onPeerEvent(listener: (event: PeerEvent) => void): Unsubscribe {
    // Wrap so the same function may register twice and unsubscribe each registration separately.
    const registration = (event: PeerEvent): void => listener(event)
    this.peerListeners.add(registration)
    return () => { this.peerListeners.delete(registration) }
  }

  private readonly onPeerConnect = (event: CustomEvent<Libp2pPeerId>): void => {
    this.emitPeerEvent({ type: 'peer.connected', peerId: event.detail.toString() })
    this.rtt.peerConnected(event.detail.toString())
  }

  private readonly onPeerDisconnect = (event: CustomEvent<Libp2pPeerId>): void => {
    this.rtt.peerDisconnected(event.detail.toString())
    this.emitPeerEvent({ type: 'peer.disconnected', peerId: event.detail.toString() })
  }

  /**
   * A direct connection to a peer we also reach through a relay: close the relayed one, so streams
   * move to the direct path (re-opened by their owners) instead of waiting for the relay to cut them
   * at its duration or data limit. DCUtR does the same after a hole punch it made itself.
   */
  private readonly onConnectionOpen = (event: CustomEvent<Connection>): void => {
    const opened = event.detail
    if (opened.limits !== undefined) return
    for (const connection of this.libp2p.getConnections(opened.remotePeer)) {
      if (connection.limits === undefined || connection.status !== 'open') continue
      this.log.info('direct connection opened; closing the relayed one', { peer: opened.remotePeer.toString(), direct: opened.remoteAddr.toString() })
      connection.close().catch((err: unknown) => connection.abort(err instanceof Error ? err : new Error(String(err))))
    }
  }

  private emitPeerEvent(event: PeerEvent): void {
    for (const listener of [...this.peerListeners]) {
      try {
        listener(event)
      } catch (err) {
        this.log.error('peer event listener threw', { event: event.type, error: describeError(err) })
      }
    }
  }

  // ---- RTT -------------------------------------------------------------------------------------

  rttMs(peer: PeerId): number | undefined {
    return this.rtt.rttMs(peer)
  }
}

function toTopicValidatorResult(result: ValidationResult): TopicValidatorResult {
  switch (result) {
    case 'accept': return TopicValidatorResult.Accept
    case 'ignore': return TopicValidatorResult.Ignore
    default: return TopicValidatorResult.Reject
  }
}

function parsePeerId(peer: PeerId): Libp2pPeerId {
  try {
    return peerIdFromString(peer)
  } catch (err) {
    throw new TypeError(`invalid peer id "${peer}"`, { cause: err })
  }
}

function withListenerLimit (controller: AbortController): AbortController {
  setMaxListeners(10_000, controller.signal)
  return controller
}
