// A libp2p stream as the FrameStream port: varint length-prefixed frames both ways, bounded send
// queue and receive buffer, one close report. Used by libp2p-overlay.ts for every stream it opens
// or accepts.
import { type Stream } from '@libp2p/interface'
import { pushable } from 'it-pushable'
import * as lp from 'it-length-prefixed'
import { pipe } from 'it-pipe'
import {
  ConnectionLostError, MessageTooLargeError, StreamOverflowError, asError, describeError
} from './overlay-errors.ts'
import { MAX_FRAME_BYTES, type FrameStream, type Logger, type PeerId } from './ports.ts'

/** Frames received before the owner sets onFrame; more than this aborts the stream. */
export const MAX_BUFFERED_FRAMES = 1000
/** Frames queued for sending but not yet written; more than this aborts the stream. */
export const MAX_QUEUED_FRAMES = 1000
export const MAX_QUEUED_BYTES = 4 * 1024 * 1024
/** How long a graceful close waits for queued frames to flush before resetting the stream. */
const CLOSE_TIMEOUT_MS = 2000

/**
 * A libp2p stream as a FrameStream: varint length-prefixed frames (it-length-prefixed) in both
 * directions, a bounded send queue, a bounded buffer until onFrame is set, and exactly one onClose.
 */
export class Libp2pFrameStream implements FrameStream {
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
      this.end(new MessageTooLargeError(frame.byteLength, MAX_FRAME_BYTES, 'frame'))
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
      this.log.error('frame handler threw', { error: describeError(err) })
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
        this.log.error('close handler threw', { error: describeError(err) })
      }
    })
  }
}

/**
 * One signal that aborts when any input does (or after timeoutMs). Unlike AbortSignal.any on
 * Node 20, dispose() detaches from the long-lived inputs, so per-call signals are not retained.
 */
export function linkedSignal(inputs: Array<AbortSignal | undefined>, timeoutMs?: number): { signal: AbortSignal, dispose: () => void } {
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
