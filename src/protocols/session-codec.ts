// Frames of the session protocol `/form-anycast/session/1.0.0` between neighbours, modelled on the
// BGP messages of RFC 4271 §4 (OPEN, KEEPALIVE, UPDATE, NOTIFICATION). Every frame is one
// length-prefixed message on the stream; this codec handles its body:
//
//   byte 0: frame type; then the fields of that type, big-endian, strings as u16 length + UTF-8.
//
// Decoding is defensive: every read is bounds-checked and a malformed frame raises a
// SessionFrameError that names the field, so a session can answer with a precise NOTIFICATION.

import { ByteReader, ByteWriter, utf8Length, type FieldError } from './bytes.ts'

export const SESSION_PROTOCOL = '/form-anycast/session/1.0.0'
export const SESSION_PROTOCOL_VERSION = 1

export const FrameType = { open: 1, keepalive: 2, update: 3, notification: 4 } as const

/** NOTIFICATION error codes (RFC 4271 §4.5, narrowed to what an overlay session needs). */
export const NotificationCode = {
  messageHeaderError: 1,
  openMessageError: 2,
  updateMessageError: 3,
  holdTimerExpired: 4,
  finiteStateMachineError: 5,
  cease: 6
} as const
export type NotificationCodeValue = typeof NotificationCode[keyof typeof NotificationCode]

/** OPEN message error subcodes (RFC 4271 §6.2, adapted). */
export const OpenErrorSubcode = {
  unsupportedVersion: 1,
  wrongNetwork: 2,
  badNodeId: 3,
  unacceptableHoldTime: 6
} as const

export const MAX_STRING_BYTES = 256
export const MAX_CAPABILITIES = 32
export const MAX_UPDATE_BYTES = 60 * 1024

export interface OpenFrame {
  type: 'open'
  version: number
  networkId: string
  nodeId: string
  holdTimeMs: number
  capabilities: string[]
}

/**
 * KEEPALIVE doubles as an RTT probe, as NTP does: the sender stamps its own clock and echoes the
 * last stamp it received with how long it held it, so the receiver computes
 * rtt = now - echoSentAtMs - echoHeldMs without synchronised clocks.
 */
export interface KeepaliveFrame {
  type: 'keepalive'
  sentAtMs: number
  echoSentAtMs: number
  echoHeldMs: number
}

export interface UpdateFrame {
  type: 'update'
  payload: Uint8Array
}

export interface NotificationFrame {
  type: 'notification'
  code: number
  subcode: number
  message: string
}

export type SessionFrame = OpenFrame | KeepaliveFrame | UpdateFrame | NotificationFrame

export class SessionFrameError extends Error {
  override name = 'SessionFrameError'
  constructor (readonly field: string, reason: string) {
    super(`session frame: ${field}: ${reason}`)
  }
}

const sessionError: FieldError = (field, reason) => new SessionFrameError(field, reason)

function stringLength (value: string, field: string): number {
  const length = utf8Length(value)
  if (length > MAX_STRING_BYTES) throw new SessionFrameError(field, `longer than ${MAX_STRING_BYTES} bytes`)
  return 2 + length
}

export function encodingLength (frame: SessionFrame): number {
  switch (frame.type) {
    case 'open':
      return 1 + 1 + stringLength(frame.networkId, 'open.networkId') + stringLength(frame.nodeId, 'open.nodeId') + 4 + 1 +
        frame.capabilities.reduce((sum, capability) => sum + stringLength(capability, 'open.capabilities'), 0)
    case 'keepalive':
      return 1 + 8 * 3
    case 'update':
      return 1 + 4 + frame.payload.byteLength
    case 'notification':
      return 1 + 1 + 1 + stringLength(frame.message, 'notification.message')
  }
}

function checkUint (value: number, max: number, field: string): void {
  if (!Number.isInteger(value) || value < 0 || value > max) throw new SessionFrameError(field, `must be an integer in [0, ${max}]`)
}

export function encode (frame: SessionFrame): Uint8Array {
  const writer = new ByteWriter(encodingLength(frame))
  writer.u8(FrameType[frame.type])
  switch (frame.type) {
    case 'open':
      checkUint(frame.version, 0xff, 'open.version')
      checkUint(frame.holdTimeMs, 0xffffffff, 'open.holdTimeMs')
      if (frame.capabilities.length > MAX_CAPABILITIES) throw new SessionFrameError('open.capabilities', `more than ${MAX_CAPABILITIES}`)
      writer.u8(frame.version)
      writer.string16(frame.networkId)
      writer.string16(frame.nodeId)
      writer.u32(frame.holdTimeMs)
      writer.u8(frame.capabilities.length)
      for (const capability of frame.capabilities) writer.string16(capability)
      break
    case 'keepalive':
      writer.f64(frame.sentAtMs)
      writer.f64(frame.echoSentAtMs)
      writer.f64(frame.echoHeldMs)
      break
    case 'update':
      if (frame.payload.byteLength > MAX_UPDATE_BYTES) throw new SessionFrameError('update.payload', `larger than ${MAX_UPDATE_BYTES} bytes`)
      writer.u32(frame.payload.byteLength)
      writer.raw(frame.payload)
      break
    case 'notification':
      checkUint(frame.code, 0xff, 'notification.code')
      checkUint(frame.subcode, 0xff, 'notification.subcode')
      writer.u8(frame.code)
      writer.u8(frame.subcode)
      writer.string16(frame.message)
      break
  }
  return writer.bytes
}

export function decode (bytes: Uint8Array): SessionFrame {
  if (bytes.byteLength === 0) throw new SessionFrameError('frame', 'empty')
  const reader = new ByteReader(bytes, sessionError)
  const type = reader.u8('frame.type')
  let frame: SessionFrame
  switch (type) {
    case FrameType.open: {
      const version = reader.u8('open.version')
      const networkId = reader.string16('open.networkId', MAX_STRING_BYTES)
      const nodeId = reader.string16('open.nodeId', MAX_STRING_BYTES)
      const holdTimeMs = reader.u32('open.holdTimeMs')
      const count = reader.u8('open.capabilities')
      if (count > MAX_CAPABILITIES) throw new SessionFrameError('open.capabilities', `more than ${MAX_CAPABILITIES}`)
      const capabilities: string[] = []
      for (let i = 0; i < count; i++) capabilities.push(reader.string16('open.capabilities', MAX_STRING_BYTES))
      frame = { type: 'open', version, networkId, nodeId, holdTimeMs, capabilities }
      break
    }
    case FrameType.keepalive:
      frame = { type: 'keepalive', sentAtMs: reader.f64('keepalive.sentAtMs'), echoSentAtMs: reader.f64('keepalive.echoSentAtMs'), echoHeldMs: reader.f64('keepalive.echoHeldMs') }
      break
    case FrameType.update: {
      const length = reader.u32('update.length')
      if (length > MAX_UPDATE_BYTES) throw new SessionFrameError('update.payload', `larger than ${MAX_UPDATE_BYTES} bytes`)
      frame = { type: 'update', payload: reader.raw(length, 'update.payload') }
      break
    }
    case FrameType.notification:
      frame = { type: 'notification', code: reader.u8('notification.code'), subcode: reader.u8('notification.subcode'), message: reader.string16('notification.message', MAX_STRING_BYTES) }
      break
    default:
      throw new SessionFrameError('frame.type', `unknown type ${type}`)
  }
  reader.end('frame')
  return frame
}
