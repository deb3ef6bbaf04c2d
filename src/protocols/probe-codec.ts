// Frames of the probe protocol `/form-anycast/probe/1.0.0`, after SWIM's ping and ping-req
// (Das et al., 2002): a direct PING answered by PONG, and PING_REQ asking a helper to probe a
// target for us, answered by PING_REQ_ACK with the helper's result.

export const PROBE_PROTOCOL = '/form-anycast/probe/1.0.0'
export const MAX_PROBE_TARGET_BYTES = 128

export type ProbeFrame =
  | { type: 'ping', nonce: number }
  | { type: 'pong', nonce: number }
  | { type: 'ping-req', nonce: number, target: string, timeoutMs: number }
  | { type: 'ping-req-ack', nonce: number, ok: boolean, latencyMs: number }

const TYPE_CODES = { ping: 1, pong: 2, 'ping-req': 3, 'ping-req-ack': 4 } as const

export class ProbeFrameError extends Error {
  override name = 'ProbeFrameError'
  constructor (readonly field: string, reason: string) { super(`probe frame: ${field}: ${reason}`) }
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

export function encodeProbeFrame (frame: ProbeFrame): Uint8Array {
  const target = frame.type === 'ping-req' ? encoder.encode(frame.target) : undefined
  if (target !== undefined && target.byteLength > MAX_PROBE_TARGET_BYTES) throw new ProbeFrameError('target', `longer than ${MAX_PROBE_TARGET_BYTES} bytes`)
  const length = 5 + (frame.type === 'ping-req' ? 2 + target!.byteLength + 4 : frame.type === 'ping-req-ack' ? 1 + 8 : 0)
  const bytes = new Uint8Array(length)
  const view = new DataView(bytes.buffer)
  view.setUint8(0, TYPE_CODES[frame.type])
  view.setUint32(1, frame.nonce >>> 0)
  if (frame.type === 'ping-req') {
    view.setUint16(5, target!.byteLength)
    bytes.set(target!, 7)
    view.setUint32(7 + target!.byteLength, Math.max(0, Math.min(0xffffffff, Math.round(frame.timeoutMs))))
  } else if (frame.type === 'ping-req-ack') {
    view.setUint8(5, frame.ok ? 1 : 0)
    view.setFloat64(6, frame.latencyMs)
  }
  return bytes
}

export function decodeProbeFrame (bytes: Uint8Array): ProbeFrame {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const need = (count: number, field: string): void => { if (bytes.byteLength < count) throw new ProbeFrameError(field, 'truncated') }
  const exact = (count: number): void => { if (bytes.byteLength !== count) throw new ProbeFrameError('frame', `${bytes.byteLength - count} trailing bytes`) }
  need(5, 'header')
  const code = view.getUint8(0)
  const nonce = view.getUint32(1)
  switch (code) {
    case TYPE_CODES.ping: exact(5); return { type: 'ping', nonce }
    case TYPE_CODES.pong: exact(5); return { type: 'pong', nonce }
    case TYPE_CODES['ping-req']: {
      need(7, 'target')
      const length = view.getUint16(5)
      if (length === 0 || length > MAX_PROBE_TARGET_BYTES) throw new ProbeFrameError('target', `length ${length} out of range`)
      need(7 + length + 4, 'timeoutMs')
      exact(7 + length + 4)
      let target: string
      try { target = decoder.decode(bytes.subarray(7, 7 + length)) } catch { throw new ProbeFrameError('target', 'not valid UTF-8') }
      return { type: 'ping-req', nonce, target, timeoutMs: view.getUint32(7 + length) }
    }
    case TYPE_CODES['ping-req-ack']: {
      exact(14)
      const latencyMs = view.getFloat64(6)
      if (!Number.isFinite(latencyMs) || latencyMs < 0) throw new ProbeFrameError('latencyMs', 'must be a finite number >= 0')
      return { type: 'ping-req-ack', nonce, ok: view.getUint8(5) === 1, latencyMs }
    }
    default: throw new ProbeFrameError('type', `unknown type ${code}`)
  }
}
