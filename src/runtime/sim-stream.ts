// Streams over the simulated network: opening one (dial, then one RTT of protocol negotiation) and
// SimStream, one end of an open stream. The delivery model they follow (reliable, FIFO, silently
// dropped on a cut link) is described at the top of sim-network.ts.
import { MessageTooLargeError, StreamOverflowError, UnsupportedProtocolError, asError } from './overlay-errors.ts'
import type { FrameStream, PeerId, TimerHandle } from './ports.ts'
import { MAX_FRAME_BYTES } from './ports.ts'
import type { SimConnection, SimNetwork, SimNode } from './sim-network.ts'
import { AbortError, RPC_HEADER_BYTES, StreamOpenError, StreamResetError } from './sim-overlay.ts'

/** Bytes added to each stream frame: yamux header (12) + length prefix (up to 4). */
export const STREAM_FRAME_OVERHEAD_BYTES = 16

type StreamItem =
  | { kind: 'ack' }
  | { kind: 'frame', data: Uint8Array }
  | { kind: 'close', error?: Error }

interface PendingOpen {
  resolve: (stream: FrameStream) => void
  reject: (error: Error) => void
  timer: TimerHandle
}

/** One end of a simulated stream. */
export class SimStream implements FrameStream {
  closed = false
  peerEnd: SimStream | undefined
  pendingOpen: PendingOpen | undefined
  /** When the last queued outbound item arrives; later items never arrive earlier (FIFO). */
  lastDeliveryMs = -Infinity
  private readonly crashEpoch: number
  private frameHandler: ((frame: Uint8Array) => void) | undefined
  private readonly closeHandlers: Array<(error?: Error) => void> = []
  private closeFired = false
  private closeError: Error | undefined
  private buffered: Uint8Array[] = []
  private outbound: StreamItem[] = []
  private outboundHead = 0
  private readonly deliverNextBound = (): void => { this.deliverNext() }

  constructor (
    private readonly network: SimNetwork,
    readonly owner: SimNode,
    readonly connection: SimConnection,
    readonly remotePeer: PeerId,
    readonly protocol: string
  ) {
    this.crashEpoch = owner.crashEpoch
    connection.streamsOf(owner).add(this)
  }

  send (frame: Uint8Array): boolean {
    if (this.closed) return false
    if (!(frame instanceof Uint8Array)) throw new TypeError('FrameStream.send: frame must be a Uint8Array')
    if (frame.byteLength > MAX_FRAME_BYTES) {
      this.abort(new MessageTooLargeError(frame.byteLength, MAX_FRAME_BYTES, 'frame'))
      return false
    }
    if (this.outbound.length - this.outboundHead >= this.network.maxBufferedFrames) {
      // Like the libp2p adapter's send-queue bound: a sender far ahead of the link is a bug, not a buffer.
      this.abort(new StreamOverflowError(`send queue overflow: ${this.network.maxBufferedFrames} frames in flight to ${this.remotePeer}`))
      return false
    }
    this.owner.countSent(frame.byteLength + STREAM_FRAME_OVERHEAD_BYTES)
    this.enqueue({ kind: 'frame', data: frame.slice() })
    return true
  }

  onFrame (handler: (frame: Uint8Array) => void): void {
    if (typeof handler !== 'function') throw new TypeError('FrameStream.onFrame: handler must be a function')
    this.frameHandler = handler
    // Frames that arrived before a graceful close are still readable, as on a half-closed stream.
    const replay = this.buffered
    this.buffered = []
    for (const frame of replay) {
      if (this.closeError !== undefined) break // aborted meanwhile (e.g. by the handler)
      handler(frame)
    }
  }

  onClose (handler: (error?: Error) => void): void {
    if (typeof handler !== 'function') throw new TypeError('FrameStream.onClose: handler must be a function')
    if (this.closeFired) handler(this.closeError)
    else this.closeHandlers.push(handler)
  }

  close (): void {
    if (this.closed) return
    this.enqueue({ kind: 'close' })
    this.finish(undefined)
  }

  /** Reset both ends: the remote sees the close with an error too. */
  abort (error: Error): void {
    if (this.closed) return
    this.enqueue({ kind: 'close', error: new StreamResetError(`stream reset by ${this.owner.id}: ${error.message}`) })
    this.finish(error)
  }

  /** The connection died under this end: close locally, tell nobody. */
  terminate (error: Error | undefined): void {
    if (this.pendingOpen !== undefined) this.failOpen(error ?? new StreamOpenError(`connection to ${this.remotePeer} closed while opening ${this.protocol}`))
    this.finish(error)
  }

  failOpen (error: Error): void {
    const pending = this.pendingOpen
    if (pending === undefined) return
    this.pendingOpen = undefined
    this.network.clock.clearTimeout(pending.timer)
    this.finish(error)
    pending.reject(error)
  }

  enqueue (item: StreamItem): void {
    if (this.peerEnd === undefined) return
    const network = this.network
    const now = network.clock.now()
    const at = Math.max(now + network.sampleDelay(this.connection, this.owner), this.lastDeliveryMs)
    this.lastDeliveryMs = at
    this.outbound.push(item)
    // Scheduled on the receiver's clock: a stalled receiver takes the frame when the stall ends.
    this.peerEnd.owner.clock.setTimeout(this.deliverNextBound, at - now)
  }

  /** Every timer pops the head, so frames stay in send order even when due times tie. */
  private deliverNext (): void {
    const item = this.outbound[this.outboundHead]!
    this.outbound[this.outboundHead++] = undefined as unknown as StreamItem
    if (this.outboundHead === this.outbound.length) { this.outbound = []; this.outboundHead = 0 }
    const peerEnd = this.peerEnd!
    const canDeliver = this.owner.crashEpoch === this.crashEpoch &&
      this.network.canDeliver(this.connection, this.owner, peerEnd.owner)
    if (!canDeliver) {
      this.network.emitTrace('dropped', this.owner.id, peerEnd.owner.id, `stream ${item.kind}`, 0)
      return
    }
    peerEnd.receive(item)
  }

  private receive (item: StreamItem): void {
    if (item.kind === 'ack') {
      const pending = this.pendingOpen
      if (pending !== undefined) {
        this.pendingOpen = undefined
        this.network.clock.clearTimeout(pending.timer)
        pending.resolve(this)
      } else if (this.closed) {
        // Opened after we gave up (timeout or abort): close the remote end we never handed out.
        this.enqueue({ kind: 'close', error: new StreamOpenError(`${this.owner.id} gave up opening ${this.protocol}`) })
      }
      return
    }
    if (this.closed) return
    if (item.kind === 'close') {
      this.finish(item.error)
      return
    }
    this.owner.countReceived(item.data.byteLength + STREAM_FRAME_OVERHEAD_BYTES)
    this.network.emitTrace('frame', this.remotePeer, this.owner.id, 'frame', item.data.byteLength)
    if (this.frameHandler !== undefined) {
      this.frameHandler(item.data)
    } else if (this.buffered.length >= this.network.maxBufferedFrames) {
      this.abort(new StreamOverflowError(`receive buffer overflow: ${this.buffered.length} frames buffered without an onFrame handler`))
    } else {
      this.buffered.push(item.data)
    }
  }

  private finish (error: Error | undefined): void {
    if (this.closed && this.closeFired) return
    this.closed = true
    this.connection.streamsOf(this.owner).delete(this)
    if (this.pendingOpen !== undefined) return
    this.closeFired = true
    this.closeError = error
    if (error !== undefined) this.buffered = []
    const handlers = this.closeHandlers.splice(0)
    let failure: unknown
    let failed = false
    for (const handler of handlers) {
      try { handler(error) } catch (thrown) {
        if (!failed) { failure = thrown; failed = true }
      }
    }
    if (failed) throw failure
  }
}

/** SimNetwork.openStream: dial if needed, then negotiate `protocol` (one RTT). */
export async function openSimStream (network: SimNetwork, node: SimNode, peer: PeerId, protocol: string, signal?: AbortSignal): Promise<FrameStream> {
  await network.dial(node, peer, signal)
  const connection = node.connections.get(peer)
  if (connection === undefined || node.state !== 'started') throw new StreamOpenError(`connection to ${peer} closed before opening ${protocol}`)
  if (signal?.aborted === true) throw new AbortError(`openStream ${protocol} to ${peer}`)
  const local = new SimStream(network, node, connection, peer, protocol)
  const opened = new Promise<FrameStream>((resolve, reject) => {
    const timer = network.clock.setTimeout(() => {
      local.failOpen(new StreamOpenError(`opening ${protocol} to ${peer} timed out after ${network.connectTimeoutMs} ms`))
    }, network.connectTimeoutMs)
    local.pendingOpen = { resolve, reject, timer }
  })
  const bytes = RPC_HEADER_BYTES + protocol.length
  node.countSent(bytes)
  const remote = connection.other(node)
  const crashEpoch = node.crashEpoch
  remote.clock.setTimeout(() => {
    if (node.crashEpoch !== crashEpoch || !network.canDeliver(connection, node, remote)) return
    remote.countReceived(bytes)
    acceptStream(network, connection, local, remote, protocol)
  }, network.sampleDelay(connection, node))
  if (signal === undefined) return await opened
  const onAbort = (): void => { local.failOpen(new AbortError(`openStream ${protocol} to ${peer}`)) }
  signal.addEventListener('abort', onAbort, { once: true })
  try { return await opened } finally { signal.removeEventListener('abort', onAbort) }
}

function acceptStream (network: SimNetwork, connection: SimConnection, local: SimStream, remote: SimNode, protocol: string): void {
  const dialer = local.owner
  const handler = remote.hooks.streamHandler(protocol)
  if (handler === undefined) {
    dialer.clock.setTimeout(() => {
      if (network.canDeliver(connection, remote, dialer)) local.failOpen(new UnsupportedProtocolError(remote.id, protocol))
    }, network.sampleDelay(connection, remote))
    return
  }
  const accepted = new SimStream(network, remote, connection, dialer.id, protocol)
  accepted.peerEnd = local
  local.peerEnd = accepted
  accepted.enqueue({ kind: 'ack' })
  try { handler(accepted) } catch (error) {
    accepted.abort(asError(error))
  }
}
