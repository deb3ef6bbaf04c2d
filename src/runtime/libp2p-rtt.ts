// Overlay.rttMs for the libp2p adapter: the echo protocol's two sides, the server (serveRttEcho)
// and the per-peer prober (RttProber) that libp2p-overlay.ts runs while it is started.
import { UnsupportedProtocolError, describeError } from './overlay-errors.ts'
import type { FrameStream, Logger, PeerId } from './ports.ts'

export const DEFAULT_RTT_INTERVAL_MS = 1000
/**
 * RTT probes ride a long-lived echo stream per peer (8-byte nonces timed with performance.now()).
 * libp2p's ping service opens a new stream per ping and reports whole milliseconds including
 * protocol negotiation, so on a LAN it reads 0-2 ms whatever the real RTT is.
 */
export const RTT_PROTOCOL = '/form-anycast/rtt/1.0.0'
const RTT_PROBE_BYTES = 8
/** A probe unanswered for this long (or the RTT interval, if longer) counts as lost. */
const MIN_PROBE_TIMEOUT_MS = 5000

export interface RttProberComponents {
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
export function serveRttEcho(stream: FrameStream): void {
  stream.onFrame((frame) => {
    if (frame.byteLength === RTT_PROBE_BYTES) stream.send(frame)
    else stream.close()
  })
}

/**
 * Every intervalMs, one probe per connected peer over that peer's echo stream; at most one probe
 * outstanding per peer. Keeps the latest RTT; forgets it when the peer disconnects.
 */
export class RttProber {
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
      if (!signal.aborted) this.components.log.debug('cannot open rtt stream', { peer, error: describeError(err) })
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
