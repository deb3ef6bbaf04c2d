// Node heartbeats gossiped on the health topic: who is alive, where, and since when. Like
// form-node-metrics' heartbeat (every 30 s there; ours defaults to 1 s so membership follows the
// overlay's hold times). JSON on the wire, parsed into typed values with a bound on every field.
import { formatAddress, parseAddress } from './cidr.ts'

export interface Heartbeat {
  /** Node's human name. */
  name: string
  /** Monotonic per incarnation; a restart begins a new incarnation. */
  seq: number
  /** Random per process start, so a restarted node's seq 1 is not mistaken for an old message. */
  incarnation: number
  location?: { lat: number, lon: number, region?: string }
  /** Sessions this node has established, for a quick view of the topology. */
  established: number
  /** The IP address DNS answers give for this node (GeoDNS, `bootstrap.<zone>`); absent when it has none. */
  address?: string
  /**
   * The sender's current period between heartbeats (it grows with the membership: membership.ts),
   * so a receiver judges the sender stale against the sender's own cadence. Absent from senders
   * that predate it; receivers then assume their own base interval.
   */
  intervalMs?: number
}

export const MAX_HEARTBEAT_BYTES = 1024
/** Bounds on a heartbeat's advertised interval: 100 ms to an hour. */
export const MIN_HEARTBEAT_INTERVAL_MS = 100
export const MAX_HEARTBEAT_INTERVAL_MS = 3_600_000

export class HeartbeatError extends Error {
  override name = 'HeartbeatError'
  constructor (readonly field: string, reason: string) { super(`heartbeat: ${field}: ${reason}`) }
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

export function encodeHeartbeat (heartbeat: Heartbeat): Uint8Array {
  const bytes = encoder.encode(JSON.stringify(heartbeat))
  if (bytes.byteLength > MAX_HEARTBEAT_BYTES) throw new HeartbeatError('message', `larger than ${MAX_HEARTBEAT_BYTES} bytes`)
  return bytes
}

function finite (value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) throw new HeartbeatError(field, `must be a number in [${min}, ${max}]`)
  return value
}

function text (value: unknown, field: string, maxLength: number): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > maxLength) throw new HeartbeatError(field, `must be a string of 1..${maxLength} characters`)
  return value
}

/** An IPv4 or IPv6 address, kept in its canonical text so every node compares the same spelling. */
function ipAddress (value: unknown, field: string): string {
  const address = text(value, field, 45)
  try {
    return formatAddress(parseAddress(address).bytes)
  } catch {
    throw new HeartbeatError(field, 'must be an IPv4 or IPv6 address')
  }
}

export function decodeHeartbeat (bytes: Uint8Array): Heartbeat {
  if (bytes.byteLength > MAX_HEARTBEAT_BYTES) throw new HeartbeatError('message', `larger than ${MAX_HEARTBEAT_BYTES} bytes`)
  let raw: unknown
  try { raw = JSON.parse(decoder.decode(bytes)) } catch { throw new HeartbeatError('message', 'not valid JSON') }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new HeartbeatError('message', 'must be an object')
  const record = raw as Record<string, unknown>
  const heartbeat: Heartbeat = {
    name: text(record.name, 'name', 63),
    seq: finite(record.seq, 'seq', 0, Number.MAX_SAFE_INTEGER),
    incarnation: finite(record.incarnation, 'incarnation', 0, 0xffffffff),
    established: finite(record.established, 'established', 0, 100_000)
  }
  if (record.location !== undefined) {
    const location = record.location as Record<string, unknown> | null
    if (location === null || typeof location !== 'object') throw new HeartbeatError('location', 'must be an object')
    heartbeat.location = { lat: finite(location.lat, 'location.lat', -90, 90), lon: finite(location.lon, 'location.lon', -180, 180) }
    if (location.region !== undefined) heartbeat.location.region = text(location.region, 'location.region', 64)
  }
  if (record.address !== undefined) heartbeat.address = ipAddress(record.address, 'address')
  if (record.intervalMs !== undefined) {
    heartbeat.intervalMs = finite(record.intervalMs, 'intervalMs', MIN_HEARTBEAT_INTERVAL_MS, MAX_HEARTBEAT_INTERVAL_MS)
    if (!Number.isInteger(heartbeat.intervalMs)) throw new HeartbeatError('intervalMs', 'must be a whole number of milliseconds')
  }
  return heartbeat
}
