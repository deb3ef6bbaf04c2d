// DNS wire format for our authoritative server: a bounded, strict decoder for queries (RFC 1035 §4,
// EDNS0 RFC 6891, Client Subnet RFC 7871) and an encoder for the responses we send, with precise
// errors (the field and the reason) and no exception of any other kind on any input.
//
// Why not dns-packet on the hot path: on Node 20 it takes ~2.9 µs to decode a 58-byte ECS query and
// ~6.2 µs to encode a three-record answer, most of our per-query budget (≥ 60k answers/s per core,
// DESIGN.md §5) before any socket work. It also decodes labels as UTF-8, so two different byte
// strings can decode to the same text (U+FFFD) and a '.' inside a label reads as a separator; and it
// never compresses names. A query has one question and at most a few additional records, so a
// dedicated decoder is short. dns-packet stays the reference: the tests decode everything we encode
// with it, and compare our decoder with it on random and mutated packets.
//
// Names are carried two ways: `name`, a canonical text (lower case, no trailing dot, the root is
// ''; a byte that is not printable ASCII, and '.' or '\' inside a label, is written \DDD as in RFC
// 1035 §5.1, so distinct names never share a text) used for lookups; and `wire`, the uncompressed
// wire form with the client's case kept, echoed in the question (resolvers that randomise case,
// draft-vixie-dnsext-dns0x20, check that the echo matches).

import { formatAddress, parseAddress } from './cidr.ts'

export const DNS_HEADER_BYTES = 12
/** Largest UDP query we read (RFC 6891 §6.2.5 advertises at most 4096 in practice). */
export const MAX_UDP_QUERY_BYTES = 4096
/** A TCP message has a 2-byte length prefix (RFC 1035 §4.2.2). */
export const MAX_TCP_MESSAGE_BYTES = 65_535
/** RFC 1035 §2.3.4, counting length octets and the final zero. */
export const MAX_NAME_WIRE_BYTES = 255
export const MAX_LABEL_BYTES = 63
/**
 * Compression pointers must point strictly before the segment being read, which alone guarantees
 * that a name ends (a self-pointing or looping name is rejected at its first backward-failing hop);
 * the hop bound is belt and braces.
 */
export const MAX_COMPRESSION_POINTERS = 127
/** Smallest resource record: root owner (1) + type, class, ttl, rdlength (10). */
const MIN_RECORD_BYTES = 11

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, BADVERS: 16 } as const
export const RR_TYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, TXT: 16, AAAA: 28, OPT: 41, TSIG: 250, IXFR: 251, AXFR: 252, ANY: 255 } as const
export const CLASS_IN = 1
export const OPCODE_QUERY = 0
/** RFC 7871 §6. */
export const EDNS_OPTION_CLIENT_SUBNET = 8

/** Header flag bits (RFC 1035 §4.1.1, RFC 2535 for AD/CD). */
export const FLAG = { QR: 0x8000, AA: 0x0400, TC: 0x0200, RD: 0x0100, RA: 0x0080, AD: 0x0020, CD: 0x0010 } as const

export interface DnsHeader {
  id: number
  /** The raw 16 flag bits. */
  flags: number
  opcode: number
  isResponse: boolean
  qdcount: number
  ancount: number
  nscount: number
  arcount: number
}

export interface DnsQuestion {
  /** Canonical text: lower case, no trailing dot, \DDD escapes; '' is the root. */
  name: string
  /** Uncompressed wire form, case as the client sent it. */
  wire: Uint8Array
  type: number
  class: number
}

export interface ClientSubnet {
  family: 4 | 6
  sourcePrefix: number
  scopePrefix: number
  /** Text of the address, zero-padded to a full address. */
  address: string
  /** The address octets as sent: ceil(sourcePrefix / 8) of them. */
  bytes: Uint8Array
}

export interface Edns {
  /** As the client advertised; the answerer applies the 512 floor (RFC 6891 §6.2.5). */
  udpPayloadSize: number
  version: number
  dnssecOk: boolean
  clientSubnet?: ClientSubnet
}

export interface DnsQuery {
  header: DnsHeader
  question: DnsQuestion
  edns?: Edns
}

/**
 * A message we cannot serve as a query. `header` is set when the 12 header bytes were readable, so
 * the answerer can reply with `rcode` (FORMERR, or NOTIMP for an opcode we do not implement);
 * without a header, or when the message is itself a response, it is dropped.
 */
export class DnsFormatError extends Error {
  override name = 'DnsFormatError'
  constructor (readonly field: string, readonly reason: string, readonly header?: DnsHeader, readonly rcode: number = RCODE.FORMERR) {
    super(`dns ${field}: ${reason}`)
  }
}

/** A name, address or record in our own configuration that cannot be put on the wire. */
export class DnsNameError extends Error {
  override name = 'DnsNameError'
  constructor (readonly input: string, readonly reason: string) {
    super(`dns name ${JSON.stringify(input.length > 300 ? `${input.slice(0, 300)}…` : input)}: ${reason}`)
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding

export function decodeHeader (bytes: Uint8Array): DnsHeader {
  if (bytes.byteLength < DNS_HEADER_BYTES) throw new DnsFormatError('header', `truncated: ${bytes.byteLength} of ${DNS_HEADER_BYTES} bytes`)
  const flags = (bytes[2] << 8) | bytes[3]
  return {
    id: (bytes[0] << 8) | bytes[1],
    flags,
    opcode: (flags >> 11) & 0xf,
    isResponse: (flags & FLAG.QR) !== 0,
    qdcount: (bytes[4] << 8) | bytes[5],
    ancount: (bytes[6] << 8) | bytes[7],
    nscount: (bytes[8] << 8) | bytes[9],
    arcount: (bytes[10] << 8) | bytes[11]
  }
}

function malformed (field: string, header: DnsHeader, reason: string): DnsFormatError {
  return new DnsFormatError(field, reason, header)
}

interface NameRead { name: string, wire: Uint8Array, next: number }

/** One label's canonical text: lower case, \DDD for anything but printable ASCII other than '.' and '\'. */
function labelText (bytes: Uint8Array, from: number, to: number): string {
  let text = ''
  for (let i = from; i < to; i++) {
    let c = bytes[i]
    if (c >= 0x41 && c <= 0x5a) c += 0x20
    if (c > 0x20 && c < 0x7f && c !== 0x2e && c !== 0x5c) text += String.fromCharCode(c)
    else text += '\\' + String(c).padStart(3, '0')
  }
  return text
}

function readName (bytes: Uint8Array, start: number, field: string, header: DnsHeader): NameRead {
  let offset = start
  let segmentStart = start
  let next = -1
  let hops = 0
  let wireLength = 1
  let name = ''
  let first = true
  // Label ranges, kept only when a pointer was followed and the wire must be re-assembled.
  let ranges: number[] | undefined
  for (;;) {
    if (offset >= bytes.byteLength) throw malformed(field, header, 'truncated name')
    const length = bytes[offset]
    if (length === 0) break
    const kind = length & 0xc0
    if (kind === 0xc0) {
      if (offset + 1 >= bytes.byteLength) throw malformed(field, header, 'truncated compression pointer')
      const target = ((length & 0x3f) << 8) | bytes[offset + 1]
      // RFC 1035 §4.1.4: a pointer refers to a prior occurrence; forward or self pointers are loops.
      if (target >= segmentStart) throw malformed(field, header, `compression pointer to ${target} does not point backwards (from ${offset})`)
      if (target < DNS_HEADER_BYTES) throw malformed(field, header, `compression pointer to ${target} points into the header`)
      if (++hops > MAX_COMPRESSION_POINTERS) throw malformed(field, header, `more than ${MAX_COMPRESSION_POINTERS} compression pointers`)
      if (next < 0) next = offset + 2
      ranges ??= collectRanges(bytes, start, offset)
      offset = target
      segmentStart = target
      continue
    }
    // RFC 6891 §5: extended label types (0x40, 0x80) are not used.
    if (kind !== 0) throw malformed(field, header, `label type 0x${kind.toString(16)} is not supported`)
    if (offset + 1 + length > bytes.byteLength) throw malformed(field, header, 'truncated label')
    wireLength += length + 1
    if (wireLength > MAX_NAME_WIRE_BYTES) throw malformed(field, header, `name longer than ${MAX_NAME_WIRE_BYTES} bytes`)
    name += (first ? '' : '.') + labelText(bytes, offset + 1, offset + 1 + length)
    first = false
    ranges?.push(offset, offset + 1 + length)
    offset += 1 + length
  }
  if (next < 0) next = offset + 1
  return { name, wire: ranges === undefined ? bytes.subarray(start, next) : assembleWire(bytes, ranges, wireLength), next }
}

/** Ranges of the labels already read (all uncompressed) between `start` and a pointer at `end`. */
function collectRanges (bytes: Uint8Array, start: number, end: number): number[] {
  const ranges: number[] = []
  for (let offset = start; offset < end; offset += 1 + bytes[offset]) ranges.push(offset, offset + 1 + bytes[offset])
  return ranges
}

function assembleWire (bytes: Uint8Array, ranges: number[], wireLength: number): Uint8Array {
  const wire = new Uint8Array(wireLength)
  let at = 0
  for (let i = 0; i < ranges.length; i += 2) { wire.set(bytes.subarray(ranges[i], ranges[i + 1]), at); at += ranges[i + 1] - ranges[i] }
  return wire
}

const u16 = (bytes: Uint8Array, offset: number): number => (bytes[offset] << 8) | bytes[offset + 1]

/** RFC 7871 §6 and §7.1.1: exact address length, zero bits past the source prefix, scope 0. */
function decodeClientSubnet (bytes: Uint8Array, from: number, length: number, field: string, header: DnsHeader): ClientSubnet {
  if (length < 4) throw malformed(field, header, `option is ${length} bytes, shorter than 4`)
  const familyCode = u16(bytes, from)
  if (familyCode !== 1 && familyCode !== 2) throw malformed(field, header, `family ${familyCode} is neither 1 (IPv4) nor 2 (IPv6)`)
  const family = familyCode === 1 ? 4 : 6
  const maxBits = family === 4 ? 32 : 128
  const sourcePrefix = bytes[from + 2]
  const scopePrefix = bytes[from + 3]
  if (sourcePrefix > maxBits) throw malformed(field, header, `source prefix /${sourcePrefix} is longer than ${maxBits} bits`)
  if (scopePrefix !== 0) throw malformed(field, header, `scope prefix must be 0 in a query, is ${scopePrefix}`)
  const addressLength = length - 4
  if (addressLength !== Math.ceil(sourcePrefix / 8)) throw malformed(field, header, `address has ${addressLength} bytes, a /${sourcePrefix} needs ${Math.ceil(sourcePrefix / 8)}`)
  if (sourcePrefix % 8 !== 0 && (bytes[from + length - 1] & (0xff >> (sourcePrefix % 8))) !== 0) throw malformed(field, header, `address has bits set past the /${sourcePrefix} source prefix`)
  const sent = new Uint8Array(addressLength)
  const full = new Uint8Array(family === 4 ? 4 : 16)
  for (let i = 0; i < addressLength; i++) { sent[i] = bytes[from + 4 + i]; full[i] = sent[i] }
  const address = family === 4 ? `${full[0]}.${full[1]}.${full[2]}.${full[3]}` : formatAddress(full)
  return { family, sourcePrefix, scopePrefix, address, bytes: sent }
}

function decodeOpt (bytes: Uint8Array, at: number, rdataStart: number, rdataEnd: number, field: string, header: DnsHeader): Edns {
  const ttlHigh = u16(bytes, at + 4)
  const ttlLow = u16(bytes, at + 6)
  const edns: Edns = { udpPayloadSize: u16(bytes, at + 2), version: ttlHigh & 0xff, dnssecOk: (ttlLow & 0x8000) !== 0 }
  for (let offset = rdataStart; offset < rdataEnd;) {
    if (offset + 4 > rdataEnd) throw new DnsFormatError(`${field}.option`, 'truncated option header', header)
    const code = u16(bytes, offset)
    const length = u16(bytes, offset + 2)
    if (offset + 4 + length > rdataEnd) throw new DnsFormatError(`${field}.option(${code})`, `length ${length} runs past the record`, header)
    if (code === EDNS_OPTION_CLIENT_SUBNET) {
      if (edns.clientSubnet !== undefined) throw new DnsFormatError(`${field}.ecs`, 'more than one client subnet option', header)
      edns.clientSubnet = decodeClientSubnet(bytes, offset + 4, length, `${field}.ecs`, header)
    }
    // Other options (cookies, padding, keepalive) are ignored, as RFC 6891 §6.1.2 requires.
    offset += 4 + length
  }
  return edns
}

/** Reads the additional section: at most one OPT (RFC 6891 §6.1.1); other records are skipped. */
function decodeAdditionals (bytes: Uint8Array, start: number, header: DnsHeader): { edns?: Edns, end: number } {
  let edns: Edns | undefined
  let offset = start
  for (let index = 0; index < header.arcount; index++) {
    const field = `additional[${index}]`
    const owner = readName(bytes, offset, `${field}.name`, header)
    const at = owner.next
    if (at + 10 > bytes.byteLength) throw new DnsFormatError(field, 'truncated record header', header)
    const type = u16(bytes, at)
    const rdataStart = at + 10
    const rdataEnd = rdataStart + u16(bytes, at + 8)
    if (rdataEnd > bytes.byteLength) throw new DnsFormatError(`${field}.rdata`, 'runs past the end of the message', header)
    if (type === RR_TYPE.OPT) {
      if (owner.name !== '') throw new DnsFormatError(`${field}.name`, 'an OPT record must be owned by the root', header)
      if (edns !== undefined) throw new DnsFormatError(field, 'more than one OPT record', header)
      edns = decodeOpt(bytes, at, rdataStart, rdataEnd, `${field}.opt`, header)
    }
    offset = rdataEnd
  }
  return { edns, end: offset }
}

/**
 * Decode a query. Throws DnsFormatError (and nothing else) for anything we will not serve:
 * a short or oversized message, a response, an opcode other than QUERY (rcode NOTIMP), a question
 * count other than one, records in the answer or authority section, a bad name, a bad OPT or ECS
 * option, or trailing bytes.
 */
export function decodeQuery (input: Uint8Array, maxBytes: number = MAX_UDP_QUERY_BYTES): DnsQuery {
  // A plain view: subarrays of a Node Buffer go through its species constructor, several times slower.
  const bytes = input.constructor === Uint8Array ? input : new Uint8Array(input.buffer, input.byteOffset, input.byteLength)
  const header = decodeHeader(bytes)
  if (bytes.byteLength > maxBytes) throw new DnsFormatError('message', `${bytes.byteLength} bytes, more than ${maxBytes}`, header)
  if (header.isResponse) throw new DnsFormatError('header.qr', 'is a response, not a query', header)
  if (header.opcode !== OPCODE_QUERY) throw new DnsFormatError('header.opcode', `opcode ${header.opcode} is not implemented`, header, RCODE.NOTIMP)
  if (header.qdcount !== 1) throw new DnsFormatError('header.qdcount', `a query has one question, not ${header.qdcount}`, header)
  if (header.ancount !== 0) throw new DnsFormatError('header.ancount', `a query has no answers, not ${header.ancount}`, header)
  if (header.nscount !== 0) throw new DnsFormatError('header.nscount', `a query has no authority records, not ${header.nscount}`, header)
  const owner = readName(bytes, DNS_HEADER_BYTES, 'question.name', header)
  if (owner.next + 4 > bytes.byteLength) throw new DnsFormatError('question', 'truncated type and class', header)
  const question: DnsQuestion = { name: owner.name, wire: owner.wire, type: u16(bytes, owner.next), class: u16(bytes, owner.next + 2) }
  const start = owner.next + 4
  if (header.arcount * MIN_RECORD_BYTES > bytes.byteLength - start) {
    throw new DnsFormatError('header.arcount', `${header.arcount} records cannot fit in the ${bytes.byteLength - start} bytes left`, header)
  }
  const { edns, end } = decodeAdditionals(bytes, start, header)
  if (end !== bytes.byteLength) throw new DnsFormatError('message', `${bytes.byteLength - end} trailing bytes`, header)
  return edns === undefined ? { header, question } : { header, question, edns }
}

// ---------------------------------------------------------------------------------------------
// Names and records we serve

export interface EncodedName {
  /** Canonical text (see the top of this file). */
  readonly name: string
  readonly wire: Uint8Array
}

/** A record as the answerer needs it: rdata pre-encoded once, when the zone changes. */
export interface DnsRecord {
  readonly type: number
  readonly rdata: Uint8Array
  /** Owner; the question's name when absent. */
  readonly owner?: EncodedName
  /** Overrides the section's TTL. */
  readonly ttlS?: number
}

export interface RecordOptions {
  /** Owner name; the question's name when absent. */
  name?: string
  ttlS?: number
}

const textEncoder = new TextEncoder()

/**
 * Encode a name of our own configuration ("www.anycast.form", trailing dot optional, "." or ""
 * for the root). Labels are 1–63 bytes of printable ASCII without '\'; the whole at most 255 bytes.
 */
export function encodeName (text: string): EncodedName {
  if (typeof text !== 'string') throw new DnsNameError(String(text), 'must be a string')
  const trimmed = text.endsWith('.') ? text.slice(0, -1) : text
  if (trimmed === '') return { name: '', wire: new Uint8Array([0]) }
  const labels = trimmed.split('.')
  const wire = new Uint8Array(trimmed.length + 2)
  let at = 0
  for (const label of labels) {
    if (label.length === 0) throw new DnsNameError(text, 'has an empty label')
    if (label.length > MAX_LABEL_BYTES) throw new DnsNameError(text, `label "${label.slice(0, 20)}…" is longer than ${MAX_LABEL_BYTES} bytes`)
    wire[at++] = label.length
    for (let i = 0; i < label.length; i++) {
      const c = label.charCodeAt(i)
      if (c <= 0x20 || c >= 0x7f || c === 0x5c) throw new DnsNameError(text, `label "${label}" has a character that is not printable ASCII (or is '\\')`)
      wire[at++] = c >= 0x41 && c <= 0x5a ? c + 0x20 : c
    }
  }
  wire[at++] = 0
  if (wire.byteLength > MAX_NAME_WIRE_BYTES) throw new DnsNameError(text, `is ${wire.byteLength} bytes on the wire, more than ${MAX_NAME_WIRE_BYTES}`)
  return { name: trimmed.toLowerCase(), wire }
}

function withOptions (type: number, rdata: Uint8Array, options: RecordOptions): DnsRecord {
  const record: { type: number, rdata: Uint8Array, owner?: EncodedName, ttlS?: number } = { type, rdata }
  if (options.name !== undefined) record.owner = encodeName(options.name)
  if (options.ttlS !== undefined) record.ttlS = checkTtl(options.ttlS, options.name ?? 'record')
  return record
}

/** RFC 2181 §8: a TTL is 0 .. 2^31 − 1 seconds. */
export function checkTtl (ttlS: number, what: string): number {
  if (!Number.isInteger(ttlS) || ttlS < 0 || ttlS > 0x7fffffff) throw new DnsNameError(what, `TTL ${ttlS} is not an integer 0..2147483647`)
  return ttlS
}

function addressBytes (address: string, family: 4 | 6): Uint8Array {
  let parsed
  try { parsed = parseAddress(address) } catch (error) { throw new DnsNameError(address, (error as Error).message) }
  if (parsed.family !== family) throw new DnsNameError(address, `is not an IPv${family} address`)
  return parsed.bytes
}

export function aRecord (address: string, options: RecordOptions = {}): DnsRecord {
  return withOptions(RR_TYPE.A, addressBytes(address, 4), options)
}

export function aaaaRecord (address: string, options: RecordOptions = {}): DnsRecord {
  return withOptions(RR_TYPE.AAAA, addressBytes(address, 6), options)
}

export function cnameRecord (target: string, options: RecordOptions = {}): DnsRecord {
  return withOptions(RR_TYPE.CNAME, encodeName(target).wire, options)
}

export function nsRecord (host: string, options: RecordOptions = {}): DnsRecord {
  return withOptions(RR_TYPE.NS, encodeName(host).wire, options)
}

/** RFC 1035 §3.3.14: character-strings of at most 255 bytes; longer UTF-8 strings are split. */
export function txtRecord (texts: string | readonly string[], options: RecordOptions = {}): DnsRecord {
  const chunks: Uint8Array[] = []
  for (const text of typeof texts === 'string' ? [texts] : texts) {
    const bytes = textEncoder.encode(text)
    if (bytes.byteLength === 0) chunks.push(bytes)
    for (let at = 0; at < bytes.byteLength; at += 255) chunks.push(bytes.subarray(at, at + 255))
  }
  if (chunks.length === 0) chunks.push(new Uint8Array(0))
  const length = chunks.reduce((sum, chunk) => sum + 1 + chunk.byteLength, 0)
  if (length > 65_535) throw new DnsNameError(options.name ?? 'TXT', `TXT data is ${length} bytes, more than 65535`)
  const rdata = new Uint8Array(length)
  let at = 0
  for (const chunk of chunks) { rdata[at++] = chunk.byteLength; rdata.set(chunk, at); at += chunk.byteLength }
  return withOptions(RR_TYPE.TXT, rdata, options)
}

export interface SoaFields {
  /** Primary name server. */
  mname: string
  /** Responsible mailbox as a name (hostmaster.anycast.form). */
  rname: string
  serial: number
  refreshS: number
  retryS: number
  expireS: number
  /** Negative-caching TTL (RFC 2308 §4). */
  minimumS: number
}

export function soaRecord (soa: SoaFields, options: RecordOptions = {}): DnsRecord {
  const mname = encodeName(soa.mname).wire
  const rname = encodeName(soa.rname).wire
  const numbers = [soa.serial, soa.refreshS, soa.retryS, soa.expireS, soa.minimumS]
  numbers.forEach((value) => {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new DnsNameError(soa.mname, `SOA field ${value} is not a 32-bit unsigned integer`)
  })
  const rdata = new Uint8Array(mname.byteLength + rname.byteLength + 20)
  rdata.set(mname, 0)
  rdata.set(rname, mname.byteLength)
  let at = mname.byteLength + rname.byteLength
  for (const value of numbers) { writeU32(rdata, at, value); at += 4 }
  return withOptions(RR_TYPE.SOA, rdata, options)
}

// ---------------------------------------------------------------------------------------------
// Encoding responses

export interface ResponseOpt {
  /** Our own advertised UDP payload size. */
  udpPayloadSize: number
  /** The upper 8 bits of a 12-bit rcode (BADVERS = 16 is extended rcode 1). */
  extendedRcode: number
  dnssecOk: boolean
  clientSubnet?: ClientSubnet
}

export interface DnsResponseMessage {
  id: number
  /** All 16 flag bits, the low 4 bits of the rcode included. */
  flags: number
  question?: DnsQuestion
  answers: readonly DnsRecord[]
  answerTtlS: number
  authorities: readonly DnsRecord[]
  authorityTtlS: number
  opt?: ResponseOpt
}

function writeU16 (bytes: Uint8Array, at: number, value: number): void { bytes[at] = value >>> 8; bytes[at + 1] = value & 0xff }
function writeU32 (bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value >>> 24; bytes[at + 1] = (value >>> 16) & 0xff; bytes[at + 2] = (value >>> 8) & 0xff; bytes[at + 3] = value & 0xff
}

const QUESTION_OFFSET = DNS_HEADER_BYTES
const NO_COMPRESSION = -1

/**
 * Where in the response an owner name can point (RFC 1035 §4.1.4): the question's name starts at
 * byte 12, and an owner that is a suffix of it (the zone apex, for the SOA of a negative answer)
 * points at that suffix. Anything else is written in full.
 */
function ownerPointer (owner: EncodedName | undefined, question: DnsQuestion | undefined): number {
  if (question === undefined) return NO_COMPRESSION
  if (owner === undefined || owner.name === question.name) return QUESTION_OFFSET
  const qname = question.name
  const suffix = owner.name
  const cut = qname.length - suffix.length - 1
  if (suffix === '' || cut < 1 || qname.charCodeAt(cut) !== 0x2e || !qname.endsWith(suffix)) return NO_COMPRESSION
  let skip = 1
  for (let i = 0; i < cut; i++) if (qname.charCodeAt(i) === 0x2e) skip++
  let at = 0
  while (skip-- > 0) at += 1 + question.wire[at]
  return QUESTION_OFFSET + at
}

function recordLength (record: DnsRecord, question: DnsQuestion | undefined): number {
  const ownerBytes = ownerPointer(record.owner, question) !== NO_COMPRESSION ? 2 : (record.owner?.wire.byteLength ?? 1)
  return ownerBytes + 10 + record.rdata.byteLength
}

function optLength (opt: ResponseOpt | undefined): number {
  if (opt === undefined) return 0
  return 11 + (opt.clientSubnet === undefined ? 0 : 8 + opt.clientSubnet.bytes.byteLength)
}

export function responseEncodingLength (message: DnsResponseMessage): number {
  let length = DNS_HEADER_BYTES + (message.question === undefined ? 0 : message.question.wire.byteLength + 4) + optLength(message.opt)
  for (const record of message.answers) length += recordLength(record, message.question)
  for (const record of message.authorities) length += recordLength(record, message.question)
  return length
}

function writeRecord (bytes: Uint8Array, at: number, record: DnsRecord, ttlS: number, question: DnsQuestion | undefined): number {
  const pointer = ownerPointer(record.owner, question)
  if (pointer !== NO_COMPRESSION) { writeU16(bytes, at, 0xc000 | pointer); at += 2 } else if (record.owner === undefined) {
    throw new RangeError('a record without an owner needs a question to take its name from')
  } else { bytes.set(record.owner.wire, at); at += record.owner.wire.byteLength }
  writeU16(bytes, at, record.type)
  writeU16(bytes, at + 2, CLASS_IN)
  writeU32(bytes, at + 4, record.ttlS ?? ttlS)
  writeU16(bytes, at + 8, record.rdata.byteLength)
  bytes.set(record.rdata, at + 10)
  return at + 10 + record.rdata.byteLength
}

function writeOpt (bytes: Uint8Array, at: number, opt: ResponseOpt): number {
  bytes[at] = 0 // root owner
  writeU16(bytes, at + 1, RR_TYPE.OPT)
  writeU16(bytes, at + 3, opt.udpPayloadSize)
  bytes[at + 5] = opt.extendedRcode
  bytes[at + 6] = 0 // version 0
  writeU16(bytes, at + 7, opt.dnssecOk ? 0x8000 : 0)
  const subnet = opt.clientSubnet
  if (subnet === undefined) { writeU16(bytes, at + 9, 0); return at + 11 }
  writeU16(bytes, at + 9, 8 + subnet.bytes.byteLength)
  writeU16(bytes, at + 11, EDNS_OPTION_CLIENT_SUBNET)
  writeU16(bytes, at + 13, 4 + subnet.bytes.byteLength)
  writeU16(bytes, at + 15, subnet.family === 4 ? 1 : 2)
  bytes[at + 17] = subnet.sourcePrefix
  bytes[at + 18] = subnet.scopePrefix
  bytes.set(subnet.bytes, at + 19)
  return at + 19 + subnet.bytes.byteLength
}

/** Encode a response. Throws RangeError when it would exceed 65,535 bytes (the answerer truncates first). */
export function encodeResponse (message: DnsResponseMessage): Uint8Array {
  const length = responseEncodingLength(message)
  if (length > MAX_TCP_MESSAGE_BYTES) throw new RangeError(`response of ${length} bytes exceeds ${MAX_TCP_MESSAGE_BYTES}`)
  const bytes = new Uint8Array(length)
  const { question, answers, authorities, opt } = message
  writeU16(bytes, 0, message.id)
  writeU16(bytes, 2, message.flags)
  writeU16(bytes, 4, question === undefined ? 0 : 1)
  writeU16(bytes, 6, answers.length)
  writeU16(bytes, 8, authorities.length)
  writeU16(bytes, 10, opt === undefined ? 0 : 1)
  let at = DNS_HEADER_BYTES
  if (question !== undefined) {
    bytes.set(question.wire, at)
    at += question.wire.byteLength
    writeU16(bytes, at, question.type)
    writeU16(bytes, at + 2, question.class)
    at += 4
  }
  for (const record of answers) at = writeRecord(bytes, at, record, message.answerTtlS, question)
  for (const record of authorities) at = writeRecord(bytes, at, record, message.authorityTtlS, question)
  if (opt !== undefined) at = writeOpt(bytes, at, opt)
  return bytes
}
