// The authoritative answer to one decoded query: which rcode, which flags, which records in which
// section, and whether it fits. A pure function of the query, the client and the zone; the zone's
// `resolve` decides the records (nearest healthy origins, bootstrap nodes, ...), this file decides
// everything the DNS RFCs decide:
//
// - QR=1, AA=1 for every answer from our zone (NXDOMAIN too), RA=0 (we never recurse), RD and CD
//   copied from the query (RFC 1035 §4.1.1, RFC 4035 §3.1.6);
// - REFUSED outside the zone and for classes other than IN; REFUSED for zone transfers; NOTIMP for
//   other meta query types (RFC 6895 §3.1); FORMERR for a query of type OPT;
// - NXDOMAIN and NODATA carry the zone's SOA in the authority section with TTL min(SOA TTL, SOA
//   MINIMUM), so resolvers cache the negative answer (RFC 2308 §3, §5); the apex always exists;
// - EDNS0 (RFC 6891): an OPT in the response whenever the query had one, with our own UDP size;
//   BADVERS for a version above 0 (§6.1.3); the DO bit copied (RFC 3225 §3);
// - Client Subnet (RFC 7871 §7.2.1): the option echoed with family, source and address as sent and
//   a scope no longer than the source; scope 0 for answers that do not depend on the client;
// - over UDP the response must fit the client's size (512 without EDNS, RFC 1035 §4.2.1; at least
//   512 with it, RFC 6891 §6.2.5) and our own; otherwise TC=1 with the answers dropped, so the
//   client retries over TCP (RFC 2181 §9, RFC 7766).

import {
  CLASS_IN, DnsFormatError, FLAG, RCODE, RR_TYPE, checkTtl, encodeName, encodeResponse, nsRecord, responseEncodingLength, soaRecord,
  type ClientSubnet, type DnsQuery, type DnsRecord, type DnsResponseMessage, type EncodedName, type ResponseOpt, type SoaFields
} from './dns-codec.ts'

export const DEFAULT_ZONE = 'anycast.form'
export const DEFAULT_DNS_PORT = 5353
export const DEFAULT_TTL_S = 30
/** The DNS Flag Day 2020 size: no IP fragmentation on any common path. */
export const DEFAULT_UDP_PAYLOAD_SIZE = 1232
/** RFC 1035 §4.2.1 without EDNS; the floor for any advertised size (RFC 6891 §6.2.5). */
export const MIN_UDP_PAYLOAD_SIZE = 512
/** The scope we give a located answer when the zone does not say (RFC 7871 §11.1 recommends /24 and /56 at most). */
export const DEFAULT_ECS_SCOPE_V4 = 24
export const DEFAULT_ECS_SCOPE_V6 = 56

export type Transport = 'udp' | 'tcp'

/** Who asked: the packet's source, and the subnet a resolver sent on its client's behalf. */
export interface DnsClient {
  /** Source address of the packet (IPv4-mapped IPv6 already unwrapped). */
  address: string
  family: 4 | 6
  /** The source is inside the overlay: answer with overlay addresses (split horizon). */
  overlay: boolean
  /** RFC 7871 subnet, when present with a non-zero source prefix: locate by it rather than by `address`. */
  ecs?: { family: 4 | 6, sourcePrefix: number, address: string }
}

export type DnsClientSource = Omit<DnsClient, 'ecs'>

export interface ResolvedAnswer {
  /** In answer order (nearest first); an empty list is NODATA. */
  records: readonly DnsRecord[]
  ttlS: number
  /**
   * RFC 7871 scope: how many bits of the client's subnet the answer depends on; clamped to the
   * source prefix. Absent: /24 (IPv4) or /56 (IPv6), or the source if shorter. 0: any client.
   */
  scopePrefix?: number
}

export type ResolveResult = ResolvedAnswer | 'nxdomain' | 'nodata'

/** What the answerer needs of a zone. Names are canonical text: lower case, no trailing dot. */
export interface ZoneView {
  /** E.g. "anycast.form" (a trailing dot is accepted). */
  readonly apex: string
  readonly soa: SoaFields
  readonly soaTtlS: number
  readonly nameservers: readonly string[]
  readonly nameserverTtlS: number
  /**
   * Records for a name strictly inside the zone or for the apex (other than its SOA and NS, which
   * the answerer serves). Unknown types should be 'nodata'. A throw becomes SERVFAIL.
   */
  resolve(name: string, qtype: number, client: DnsClient): ResolveResult
}

export interface AnswerOptions {
  /** Our advertised and largest UDP response; default 1232, at least 512. */
  udpPayloadSize?: number
}

export interface DnsResponse {
  bytes: Uint8Array
  /** The full 12-bit rcode (BADVERS is 16). */
  rcode: number
  truncated: boolean
  answerCount: number
}

export interface Answerer {
  /** Canonical apex. */
  readonly apex: string
  answer(query: DnsQuery, source: DnsClientSource, transport: Transport): DnsResponse
  /** The reply to an undecodable message: FORMERR or NOTIMP; undefined means drop it silently. */
  reject(error: DnsFormatError): DnsResponse | undefined
  /** The reply when answering failed unexpectedly. */
  serverFailure(query: DnsQuery): DnsResponse
}

/** Compiled once per zone: the apex, SOA and NS records, and the negative-answer TTL. */
interface CompiledZone {
  view: ZoneView
  apex: EncodedName
  soa: DnsRecord
  nameservers: DnsRecord[]
  negativeTtlS: number
  udpPayloadSize: number
}

function compileZone (view: ZoneView, options: AnswerOptions): CompiledZone {
  const apex = encodeName(view.apex)
  if (apex.name === '') throw new RangeError('the zone apex cannot be the root')
  const udpPayloadSize = options.udpPayloadSize ?? DEFAULT_UDP_PAYLOAD_SIZE
  if (!Number.isInteger(udpPayloadSize) || udpPayloadSize < MIN_UDP_PAYLOAD_SIZE || udpPayloadSize > 65_535) {
    throw new RangeError(`udpPayloadSize must be an integer 512..65535, not ${udpPayloadSize}`)
  }
  checkTtl(view.soaTtlS, 'soaTtlS')
  checkTtl(view.nameserverTtlS, 'nameserverTtlS')
  if (view.nameservers.length === 0) throw new RangeError('a zone needs at least one name server')
  return {
    view,
    apex,
    // No TTL of their own: the section's TTL applies (the SOA's differs in negative answers).
    soa: soaRecord(view.soa, { name: apex.name }),
    nameservers: view.nameservers.map((host) => nsRecord(host, { name: apex.name })),
    negativeTtlS: Math.min(view.soaTtlS, view.soa.minimumS),
    udpPayloadSize
  }
}

function isInZone (name: string, apex: string): boolean {
  if (name.length === apex.length) return name === apex
  return name.length > apex.length && name.charCodeAt(name.length - apex.length - 1) === 0x2e && name.endsWith(apex)
}

/** The decision, before encoding. */
interface Outcome {
  rcode: number
  authoritative: boolean
  answers: readonly DnsRecord[]
  answerTtlS: number
  authorities: readonly DnsRecord[]
  /** Scope prefix for the ECS echo; 0 when the answer does not depend on the client. */
  scopePrefix: number
}

const EMPTY: readonly DnsRecord[] = []

function refused (): Outcome { return { rcode: RCODE.REFUSED, authoritative: false, answers: EMPTY, answerTtlS: 0, authorities: EMPTY, scopePrefix: 0 } }

function negative (zone: CompiledZone, rcode: number): Outcome {
  return { rcode, authoritative: true, answers: EMPTY, answerTtlS: 0, authorities: [zone.soa], scopePrefix: 0 }
}

function positive (records: readonly DnsRecord[], ttlS: number, scopePrefix: number): Outcome {
  return { rcode: RCODE.NOERROR, authoritative: true, answers: records, answerTtlS: ttlS, authorities: EMPTY, scopePrefix }
}

function defaultScope (subnet: ClientSubnet): number {
  return subnet.family === 4 ? DEFAULT_ECS_SCOPE_V4 : DEFAULT_ECS_SCOPE_V6
}

/** Meta types (RFC 6895 §3.1): transfers are refused, OPT is malformed, the rest not implemented. */
function metaTypeOutcome (qtype: number): Outcome | undefined {
  if (qtype === RR_TYPE.OPT) return { ...refused(), rcode: RCODE.FORMERR }
  if (qtype === RR_TYPE.AXFR || qtype === RR_TYPE.IXFR) return refused()
  if (qtype >= 128 && qtype < RR_TYPE.ANY) return { ...refused(), rcode: RCODE.NOTIMP }
  return undefined
}

function decide (zone: CompiledZone, query: DnsQuery, source: DnsClientSource): Outcome {
  const { name, type, class: qclass } = query.question
  if (qclass !== CLASS_IN) return refused()
  if (!isInZone(name, zone.apex.name)) return refused()
  const meta = metaTypeOutcome(type)
  if (meta !== undefined) return meta
  const isApex = name.length === zone.apex.name.length
  if (isApex && (type === RR_TYPE.SOA || type === RR_TYPE.ANY)) return positive([zone.soa], zone.view.soaTtlS, 0)
  if (isApex && type === RR_TYPE.NS) return positive(zone.nameservers, zone.view.nameserverTtlS, 0)
  const subnet = query.edns?.clientSubnet
  const client: DnsClient = subnet !== undefined && subnet.sourcePrefix > 0
    ? { ...source, ecs: { family: subnet.family, sourcePrefix: subnet.sourcePrefix, address: subnet.address } }
    : source
  const result = zone.view.resolve(name, type, client)
  if (result === 'nxdomain') return negative(zone, isApex ? RCODE.NOERROR : RCODE.NXDOMAIN)
  if (result === 'nodata' || result.records.length === 0) return negative(zone, RCODE.NOERROR)
  const ttlS = checkTtl(result.ttlS, name)
  const scope = subnet === undefined ? 0 : Math.min(subnet.sourcePrefix, Math.max(0, result.scopePrefix ?? defaultScope(subnet)))
  return positive(result.records, ttlS, scope)
}

function responseFlags (query: DnsQuery, rcode: number, authoritative: boolean, truncated: boolean): number {
  return FLAG.QR | (query.header.opcode << 11) | (authoritative ? FLAG.AA : 0) | (truncated ? FLAG.TC : 0) |
    (query.header.flags & (FLAG.RD | FLAG.CD)) | (rcode & 0xf)
}

function responseOpt (zone: CompiledZone, query: DnsQuery, rcode: number, scopePrefix: number): ResponseOpt | undefined {
  const edns = query.edns
  if (edns === undefined) return undefined
  const opt: ResponseOpt = { udpPayloadSize: zone.udpPayloadSize, extendedRcode: rcode >> 4, dnssecOk: edns.dnssecOk }
  const subnet = edns.clientSubnet
  // RFC 7871 §7.2.1: echo family, source prefix and address; only a scope of our own.
  if (subnet !== undefined && rcode !== RCODE.BADVERS) opt.clientSubnet = { ...subnet, scopePrefix }
  return opt
}

/** Largest response the transport allows for this query. */
function sizeLimit (zone: CompiledZone, query: DnsQuery, transport: Transport): number {
  if (transport === 'tcp') return 65_535
  const advertised = query.edns === undefined ? MIN_UDP_PAYLOAD_SIZE : Math.max(MIN_UDP_PAYLOAD_SIZE, query.edns.udpPayloadSize)
  return Math.min(advertised, zone.udpPayloadSize)
}

function encodeOutcome (zone: CompiledZone, query: DnsQuery, outcome: Outcome, transport: Transport): DnsResponse {
  const message: DnsResponseMessage = {
    id: query.header.id,
    flags: responseFlags(query, outcome.rcode, outcome.authoritative, false),
    question: query.question,
    answers: outcome.answers,
    answerTtlS: outcome.answerTtlS,
    authorities: outcome.authorities,
    authorityTtlS: zone.negativeTtlS,
    opt: responseOpt(zone, query, outcome.rcode, outcome.scopePrefix)
  }
  if (responseEncodingLength(message) <= sizeLimit(zone, query, transport)) {
    return { bytes: encodeResponse(message), rcode: outcome.rcode, truncated: false, answerCount: outcome.answers.length }
  }
  // Too big: header, question and OPT only, TC set. The question is at most 259 bytes and the OPT
  // at most 31, so this always fits in 512.
  const truncated: DnsResponseMessage = {
    ...message,
    flags: responseFlags(query, outcome.rcode, outcome.authoritative, true),
    answers: EMPTY,
    authorities: EMPTY
  }
  return { bytes: encodeResponse(truncated), rcode: outcome.rcode, truncated: true, answerCount: 0 }
}

function headerOnly (id: number, flags: number, rcode: number): Uint8Array {
  const bytes = new Uint8Array(12)
  const responseFlags = FLAG.QR | (flags & (0xf << 11)) | (flags & (FLAG.RD | FLAG.CD)) | (rcode & 0xf)
  bytes[0] = id >> 8
  bytes[1] = id & 0xff
  bytes[2] = responseFlags >> 8
  bytes[3] = responseFlags & 0xff
  return bytes
}

export function createAnswerer (view: ZoneView, options: AnswerOptions = {}): Answerer {
  const zone = compileZone(view, options)
  return {
    apex: zone.apex.name,
    answer (query, source, transport) {
      if (query.edns !== undefined && query.edns.version > 0) {
        // RFC 6891 §6.1.3: BADVERS, with an OPT of the version we do speak.
        return encodeOutcome(zone, query, { ...refused(), rcode: RCODE.BADVERS }, transport)
      }
      let outcome: Outcome
      try {
        outcome = decide(zone, query, source)
      } catch {
        outcome = { ...refused(), rcode: RCODE.SERVFAIL }
      }
      return encodeOutcome(zone, query, outcome, transport)
    },
    reject (error) {
      const header = error.header
      // Never answer a response (two servers would bounce errors forever) or a headerless message.
      if (header === undefined || header.isResponse) return undefined
      return { bytes: headerOnly(header.id, header.flags, error.rcode), rcode: error.rcode, truncated: false, answerCount: 0 }
    },
    serverFailure (query) {
      return encodeOutcome(zone, query, { ...refused(), rcode: RCODE.SERVFAIL }, 'udp')
    }
  }
}
