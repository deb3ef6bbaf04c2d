// The production Overlay: gossipsub topics, framed per-peer streams, peer events and RTT over a real
// libp2p node. The simulated Overlay models the same contract; test/runtime/overlay-compliance.ts
// holds both to it.
import './polyfill.ts'
import { setMaxListeners } from 'node:events'
import { TopicValidatorResult, type Message, type PeerId as Libp2pPeerId, type PrivateKey, type Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { pushable } from 'it-pushable'
import * as lp from 'it-length-prefixed'
import { pipe } from 'it-pipe'
import {
  createLibp2pNode, parseBootstrapList, type BootstrapPeer, type OverlayLibp2p, type PubsubOptions
} from './libp2p-node.ts'
import { peerIdFromKey } from './node-key.ts'
import {
  MAX_FRAME_BYTES, MAX_MESSAGE_BYTES, type FrameStream, type Logger, type Overlay, type OverlayMessage,
  type OverlayStats, type PeerEvent, type PeerId, type TopicValidator, type Unsubscribe, type ValidationResult
} from './ports.ts'

export const DEFAULT_RTT_INTERVAL_MS = 1000
/** Frames received before the owner sets onFrame; more than this aborts the stream. */
export const MAX_BUFFERED_FRAMES = 1000
/** Frames queued for sending but not yet written; more than this aborts the stream. */
export const MAX_QUEUED_FRAMES = 1000
export const MAX_QUEUED_BYTES = 4 * 1024 * 1024
/** How long a graceful close waits for queued frames to flush before resetting the stream. */
const CLOSE_TIMEOUT_MS = 2000
/**
 * RTT probes ride a long-lived echo stream per peer (8-byte nonces timed with performance.now()).
 * libp2p's ping service opens a new stream per ping and reports whole milliseconds including
 * protocol negotiation, so on a LAN it reads 0-2 ms whatever the real RTT is.
 */
export const RTT_PROTOCOL = '/form-anycast/rtt/1.0.0'
const RTT_PROBE_BYTES = 8
/** A probe unanswered for this long (or the RTT interval, if longer) counts as lost. */
const MIN_PROBE_TIMEOUT_MS = 5000

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

/** openStream: the remote peer does not serve the protocol. */
export class UnsupportedProtocolError extends Error {
  override name = 'UnsupportedProtocolError'
  constructor(readonly peer: PeerId, readonly protocol: string, options?: { cause?: unknown }) {
    super(`peer ${peer} does not support protocol ${protocol}`, options)
  }
}

/** publish or send: the payload exceeds MAX_MESSAGE_BYTES / MAX_FRAME_BYTES. */
export class MessageTooLargeError extends Error {
  override name = 'MessageTooLargeError'
  constructor(readonly sizeBytes: number, readonly limitBytes: number) {
    super(`payload of ${sizeBytes} bytes exceeds the ${limitBytes}-byte limit`)
  }
}

/** A stream's receive buffer or send queue passed its bound; the stream was aborted. */
export class StreamOverflowError extends Error {
  override name = 'StreamOverflowError'
}

/** A stream was shut underneath its owner because its connection went away (no clean close). */
export class ConnectionLostError extends Error {
  override name = 'ConnectionLostError'
}

/** publish/openStream/dial on an overlay that is not running. */
export class OverlayNotRunningError extends Error {
  override name = 'OverlayNotRunningError'
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
    inboundConnectionThreshold: init.inboundConnectionThreshold
  })
  const logger = (init.logger ?? silentLogger).child({ component: 'libp2p-overlay', networkId: init.networkId })
  return new Libp2pOverlayImpl(libp2p, init.networkId, bootstrap, rttIntervalMs, logger)
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
    private readonly log: Logger
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
    if (data.byteLength > MAX_MESSAGE_BYTES) throw new MessageTooLargeError(data.byteLength, MAX_MESSAGE_BYTES)
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
      this.log.error('topic validator threw; rejecting message', { topic, error: describe(err) })
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
        this.log.error('subscriber threw', { topic: message.topic, error: describe(err) })
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
        this.log.error('stream handler threw; closing stream', { protocol, error: describe(err) })
        frameStream.close()
      }
    }, { force: true })
    registering.catch((err: unknown) => this.log.error('could not register protocol', { protocol, error: describe(err) }))
  }

  unhandleStream(protocol: string): void {
    this.libp2p.unhandle(protocol).catch((err: unknown) => {
      this.log.error('could not unregister protocol', { protocol, error: describe(err) })
    })
  }

  async openStream(peer: PeerId, protocol: string, options: { signal?: AbortSignal } = {}): Promise<FrameStream> {
    this.requireRunning('openStream')
    const remote = parsePeerId(peer)
    const signal = linkedSignal([this.controller.signal, options.signal])
    let stream: Stream
    try {
      stream = await this.libp2p.dialProtocol(remote, protocol, { signal: signal.signal })
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
      if (!signal.aborted) this.log.info('bootstrap dial failed', { peer: peer.peerId.toString(), error: describe(err) })
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

  private emitPeerEvent(event: PeerEvent): void {
    for (const listener of [...this.peerListeners]) {
      try {
        listener(event)
      } catch (err) {
        this.log.error('peer event listener threw', { event: event.type, error: describe(err) })
      }
    }
  }

  // ---- RTT -------------------------------------------------------------------------------------

  rttMs(peer: PeerId): number | undefined {
    return this.rtt.rttMs(peer)
  }
}

interface RttProberComponents {
  intervalMs: number
  connectedPeers(): PeerId[]
  openStream(peer: PeerId, protocol: string, options: { signal: AbortSignal }): Promise<FrameStream>
  log: Logger
}

interface RttProbe {
  stream: FrameStream | undefined
  nonce: bigint
  sentAtMs: number | undefined
}

/** The echo side of RTT_PROTOCOL: return each probe as is; anything else ends the stream. */
function serveRttEcho(stream: FrameStream): void {
  stream.onFrame((frame) => {
    if (frame.byteLength === RTT_PROBE_BYTES) stream.send(frame)
    else stream.close()
  })
}

/**
 * Every intervalMs, one probe per connected peer over that peer's echo stream; at most one probe
 * outstanding per peer. Keeps the latest RTT; forgets it when the peer disconnects.
 */
class RttProber {
  private readonly probes = new Map<PeerId, RttProbe>()
  private readonly rtts = new Map<PeerId, number>()
  /** Peers that do not serve RTT_PROTOCOL (not form-anycast nodes); retried after a reconnect. */
  private readonly unsupported = new Set<PeerId>()
  private timer: NodeJS.Timeout | undefined
  private signal: AbortSignal | undefined
  private nextNonce = 0n

  constructor(private readonly components: RttProberComponents) {}

  private get probeTimeoutMs(): number {
    return Math.max(MIN_PROBE_TIMEOUT_MS, this.components.intervalMs)
  }

  start(signal: AbortSignal): void {
    this.signal = signal
    for (const peer of this.components.connectedPeers()) void this.probe(peer)
    this.schedule()
  }

  stop(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    for (const probe of this.probes.values()) probe.stream?.close()
    this.probes.clear()
    this.rtts.clear()
  }

  rttMs(peer: PeerId): number | undefined {
    return this.rtts.get(peer)
  }

  peerConnected(peer: PeerId): void {
    void this.probe(peer)
  }

  peerDisconnected(peer: PeerId): void {
    this.probes.get(peer)?.stream?.close()
    this.probes.delete(peer)
    this.rtts.delete(peer)
    this.unsupported.delete(peer)
  }

  private schedule(): void {
    if (this.signal === undefined || this.signal.aborted) return
    this.timer = setTimeout(() => {
      for (const peer of this.components.connectedPeers()) void this.probe(peer)
      this.schedule()
    }, this.components.intervalMs)
    this.timer.unref()
  }

  /** Never rejects. */
  private async probe(peer: PeerId): Promise<void> {
    const signal = this.signal
    if (signal === undefined || signal.aborted || this.unsupported.has(peer)) return
    const existing = this.probes.get(peer)
    if (existing === undefined) {
      await this.openProbe(peer, signal)
      return
    }
    if (existing.stream === undefined) return // still opening
    if (existing.sentAtMs !== undefined) {
      if (performance.now() - existing.sentAtMs < this.probeTimeoutMs) return
      this.components.log.debug('rtt probe lost; reopening the echo stream', { peer })
      existing.stream.close()
      this.probes.delete(peer)
      return
    }
    existing.nonce = this.nextNonce++
    const frame = new Uint8Array(RTT_PROBE_BYTES)
    new DataView(frame.buffer).setBigUint64(0, existing.nonce)
    existing.sentAtMs = performance.now()
    existing.stream.send(frame)
  }

  private async openProbe(peer: PeerId, signal: AbortSignal): Promise<void> {
    const probe: RttProbe = { stream: undefined, nonce: -1n, sentAtMs: undefined }
    this.probes.set(peer, probe)
    let stream: FrameStream
    try {
      stream = await this.components.openStream(peer, RTT_PROTOCOL, { signal })
    } catch (err) {
      if (this.probes.get(peer) === probe) this.probes.delete(peer)
      if (err instanceof UnsupportedProtocolError) this.unsupported.add(peer)
      if (!signal.aborted) this.components.log.debug('cannot open rtt stream', { peer, error: describe(err) })
      return
    }
    if (this.probes.get(peer) !== probe || signal.aborted) {
      stream.close() // the peer left (or we stopped) while the stream was opening
      return
    }
    probe.stream = stream
    stream.onFrame((frame) => this.onEcho(peer, probe, frame))
    stream.onClose(() => { if (this.probes.get(peer) === probe) this.probes.delete(peer) })
    await this.probe(peer)
  }

  private onEcho(peer: PeerId, probe: RttProbe, frame: Uint8Array): void {
    if (probe.sentAtMs === undefined || frame.byteLength !== RTT_PROBE_BYTES) return
    if (new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getBigUint64(0) !== probe.nonce) return
    this.rtts.set(peer, performance.now() - probe.sentAtMs)
    probe.sentAtMs = undefined
  }
}

/**
 * A libp2p stream as a FrameStream: varint length-prefixed frames (it-length-prefixed) in both
 * directions, a bounded send queue, a bounded buffer until onFrame is set, and exactly one onClose.
 */
class Libp2pFrameStream implements FrameStream {
  private readonly outbound = pushable<Uint8Array>({ objectMode: true })
  /** Our own counts: pushable's readableLength is in bytes whenever items have a byteLength. */
  private queuedFrames = 0
  private queuedBytes = 0
  private frameHandler: ((frame: Uint8Array) => void) | undefined
  private closeHandler: ((error?: Error) => void) | undefined
  private buffered: Uint8Array[] = []
  /** Set once, when the stream ends for any reason. */
  private ending: { error: Error | undefined } | undefined
  private writing: Promise<void> = Promise.resolve()
  private settled: Promise<void> = Promise.resolve()

  constructor(
    private readonly stream: Stream,
    readonly remotePeer: PeerId,
    readonly protocol: string,
    private readonly log: Logger,
    private readonly onEnded: () => void
  ) {}

  get closed(): boolean {
    return this.ending !== undefined
  }

  start(): void {
    this.writing = pipe(this.drainOutbound(), (source) => lp.encode(source), this.stream.sink)
    this.writing.catch((err: unknown) => this.end(asError(err)))
    const reading = pipe(
      this.stream.source,
      (source) => lp.decode(source, { maxDataLength: MAX_FRAME_BYTES }),
      async (frames) => {
        for await (const frame of frames) this.receive(frame.subarray())
      }
    )
    // The remote finishing its side ends the conversation: FrameStream has no half-close. A clean
    // remote close leaves our stream 'open'; if the muxer already began closing it, the connection
    // ended under us (for instance the peer crashed and its kernel closed the socket).
    reading.then(() => {
      this.end(this.stream.status === 'open' ? undefined : new ConnectionLostError(`connection to ${this.remotePeer} closed`))
    }, (err: unknown) => this.end(asError(err)))
  }

  send(frame: Uint8Array): boolean {
    if (this.ending !== undefined) return false
    if (frame.byteLength > MAX_FRAME_BYTES) {
      this.end(new MessageTooLargeError(frame.byteLength, MAX_FRAME_BYTES))
      return false
    }
    if (this.queuedFrames >= MAX_QUEUED_FRAMES || this.queuedBytes + frame.byteLength > MAX_QUEUED_BYTES) {
      this.end(new StreamOverflowError(`send queue full (${this.queuedFrames} frames, ${this.queuedBytes} bytes)`))
      return false
    }
    this.queuedFrames++
    this.queuedBytes += frame.byteLength
    this.outbound.push(frame)
    return true
  }

  onFrame(handler: (frame: Uint8Array) => void): void {
    this.frameHandler = handler
    const backlog = this.buffered
    this.buffered = []
    // Frames that arrived before the handler was set were received; deliver them even if the
    // stream has since ended, before onClose (which is reported asynchronously).
    for (const frame of backlog) this.deliver(frame)
  }

  /** Each handler hears the close once, including one set after the stream ended. */
  onClose(handler: (error?: Error) => void): void {
    this.closeHandler = handler
    if (this.ending !== undefined) this.reportClose(handler)
  }

  close(): void {
    this.end(undefined)
  }

  /** Close and wait (bounded by CLOSE_TIMEOUT_MS) until the remote has seen it. */
  async closeAndSettle(): Promise<void> {
    this.end(undefined)
    await this.settled
  }

  private async * drainOutbound(): AsyncGenerator<Uint8Array> {
    for await (const frame of this.outbound) {
      this.queuedFrames--
      this.queuedBytes -= frame.byteLength
      yield frame
    }
  }

  private receive(frame: Uint8Array): void {
    if (this.ending !== undefined) return
    if (this.frameHandler !== undefined) {
      this.deliver(frame)
      return
    }
    if (this.buffered.length >= MAX_BUFFERED_FRAMES) {
      this.end(new StreamOverflowError(`more than ${MAX_BUFFERED_FRAMES} frames arrived before onFrame was set`))
      return
    }
    this.buffered.push(frame)
  }

  private deliver(frame: Uint8Array): void {
    try {
      this.frameHandler?.(frame)
    } catch (err) {
      this.log.error('frame handler threw', { error: describe(err) })
    }
  }

  /** The single exit: local close, remote close, reset, connection death, or a broken bound. */
  private end(error: Error | undefined): void {
    if (this.ending !== undefined) return
    this.ending = { error }
    this.outbound.end()
    this.onEnded()
    if (error === undefined) {
      this.settled = this.closeGracefully()
    } else {
      this.log.debug('stream ended with error', { error: error.message })
      this.stream.abort(error)
    }
    if (this.closeHandler !== undefined) this.reportClose(this.closeHandler)
  }

  /** Let queued frames flush, then close both ends; reset if that takes too long. Never rejects. */
  private async closeGracefully(): Promise<void> {
    // An aborted or reset stream has nothing left to flush, and its sink may never settle (an
    // inbound stream's sink is multistream-select's wrapper, which does not end on abort).
    if (this.stream.status !== 'open') return
    const deadline = linkedSignal([], CLOSE_TIMEOUT_MS)
    const timedOut = new Promise<void>((resolve) => deadline.signal.addEventListener('abort', () => resolve(), { once: true }))
    try {
      await Promise.race([this.writing.catch(() => undefined), timedOut])
      if (deadline.signal.aborted) throw new Error(`queued frames did not flush within ${CLOSE_TIMEOUT_MS} ms`)
      await this.stream.close({ signal: deadline.signal })
    } catch (err) {
      this.stream.abort(asError(err))
    } finally {
      deadline.dispose()
    }
  }

  private reportClose(handler: (error?: Error) => void): void {
    const error = this.ending?.error
    queueMicrotask(() => {
      try {
        handler(error)
      } catch (err) {
        this.log.error('close handler threw', { error: describe(err) })
      }
    })
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

/**
 * One signal that aborts when any input does (or after timeoutMs). Unlike AbortSignal.any on
 * Node 20, dispose() detaches from the long-lived inputs, so per-call signals are not retained.
 */
function linkedSignal(inputs: Array<AbortSignal | undefined>, timeoutMs?: number): { signal: AbortSignal, dispose: () => void } {
  const controller = new AbortController()
  const detach: Array<() => void> = []
  const abort = (reason: unknown): void => { if (!controller.signal.aborted) controller.abort(reason) }
  for (const input of inputs) {
    if (input === undefined) continue
    if (input.aborted) { abort(input.reason); continue }
    const onAbort = (): void => abort(input.reason)
    input.addEventListener('abort', onAbort, { once: true })
    detach.push(() => input.removeEventListener('abort', onAbort))
  }
  if (timeoutMs !== undefined) {
    const timer = setTimeout(() => abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs)
    timer.unref()
    detach.push(() => clearTimeout(timer))
  }
  return { signal: controller.signal, dispose: () => { for (const undo of detach) undo() } }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err)
}

function withListenerLimit (controller: AbortController): AbortController {
  setMaxListeners(10_000, controller.signal)
  return controller
}
