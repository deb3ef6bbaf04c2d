// Ports: the only doors through which actors touch the world. Production wires them to libp2p, the
// disk and the real clock; the simulator wires the same actors to a virtual clock, a seeded PRNG and
// a simulated network. If an actor behaves differently in the two worlds, an adapter is wrong.

import type { DataplaneOp, DataplaneState } from '../protocols/dataplane-table.ts'

/** Opaque timer handle; only the clock that made it can clear it. */
export type TimerHandle = unknown

/**
 * Time. Shape-compatible with xstate's `clock` option, so one object drives both our code and
 * xstate's delayed transitions. `now()` is milliseconds (epoch for the real clock, since start for a
 * virtual one).
 */
export interface Clock {
  now(): number
  setTimeout(callback: () => void, delayMs: number): TimerHandle
  clearTimeout(handle: TimerHandle): void
}

/** Chance. Seeded and forkable: a fork's stream depends only on the parent's seed and the label. */
export interface Random {
  readonly seed: number
  /** Uniform float in [0, 1). */
  next(): number
  /** Uniform unsigned 32-bit integer. */
  nextUint32(): number
  /** Uniform integer in [0, maxExclusive). */
  int(maxExclusive: number): number
  /** Independent child stream, e.g. fork('node:n17') or fork('gossip'). */
  fork(label: string): Random
}

export type PeerId = string
export type Unsubscribe = () => void

export interface OverlayMessage {
  topic: string
  /** The author (origin) of the message, not the neighbour that forwarded it. */
  from: PeerId
  data: Uint8Array
}

/** gossipsub's verdicts: accept delivers and forwards, reject drops and penalises, ignore drops. */
export type ValidationResult = 'accept' | 'reject' | 'ignore'
export type TopicValidator = (message: OverlayMessage) => ValidationResult

/** Largest frame either adapter sends or accepts on a stream; bigger ones abort the stream. */
export const MAX_FRAME_BYTES = 64 * 1024
/** Largest message either adapter publishes or accepts on a topic. */
export const MAX_MESSAGE_BYTES = 64 * 1024

/**
 * A reliable, ordered, framed duplex stream to one peer (libp2p: a length-prefixed stream over
 * yamux; simulated: frames delivered in order after the link latency).
 */
export interface FrameStream {
  readonly remotePeer: PeerId
  readonly protocol: string
  readonly closed: boolean
  /** Queue a frame; returns false (and sends nothing) once the stream is closed. */
  send(frame: Uint8Array): boolean
  /** One handler; frames that arrive before it is set are buffered (bounded) and replayed. */
  onFrame(handler: (frame: Uint8Array) => void): void
  /** Called once when either side closes or the connection dies; `error` set when abnormal. */
  onClose(handler: (error?: Error) => void): void
  close(): void
}

export type PeerEventType = 'peer.connected' | 'peer.disconnected'
export interface PeerEvent {
  type: PeerEventType
  peerId: PeerId
}

/**
 * Traffic counters. The simulated adapter counts every RPC and frame on the wire, headers and
 * gossip control included, which is what its bandwidth figures report. The libp2p adapter counts
 * the payload bytes it publishes and delivers on topics (gossipsub's own framing and control
 * traffic are not visible to it), so its figures are a lower bound.
 */
export interface OverlayStats {
  messagesSent: number
  bytesSent: number
  messagesReceived: number
  bytesReceived: number
}

export interface Overlay {
  readonly peerId: PeerId
  /** Idempotent. */
  start(): Promise<void>
  /** Idempotent; closes every stream and connection. */
  stop(): Promise<void>
  /** A node never receives its own publications (gossipsub's emitSelf = false). */
  subscribe(topic: string, handler: (message: OverlayMessage) => void): Unsubscribe
  /** Runs before delivery and before forwarding; only 'accept' reaches subscribers. */
  setValidator(topic: string, validator: TopicValidator | undefined): void
  /** Hands the message to the gossip layer. Never throws because no peer listens yet. */
  publish(topic: string, data: Uint8Array): Promise<void>
  handleStream(protocol: string, handler: (stream: FrameStream) => void): void
  unhandleStream(protocol: string): void
  openStream(peer: PeerId, protocol: string, options?: { signal?: AbortSignal }): Promise<FrameStream>
  /** Ensure a connection to a known peer (bootstrap list or peer store). */
  dial(peer: PeerId, options?: { signal?: AbortSignal }): Promise<void>
  connectedPeers(): PeerId[]
  onPeerEvent(listener: (event: PeerEvent) => void): Unsubscribe
  /** Latest measured round-trip time to a connected peer, if any. */
  rttMs(peer: PeerId): number | undefined
  stats(): OverlayStats
}

export type LogFields = Record<string, unknown>
export interface Logger {
  debug(message: string, fields?: LogFields): void
  info(message: string, fields?: LogFields): void
  warn(message: string, fields?: LogFields): void
  error(message: string, fields?: LogFields): void
  child(bindings: LogFields): Logger
}

export type MetricLabels = Record<string, string>
export interface Counter { inc(labels?: MetricLabels, value?: number): void }
export interface Gauge { set(value: number, labels?: MetricLabels): void }
export interface Metrics {
  counter(name: string, help: string, labelNames?: readonly string[]): Counter
  gauge(name: string, help: string, labelNames?: readonly string[]): Gauge
}

/** One plain-JSON record of what an actor did; see src/runtime/inspection.ts. */
export interface InspectionEvent {
  /** Clock time in ms (virtual in the simulator). */
  t: number
  node: string
  kind: 'actor.started' | 'actor.stopped' | 'actor.event' | 'actor.snapshot' | 'supervisor'
  /** Stable id such as `peer-session:<peerId>`. */
  systemId: string
  /** Actor kind, e.g. `peer-session`. */
  actor: string
  /** systemId of the supervising parent, if any. */
  parent?: string
  /** State value after the step, for snapshots. */
  state?: unknown
  /** Event type that caused the step, for events and snapshots. */
  event?: string
  /** Source systemId of an event sent by another actor. */
  source?: string
  /** Supervisor detail: child id, decision (restart, escalate, stop), reason. */
  detail?: Record<string, unknown>
}

/** Signs with this node's key (Ed25519 in both worlds). */
export interface Signer {
  readonly nodeId: string
  sign(data: Uint8Array): Uint8Array
}

/** Verifies other nodes' signatures; knows which key belongs to which node id. */
export interface Verifier {
  /** False for a bad signature and for a node whose key is unknown. */
  verify(nodeId: string, data: Uint8Array, signature: Uint8Array): boolean
}

export type StoreOp =
  | { type: 'put', key: string, value: Uint8Array }
  | { type: 'del', key: string }

/**
 * Durable key-value storage for the replicated state (LevelDB in production, memory in the
 * simulator). Keys are non-empty UTF-8 strings, ordered by their bytes.
 */
export interface Store {
  /** Idempotent. */
  open(): Promise<void>
  get(key: string): Promise<Uint8Array | undefined>
  /** Atomic and durable against a process kill once it resolves (written to the OS). */
  batch(ops: StoreOp[]): Promise<void>
  /** Keys starting with prefix, in key order. */
  entries(prefix: string): AsyncIterable<[string, Uint8Array]>
  /** Idempotent. */
  close(): Promise<void>
}

export type ProbeTarget =
  | { kind: 'tcp', host: string, port: number }
  | { kind: 'http', url: string, expectStatus?: number }
  | { kind: 'peer', peerId: PeerId }

export interface ProbeResult {
  ok: boolean
  /** Round trip or connect time; meaningful when ok. */
  latencyMs: number
  error?: string
  /**
   * Not ok, but no evidence against the target either: the probe could not be sent because the
   * way to the target was still being set up (a probe stream opening). Probers skip it; a setup
   * that fails fails the probe waiting on it.
   */
  inconclusive?: boolean
}

/** Health checks. Real: sockets and HTTP; simulated: the world's service table and network. */
export interface Prober {
  probe(target: ProbeTarget, options: { timeoutMs: number, signal?: AbortSignal }): Promise<ProbeResult>
  /** Ask `via` to probe a peer for us (SWIM's indirect probe, ping-req). */
  probeVia(via: PeerId, target: PeerId, options: { timeoutMs: number, signal?: AbortSignal }): Promise<ProbeResult>
}

export interface Inspector {
  emit(event: InspectionEvent): void
}

/**
 * The packet path: a tunnel interface (WireGuard) whose peers and AllowedIPs carry each anycast
 * prefix to the origin its best route chose, and the anycast addresses delivered here. The
 * reconciler (dataplane-reconciler.ts) reads what is there, diffs it against the desired table
 * (src/protocols/dataplane-table.ts) and applies the difference; adapters only read and apply.
 */
export interface Dataplane {
  readonly kind: 'memory' | 'wireguard'
  /** Idempotent: creates or adopts the interface. */
  start(options?: { signal?: AbortSignal }): Promise<void>
  /** Idempotent: removes what start() and apply() put on the host. */
  stop(): Promise<void>
  /** What the interface and loopback hold now, only what this dataplane manages. */
  read(options?: { signal?: AbortSignal }): Promise<DataplaneState>
  /** Applies the operations in order; throws DataplaneError on the first that fails. */
  apply(ops: readonly DataplaneOp[], options?: { signal?: AbortSignal }): Promise<void>
}
