// A connected pair of in-memory FrameStreams that deliver after a fixed latency on a clock, for
// unit tests of stream users. `cut()` silently drops everything from then on, like a crashed host.
import type { Clock, FrameStream } from '../../src/runtime/ports.ts'

export interface FramePair {
  a: FrameStream
  b: FrameStream
  /** Frames stop arriving in both directions; neither side is told. */
  cut(): void
}

class PairEnd implements FrameStream {
  peer!: PairEnd
  closed = false
  private frameHandler: ((frame: Uint8Array) => void) | undefined
  private readonly buffered: Uint8Array[] = []
  private closeHandlers: Array<(error?: Error) => void> = []

  constructor (readonly remotePeer: string, readonly protocol: string, private readonly link: { clock: Clock, latencyMs: number, cut: boolean }) {}

  send (frame: Uint8Array): boolean {
    if (this.closed) return false
    const copy = frame.slice()
    this.link.clock.setTimeout(() => { if (!this.link.cut) this.peer.deliver(copy) }, this.link.latencyMs)
    return true
  }

  deliver (frame: Uint8Array): void {
    if (this.closed) return
    if (this.frameHandler === undefined) this.buffered.push(frame)
    else this.frameHandler(frame)
  }

  onFrame (handler: (frame: Uint8Array) => void): void {
    this.frameHandler = handler
    for (const frame of this.buffered.splice(0)) handler(frame)
  }

  onClose (handler: (error?: Error) => void): void {
    this.closeHandlers.push(handler)
  }

  close (): void {
    if (this.closed) return
    this.finish()
    this.link.clock.setTimeout(() => { if (!this.link.cut) this.peer.finish() }, this.link.latencyMs)
  }

  finish (error?: Error): void {
    if (this.closed) return
    this.closed = true
    for (const handler of this.closeHandlers.splice(0)) handler(error)
  }
}

export function createFramePair (clock: Clock, options: { aId: string, bId: string, protocol?: string, latencyMs?: number }): FramePair {
  const link = { clock, latencyMs: options.latencyMs ?? 10, cut: false }
  const protocol = options.protocol ?? 'test'
  const a = new PairEnd(options.bId, protocol, link)
  const b = new PairEnd(options.aId, protocol, link)
  a.peer = b
  b.peer = a
  return { a, b, cut: () => { link.cut = true } }
}
