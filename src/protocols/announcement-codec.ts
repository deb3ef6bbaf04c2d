// Route announcements and reach reports on the wire: one UpdateMessage is both a gossipsub message
// on the routes topic and the payload of a session UPDATE frame (session-codec.ts), so it obeys the
// UPDATE bound of 60 KiB. Binary, big-endian, in the style of session-codec:
//
//   update:       u8 version (3) · u16 announcement count · signed announcement × count ·
//                 u8 reach flag (0 | 1) · reach report when the flag is 1
//   signed:       announcement body · u8 signature length · signature
//   body:         str prefix · str service · str origin · f64 seq · u8 flags · u8 health ·
//                 u16 preference · f64 load · u32 ttlMs · [f64 lat · f64 lon · [str region]]
//                 flags: bit 0 withdrawn, bit 1 location present, bit 2 region present
//   reach:        str from · f64 seq · u16 entry count · (str origin · f64 rttMs) × count ·
//                 u16 relaying count · str prefix × count (prefixes the reporter forwards through a
//                 relay) · u16 pending count · str prefix × count (prefixes it is about to forward
//                 through a relay); each list is absent from the object when its count is 0
//   str:          u8 byte length · UTF-8
//
// The encoding is canonical: every value has exactly one encoding and decoding rejects anything
// else (unknown flag bits, trailing bytes, invalid UTF-8), so encode(decode(bytes)) equals bytes.
// The signature covers SIGNING_DOMAIN followed by the body, so a signature over an announcement can
// never be replayed as a signature over some other kind of message (domain separation).
// Decoding validates every field and raises an AnnouncementError naming it; a peer's bad message
// is a typed error, never a crash.
import { parsePrefix, PrefixError } from './cidr.ts'
import { MAX_UPDATE_BYTES } from './session-codec.ts'
import { ByteReader, ByteWriter } from './bytes.ts'
import type { HealthState, ReachReport, RouteAnnouncement, SignedAnnouncement } from './routes.ts'
import type { Signer, Verifier } from '../runtime/ports.ts'

/**
 * 3: reach reports say apart the prefixes their sender relays and those it is about to relay
 * (version 2 had one list for both, version 1 none).
 */
export const UPDATE_VERSION = 3
export const SIGNING_DOMAIN = 'form-anycast/announce/v1\n'
export const MAX_UPDATE_MESSAGE_BYTES = MAX_UPDATE_BYTES
export const MAX_ANNOUNCEMENTS_PER_UPDATE = 256
export const MAX_REACH_ENTRIES = 1024
export const MAX_REACH_RELAYING = 1024
export const MAX_SIGNATURE_BYTES = 128
export const MAX_NODE_ID_LENGTH = 128
export const MAX_REGION_LENGTH = 64
export const MAX_RTT_MS = 60_000
export const MIN_TTL_MS = 1_000
export const MAX_TTL_MS = 86_400_000
export const MAX_PREFERENCE = 1_000

export interface UpdateMessage {
  announcements: SignedAnnouncement[]
  reach?: ReachReport
}

export class AnnouncementError extends Error {
  override name = 'AnnouncementError'
  constructor (readonly field: string, readonly reason: string) {
    super(`announcement: ${field}: ${reason}`)
  }
}

const SERVICE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/
/** Node ids are peer ids (base58btc) or simulator names: visible ASCII, no spaces. */
const NODE_ID = /^[\x21-\x7e]{1,128}$/
/** Control characters and unpaired surrogates (which UTF-8 cannot carry) are refused. */
const UNPRINTABLE = /[\p{Cc}\p{Cs}]/u
const HEALTH_CODES: Record<HealthState, number> = { healthy: 1, degraded: 2, failed: 3 }
const HEALTH_BY_CODE: Array<HealthState | undefined> = [undefined, 'healthy', 'degraded', 'failed']
const FLAG_WITHDRAWN = 1
const FLAG_LOCATION = 2
const FLAG_REGION = 4

const utf8Encoder = new TextEncoder()

// --- validation -------------------------------------------------------------------------------

function isRecord (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function checkNumber (value: unknown, field: string, min: number, max: number, integer: boolean): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw new AnnouncementError(field, `must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}]`)
  }
}

function checkNodeId (value: unknown, field: string): void {
  if (typeof value !== 'string' || !NODE_ID.test(value)) {
    throw new AnnouncementError(field, `must be 1..${MAX_NODE_ID_LENGTH} visible ASCII characters`)
  }
}

function checkPrefix (value: unknown, field: string): void {
  if (typeof value !== 'string') throw new AnnouncementError(field, 'must be a string')
  let canonical: string
  try {
    canonical = parsePrefix(value).text
  } catch (error) {
    if (error instanceof PrefixError) throw new AnnouncementError(field, error.reason)
    throw error
  }
  // One spelling per prefix, so a prefix is a map key everywhere (route table, DNS, status API).
  if (canonical !== value) throw new AnnouncementError(field, `not canonical (write "${canonical}")`)
}

function checkLocation (value: unknown, field: string): void {
  if (!isRecord(value)) throw new AnnouncementError(field, 'must be an object')
  checkNumber(value.lat, `${field}.lat`, -90, 90, false)
  checkNumber(value.lon, `${field}.lon`, -180, 180, false)
  if (value.region === undefined) return
  const region = value.region
  if (typeof region !== 'string' || region.length === 0 || region.length > MAX_REGION_LENGTH || UNPRINTABLE.test(region)) {
    throw new AnnouncementError(`${field}.region`, `must be 1..${MAX_REGION_LENGTH} printable characters`)
  }
}

function checkAttributes (value: unknown, field: string): void {
  if (!isRecord(value)) throw new AnnouncementError(field, 'must be an object')
  if (typeof value.health !== 'string' || !Object.hasOwn(HEALTH_CODES, value.health)) {
    throw new AnnouncementError(`${field}.health`, 'must be "healthy", "degraded" or "failed"')
  }
  checkNumber(value.preference, `${field}.preference`, 0, MAX_PREFERENCE, true)
  checkNumber(value.load, `${field}.load`, 0, 1, false)
  checkNumber(value.ttlMs, `${field}.ttlMs`, MIN_TTL_MS, MAX_TTL_MS, true)
  if (value.location !== undefined) checkLocation(value.location, `${field}.location`)
}

/**
 * Throws AnnouncementError (with the offending field, prefixed by `path`) unless `a` is a
 * well-formed announcement within bounds. Accepts `unknown` shapes, so it also guards values that
 * did not come through the decoder.
 */
export function validateAnnouncement (a: RouteAnnouncement, path = ''): void {
  const value: unknown = a
  if (!isRecord(value)) throw new AnnouncementError(path || 'announcement', 'must be an object')
  checkPrefix(value.prefix, `${path}prefix`)
  if (typeof value.service !== 'string' || !SERVICE_NAME.test(value.service)) {
    throw new AnnouncementError(`${path}service`, 'must match ^[a-z0-9][a-z0-9-]{0,62}$')
  }
  checkNodeId(value.origin, `${path}origin`)
  checkNumber(value.seq, `${path}seq`, 0, Number.MAX_SAFE_INTEGER, true)
  if (typeof value.withdrawn !== 'boolean') throw new AnnouncementError(`${path}withdrawn`, 'must be a boolean')
  checkAttributes(value.attributes, `${path}attributes`)
}

function validateSigned (s: SignedAnnouncement, path: string): void {
  const value: unknown = s
  if (!isRecord(value)) throw new AnnouncementError(path === '' ? 'signed' : path.slice(0, -1), 'must be an object')
  validateAnnouncement(value.announcement as RouteAnnouncement, `${path}announcement.`)
  const signature = value.signature
  if (!(signature instanceof Uint8Array) || signature.byteLength === 0 || signature.byteLength > MAX_SIGNATURE_BYTES) {
    throw new AnnouncementError(`${path}signature`, `must be 1..${MAX_SIGNATURE_BYTES} bytes`)
  }
}

/** Throws AnnouncementError unless `r` is a well-formed reach report within bounds. */
export function validateReachReport (r: ReachReport, path = 'reach.'): void {
  const value: unknown = r
  if (!isRecord(value)) throw new AnnouncementError(path.slice(0, -1), 'must be an object')
  checkNodeId(value.from, `${path}from`)
  checkNumber(value.seq, `${path}seq`, 0, Number.MAX_SAFE_INTEGER, true)
  const entries = value.entries
  if (!Array.isArray(entries)) throw new AnnouncementError(`${path}entries`, 'must be an array')
  if (entries.length > MAX_REACH_ENTRIES) throw new AnnouncementError(`${path}entries`, `more than ${MAX_REACH_ENTRIES}`)
  const seen = new Set<string>()
  entries.forEach((entry: unknown, index) => {
    const field = `${path}entries[${index}]`
    if (!isRecord(entry)) throw new AnnouncementError(field, 'must be an object')
    checkNodeId(entry.origin, `${field}.origin`)
    checkNumber(entry.rttMs, `${field}.rttMs`, 0, MAX_RTT_MS, false)
    if (seen.has(entry.origin as string)) throw new AnnouncementError(`${field}.origin`, 'duplicate origin')
    seen.add(entry.origin as string)
  })
  // One set across both lists: a prefix is relayed or about to be, never both.
  const prefixes = new Set<string>()
  for (const key of ['relaying', 'relayPending'] as const) {
    const list = value[key]
    if (list === undefined) continue
    const field = `${path}${key}`
    if (!Array.isArray(list)) throw new AnnouncementError(field, 'must be an array')
    if (list.length === 0) throw new AnnouncementError(field, 'must be absent when empty (one encoding per report)')
    if (list.length > MAX_REACH_RELAYING) throw new AnnouncementError(field, `more than ${MAX_REACH_RELAYING}`)
    list.forEach((prefix: unknown, index) => {
      checkPrefix(prefix, `${field}[${index}]`)
      if (prefixes.has(prefix as string)) throw new AnnouncementError(`${field}[${index}]`, key === 'relaying' ? 'duplicate prefix' : 'duplicate prefix (in relaying or relayPending)')
      prefixes.add(prefix as string)
    })
  }
}

/** Throws AnnouncementError unless the whole message is within bounds (except its byte size). */
export function validateUpdate (message: UpdateMessage): void {
  const value: unknown = message
  if (!isRecord(value)) throw new AnnouncementError('update', 'must be an object')
  const announcements = value.announcements
  if (!Array.isArray(announcements)) throw new AnnouncementError('announcements', 'must be an array')
  if (announcements.length > MAX_ANNOUNCEMENTS_PER_UPDATE) {
    throw new AnnouncementError('announcements', `more than ${MAX_ANNOUNCEMENTS_PER_UPDATE}`)
  }
  announcements.forEach((signed: SignedAnnouncement, index) => validateSigned(signed, `announcements[${index}].`))
  if (value.reach !== undefined) validateReachReport(value.reach as ReachReport)
}

// --- encoding ---------------------------------------------------------------------------------

function stringLength (value: string): number {
  return 1 + utf8Encoder.encode(value).byteLength
}

function bodyLength (a: RouteAnnouncement): number {
  const location = a.attributes.location
  return stringLength(a.prefix) + stringLength(a.service) + stringLength(a.origin) + 8 + 1 + 1 + 2 + 8 + 4 +
    (location === undefined ? 0 : 16 + (location.region === undefined ? 0 : stringLength(location.region)))
}

function reachLength (r: ReachReport): number {
  return stringLength(r.from) + 8 + 2 + r.entries.reduce((sum, entry) => sum + stringLength(entry.origin) + 8, 0) +
    2 + (r.relaying ?? []).reduce((sum, prefix) => sum + stringLength(prefix), 0) +
    2 + (r.relayPending ?? []).reduce((sum, prefix) => sum + stringLength(prefix), 0)
}

function measure (message: UpdateMessage): number {
  return 1 + 2 + message.announcements.reduce((sum, s) => sum + bodyLength(s.announcement) + 1 + s.signature.byteLength, 0) +
    1 + (message.reach === undefined ? 0 : reachLength(message.reach))
}

function writeBody (writer: ByteWriter, a: RouteAnnouncement): void {
  const { attributes } = a
  const location = attributes.location
  writer.string8(a.prefix)
  writer.string8(a.service)
  writer.string8(a.origin)
  writer.f64(a.seq)
  writer.u8((a.withdrawn ? FLAG_WITHDRAWN : 0) | (location === undefined ? 0 : FLAG_LOCATION) |
    (location?.region === undefined ? 0 : FLAG_REGION))
  writer.u8(HEALTH_CODES[attributes.health])
  writer.u16(attributes.preference)
  writer.f64(attributes.load)
  writer.u32(attributes.ttlMs)
  if (location === undefined) return
  writer.f64(location.lat)
  writer.f64(location.lon)
  if (location.region !== undefined) writer.string8(location.region)
}

/**
 * The bytes an origin signs: SIGNING_DOMAIN then the canonical body. Deterministic: equal
 * announcements give equal bytes. Throws AnnouncementError for an invalid announcement.
 */
export function announcementSigningBytes (a: RouteAnnouncement): Uint8Array {
  validateAnnouncement(a)
  const domain = utf8Encoder.encode(SIGNING_DOMAIN)
  const writer = new ByteWriter(domain.byteLength + bodyLength(a))
  writer.raw(domain)
  writeBody(writer, a)
  return writer.bytes
}

/** Validates the message and returns its encoded size; throws AnnouncementError when invalid. */
export function updateEncodingLength (message: UpdateMessage): number {
  validateUpdate(message)
  return measure(message)
}

export function encodeUpdate (message: UpdateMessage): Uint8Array {
  const length = updateEncodingLength(message)
  if (length > MAX_UPDATE_MESSAGE_BYTES) {
    throw new AnnouncementError('update', `${length} bytes is larger than ${MAX_UPDATE_MESSAGE_BYTES} (split it with packUpdates)`)
  }
  const writer = new ByteWriter(length)
  writer.u8(UPDATE_VERSION)
  writer.u16(message.announcements.length)
  for (const signed of message.announcements) {
    writeBody(writer, signed.announcement)
    writer.bytes8(signed.signature)
  }
  const reach = message.reach
  writer.u8(reach === undefined ? 0 : 1)
  if (reach !== undefined) {
    writer.string8(reach.from)
    writer.f64(reach.seq)
    writer.u16(reach.entries.length)
    for (const entry of reach.entries) {
      writer.string8(entry.origin)
      writer.f64(entry.rttMs)
    }
    for (const list of [reach.relaying ?? [], reach.relayPending ?? []]) {
      writer.u16(list.length)
      for (const prefix of list) writer.string8(prefix)
    }
  }
  return writer.bytes
}

/**
 * Split announcements (and an optional reach report, which goes in the first message) into as
 * few UpdateMessages as fit the count and byte bounds, in order. For sending a whole table to a
 * neighbour whose session was just established. Throws AnnouncementError for invalid input.
 */
export function packUpdates (announcements: SignedAnnouncement[], reach?: ReachReport): UpdateMessage[] {
  const messages: UpdateMessage[] = []
  let current: UpdateMessage = reach === undefined ? { announcements: [] } : { announcements: [], reach }
  validateUpdate(current)
  let size = measure(current)
  if (size > MAX_UPDATE_MESSAGE_BYTES) throw new AnnouncementError('reach', `${size} bytes alone is larger than ${MAX_UPDATE_MESSAGE_BYTES}`)
  announcements.forEach((signed, index) => {
    validateSigned(signed, `announcements[${index}].`)
    const added = bodyLength(signed.announcement) + 1 + signed.signature.byteLength
    if (current.announcements.length === MAX_ANNOUNCEMENTS_PER_UPDATE || size + added > MAX_UPDATE_MESSAGE_BYTES) {
      messages.push(current)
      current = { announcements: [] }
      size = measure(current)
    }
    current.announcements.push(signed)
    size += added
  })
  if (current.announcements.length > 0 || current.reach !== undefined || messages.length === 0) messages.push(current)
  return messages
}

// --- decoding ---------------------------------------------------------------------------------

function readAnnouncement (reader: ByteReader, path: string): RouteAnnouncement {
  const prefix = reader.string8(`${path}prefix`)
  const service = reader.string8(`${path}service`)
  const origin = reader.string8(`${path}origin`)
  const seq = reader.f64(`${path}seq`)
  const flags = reader.u8(`${path}flags`)
  if ((flags & ~(FLAG_WITHDRAWN | FLAG_LOCATION | FLAG_REGION)) !== 0) throw new AnnouncementError(`${path}flags`, `unknown bits 0x${flags.toString(16)}`)
  if ((flags & FLAG_REGION) !== 0 && (flags & FLAG_LOCATION) === 0) throw new AnnouncementError(`${path}flags`, 'region without location')
  const healthCode = reader.u8(`${path}attributes.health`)
  const health = HEALTH_BY_CODE[healthCode]
  if (health === undefined) throw new AnnouncementError(`${path}attributes.health`, `unknown code ${healthCode}`)
  const preference = reader.u16(`${path}attributes.preference`)
  const load = reader.f64(`${path}attributes.load`)
  const ttlMs = reader.u32(`${path}attributes.ttlMs`)
  const announcement: RouteAnnouncement = {
    prefix, service, origin, seq, withdrawn: (flags & FLAG_WITHDRAWN) !== 0, attributes: { health, preference, load, ttlMs }
  }
  if ((flags & FLAG_LOCATION) !== 0) {
    const lat = reader.f64(`${path}attributes.location.lat`)
    const lon = reader.f64(`${path}attributes.location.lon`)
    announcement.attributes.location = (flags & FLAG_REGION) !== 0
      ? { lat, lon, region: reader.string8(`${path}attributes.location.region`) }
      : { lat, lon }
  }
  validateAnnouncement(announcement, path)
  return announcement
}

function readReach (reader: ByteReader): ReachReport {
  const from = reader.string8('reach.from')
  const seq = reader.f64('reach.seq')
  const count = reader.u16('reach.entries')
  if (count > MAX_REACH_ENTRIES) throw new AnnouncementError('reach.entries', `more than ${MAX_REACH_ENTRIES}`)
  const entries: ReachReport['entries'] = []
  for (let index = 0; index < count; index++) {
    entries.push({ origin: reader.string8(`reach.entries[${index}].origin`), rttMs: reader.f64(`reach.entries[${index}].rttMs`) })
  }
  const report: ReachReport = { from, seq, entries }
  for (const key of ['relaying', 'relayPending'] as const) {
    const listCount = reader.u16(`reach.${key}`)
    if (listCount > MAX_REACH_RELAYING) throw new AnnouncementError(`reach.${key}`, `more than ${MAX_REACH_RELAYING}`)
    const list: string[] = []
    for (let index = 0; index < listCount; index++) list.push(reader.string8(`reach.${key}[${index}]`))
    if (list.length > 0) report[key] = list
  }
  validateReachReport(report)
  return report
}

/** Decode and validate one UpdateMessage; throws AnnouncementError naming the first bad field. */
export function decodeUpdate (bytes: Uint8Array): UpdateMessage {
  if (!(bytes instanceof Uint8Array)) throw new AnnouncementError('update', 'must be bytes')
  if (bytes.byteLength > MAX_UPDATE_MESSAGE_BYTES) throw new AnnouncementError('update', `larger than ${MAX_UPDATE_MESSAGE_BYTES} bytes`)
  const reader = new ByteReader(bytes, (field: string, reason: string) => new AnnouncementError(field, reason))
  const version = reader.u8('update.version')
  if (version !== UPDATE_VERSION) throw new AnnouncementError('update.version', `unsupported version ${version}`)
  const count = reader.u16('announcements')
  if (count > MAX_ANNOUNCEMENTS_PER_UPDATE) throw new AnnouncementError('announcements', `more than ${MAX_ANNOUNCEMENTS_PER_UPDATE}`)
  const announcements: SignedAnnouncement[] = []
  for (let index = 0; index < count; index++) {
    const path = `announcements[${index}].`
    const announcement = readAnnouncement(reader, `${path}announcement.`)
    const signature = reader.bytes8(`${path}signature`)
    if (signature.byteLength === 0) throw new AnnouncementError(`${path}signature`, 'empty')
    announcements.push({ announcement, signature })
  }
  const reachFlag = reader.u8('reach')
  if (reachFlag > 1) throw new AnnouncementError('reach', `flag must be 0 or 1, not ${reachFlag}`)
  const message: UpdateMessage = reachFlag === 1 ? { announcements, reach: readReach(reader) } : { announcements }
  reader.end('update')
  return message
}

// --- signatures -------------------------------------------------------------------------------

/** Sign this node's own announcement. Throws AnnouncementError if it is invalid or not ours. */
export function signAnnouncement (a: RouteAnnouncement, signer: Signer): SignedAnnouncement {
  const bytes = announcementSigningBytes(a)
  if (a.origin !== signer.nodeId) throw new AnnouncementError('origin', `"${a.origin}" is not the signer "${signer.nodeId}"`)
  const signature = signer.sign(bytes)
  if (signature.byteLength === 0 || signature.byteLength > MAX_SIGNATURE_BYTES) {
    throw new AnnouncementError('signature', `signer produced ${signature.byteLength} bytes, not 1..${MAX_SIGNATURE_BYTES}`)
  }
  return { announcement: a, signature }
}

/** True when the signature verifies against the origin's key; false for anything invalid. */
export function verifyAnnouncement (s: SignedAnnouncement, verifier: Verifier): boolean {
  let bytes: Uint8Array
  try {
    validateSigned(s, '')
    bytes = announcementSigningBytes(s.announcement)
  } catch (error) {
    if (error instanceof AnnouncementError) return false
    throw error
  }
  return verifier.verify(s.announcement.origin, bytes, s.signature)
}
