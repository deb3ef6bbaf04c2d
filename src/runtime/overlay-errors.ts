// Errors both Overlay adapters raise (libp2p-overlay.ts and the simulated sim-overlay.ts). One class
// each, so a caller can branch on `instanceof` or `error.name` whichever adapter is underneath.
// Errors only one adapter can raise stay in that adapter's module.
import type { PeerId } from './ports.ts'

/** publish/openStream/dial on an overlay that is not running. */
export class OverlayNotRunningError extends Error {
  override name = 'OverlayNotRunningError'
  /** The overlay that refused, when the adapter says which. */
  readonly peerId: PeerId | undefined

  constructor (message: string, options: { peerId?: PeerId } = {}) {
    super(message)
    this.peerId = options.peerId
  }
}

/** publish or send: the payload exceeds MAX_MESSAGE_BYTES (a topic message) or MAX_FRAME_BYTES (a stream frame; the stream is aborted). */
export class MessageTooLargeError extends Error {
  override name = 'MessageTooLargeError'
  constructor (readonly sizeBytes: number, readonly limitBytes: number, what: 'message' | 'frame') {
    super(`${what} of ${sizeBytes} bytes is too large: it exceeds the ${limitBytes}-byte limit (${what === 'message' ? 'MAX_MESSAGE_BYTES' : 'MAX_FRAME_BYTES; stream aborted'})`)
  }
}

/** openStream: the remote peer does not serve the protocol. */
export class UnsupportedProtocolError extends Error {
  override name = 'UnsupportedProtocolError'
  constructor (readonly peerId: PeerId, readonly protocol: string, options?: { cause?: unknown }) {
    super(`peer ${peerId} does not support protocol ${protocol}`, options)
  }
}

/** A stream's receive buffer or send queue passed its bound; the stream was aborted. */
export class StreamOverflowError extends Error {
  override name = 'StreamOverflowError'
}

/** A stream was shut underneath its owner because its connection went away (timeout, reset), not by a clean close. */
export class ConnectionLostError extends Error {
  override name = 'ConnectionLostError'
}

/** `name: message` for logs, whatever was thrown. */
export function describeError (err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err)
}

/** What was thrown, as an Error (a non-Error is wrapped with its string form as the message). */
export function asError (err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}
