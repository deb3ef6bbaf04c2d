import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fc from 'fast-check'
import dnsPacket, { type Packet, type PacketOpt, type DecodedPacket } from 'dns-packet'
import {
  DEFAULT_UDP_PAYLOAD_SIZE, createAnswerer, type DnsClient, type DnsClientSource, type ResolveResult, type Transport, type ZoneView
} from '../../src/protocols/dns-answer.ts'
import { DnsFormatError, RCODE, aRecord, aaaaRecord, cnameRecord, decodeQuery, txtRecord } from '../../src/protocols/dns-codec.ts'

/** dns-packet's decode as it really is (its typings omit rcode, opcode and the internal codecs). */
type Decoded = DecodedPacket & { rcode: string, opcode: string }
interface Rr { name: string, type: string, ttl?: number, data?: unknown }
const internals = dnsPacket as unknown as { option: { encodingLength(option: PacketOpt): number } }
const decode = (bytes: Uint8Array): Decoded => dnsPacket.decode(Buffer.from(bytes)) as Decoded
const records = (list: DecodedPacket['answers']): Rr[] => (list ?? []) as unknown as Rr[]

const SOA = { mname: 'ns1.anycast.form', rname: 'hostmaster.anycast.form', serial: 7, refreshS: 3600, retryS: 600, expireS: 86_400, minimumS: 15 }

interface Call { name: string, qtype: number, client: DnsClient }

/** A zone whose answers are a fixed table; it records every resolve call. */
function tableZone (table: Record<string, (qtype: number, client: DnsClient) => ResolveResult>, calls: Call[] = []): ZoneView {
  return {
    apex: 'anycast.form.',
    soa: SOA,
    soaTtlS: 300,
    nameservers: ['ns1.anycast.form', 'ns2.anycast.form'],
    nameserverTtlS: 3600,
    resolve (name, qtype, client) {
      calls.push({ name, qtype, client })
      const entry = table[name]
      return entry === undefined ? 'nxdomain' : entry(qtype, client)
    }
  }
}

const byType = (answers: Record<number, ResolveResult>) => (qtype: number): ResolveResult => answers[qtype] ?? 'nodata'
const threeA = [aRecord('192.0.2.1'), aRecord('192.0.2.2'), aRecord('192.0.2.3')]
const manyA = Array.from({ length: 60 }, (_, index) => aRecord(`198.51.100.${index + 1}`))

function standardZone (calls?: Call[]): ZoneView {
  return tableZone({
    'www.anycast.form': byType({ 1: { records: threeA, ttlS: 30 }, 28: { records: [aaaaRecord('2001:db8::1')], ttlS: 30 } }),
    'alias.anycast.form': () => ({ records: [cnameRecord('www.anycast.form')], ttlS: 60, scopePrefix: 0 }),
    'txt.anycast.form': byType({ 16: { records: [txtRecord(['hello', 'world'])], ttlS: 120, scopePrefix: 0 } }),
    'failover.anycast.form': byType({ 1: { records: [aRecord('192.0.2.9')], ttlS: 5 } }),
    'big.anycast.form': byType({ 1: { records: manyA, ttlS: 30 } }),
    'empty.anycast.form': () => ({ records: [], ttlS: 30 }),
    'narrow.anycast.form': () => ({ records: [aRecord('192.0.2.4')], ttlS: 30, scopePrefix: 16 }),
    'wide.anycast.form': () => ({ records: [aRecord('192.0.2.5')], ttlS: 30, scopePrefix: 32 }),
    'anycast.form': () => 'nxdomain',
    'boom.anycast.form': () => { throw new Error('resolver bug') },
    'badttl.anycast.form': () => ({ records: [aRecord('192.0.2.6')], ttlS: -5 })
  }, calls)
}

const SOURCE: DnsClientSource = { address: '203.0.113.9', family: 4, overlay: false }

interface Ask { name: string, type?: string, qclass?: string, flags?: number, id?: number, opt?: { udpPayloadSize?: number, version?: number, do?: boolean, options?: PacketOpt[] } }

function queryBytes ({ name, type = 'A', qclass = 'IN', flags = dnsPacket.RECURSION_DESIRED, id = 99, opt }: Ask): Buffer {
  const packet: Packet = { type: 'query', id, flags, questions: [{ name, type: type as 'A', class: qclass as 'IN' }] }
  if (opt !== undefined) {
    packet.additionals = [{
      type: 'OPT', name: '.', udpPayloadSize: opt.udpPayloadSize ?? 1232, extendedRcode: 0, ednsVersion: opt.version ?? 0,
      flags: opt.do === true ? dnsPacket.DNSSEC_OK : 0, flag_do: opt.do === true, options: opt.options ?? []
    }]
  }
  const bytes = dnsPacket.encode(packet)
  // dns-packet cannot write an EDNS version: patch the OPT TTL's second byte, before flags (2),
  // rdlength (2) and the options.
  if (opt?.version !== undefined) bytes[bytes.length - optionBytes(opt.options) - 5] = opt.version
  return bytes
}

function optionBytes (options: PacketOpt[] | undefined): number {
  return (options ?? []).reduce((sum, option) => sum + internals.option.encodingLength(option), 0)
}

interface Answered { packet: Decoded, rcode: number, truncated: boolean, size: number }

function ask (ask: Ask, options: { zone?: ZoneView, source?: DnsClientSource, transport?: Transport, udpPayloadSize?: number } = {}): Answered {
  const answerer = createAnswerer(options.zone ?? standardZone(), options.udpPayloadSize === undefined ? {} : { udpPayloadSize: options.udpPayloadSize })
  const response = answerer.answer(decodeQuery(queryBytes(ask)), options.source ?? SOURCE, options.transport ?? 'udp')
  return { packet: decode(response.bytes), rcode: response.rcode, truncated: response.truncated, size: response.bytes.byteLength }
}

const data = (packet: DecodedPacket): unknown[] => records(packet.answers).map((answer) => answer.data)
const ecsOf = (packet: DecodedPacket): { sourcePrefixLength?: number, scopePrefixLength?: number, ip?: string, family?: number } | undefined => {
  const opt = packet.additionals?.find((record) => record.type === 'OPT')
  if (opt === undefined || opt.type !== 'OPT') return undefined
  return opt.options.find((option) => option.code === 8) as { sourcePrefixLength?: number, scopePrefixLength?: number, ip?: string } | undefined
}
const ecs = (ip: string, sourcePrefixLength: number, family = 1): PacketOpt => ({ code: 8, family, sourcePrefixLength, scopePrefixLength: 0, ip })

// ---------------------------------------------------------------------------------------------
// Known answers

test('dns-answer: A answer keeps the resolver order and TTL, AA=1, RA=0, RD copied, question echoed with its case', () => {
  const { packet, rcode } = ask({ name: 'WWW.anycast.form', id: 4321 })
  assert.is(rcode, RCODE.NOERROR)
  assert.is(packet.id, 4321)
  assert.is(packet.flag_qr, true)
  assert.is(packet.flag_aa, true)
  assert.is(packet.flag_ra, false)
  assert.is(packet.flag_rd, true)
  assert.is(packet.flag_tc, false)
  assert.equal(packet.questions, [{ name: 'WWW.anycast.form', type: 'A', class: 'IN' }])
  assert.equal(data(packet), ['192.0.2.1', '192.0.2.2', '192.0.2.3'])
  assert.equal(records(packet.answers).map((answer) => [answer.name, answer.ttl]), [['WWW.anycast.form', 30], ['WWW.anycast.form', 30], ['WWW.anycast.form', 30]])
  assert.equal(packet.authorities, [])
  assert.equal(packet.additionals, [], 'no OPT without one in the query')
})

test('dns-answer: RD clear stays clear; CD is copied', () => {
  const { packet } = ask({ name: 'www.anycast.form', flags: dnsPacket.CHECKING_DISABLED })
  assert.is(packet.flag_rd, false)
  assert.is(packet.flag_cd, true)
})

const knownAnswers: Array<[what: string, ask: Ask, type: string, values: unknown[], ttl: number]> = [
  ['AAAA', { name: 'www.anycast.form', type: 'AAAA' }, 'AAAA', ['2001:db8::1'], 30],
  ['CNAME for an A query', { name: 'alias.anycast.form' }, 'CNAME', ['www.anycast.form'], 60],
  ['TXT', { name: 'txt.anycast.form', type: 'TXT' }, 'TXT', [[Buffer.from('hello'), Buffer.from('world')]], 120],
  ['SOA at the apex', { name: 'anycast.form', type: 'SOA' }, 'SOA', [{ mname: 'ns1.anycast.form', rname: 'hostmaster.anycast.form', serial: 7, refresh: 3600, retry: 600, expire: 86_400, minimum: 15 }], 300],
  ['NS at the apex', { name: 'anycast.form', type: 'NS' }, 'NS', ['ns1.anycast.form', 'ns2.anycast.form'], 3600],
  ['ANY at the apex (RFC 8482 subset: the SOA)', { name: 'anycast.form', type: 'ANY' }, 'SOA', [{ mname: 'ns1.anycast.form', rname: 'hostmaster.anycast.form', serial: 7, refresh: 3600, retry: 600, expire: 86_400, minimum: 15 }], 300],
  ['a shorter TTL during failover passes through', { name: 'failover.anycast.form' }, 'A', ['192.0.2.9'], 5]
]
for (const [what, question, type, values, ttl] of knownAnswers) {
  test(`dns-answer: ${what} → ${type} ${JSON.stringify(values).slice(0, 40)} ttl ${ttl}`, () => {
    const { packet, rcode } = ask(question)
    assert.is(rcode, RCODE.NOERROR)
    assert.is(packet.flag_aa, true)
    assert.equal(records(packet.answers).map((answer) => answer.type), values.map(() => type))
    assert.equal(data(packet), values)
    assert.ok(records(packet.answers).every((answer) => answer.ttl === ttl))
  })
}

const negatives: Array<[what: string, ask: Ask, rcode: number, rcodeName: string]> = [
  ['an unknown name is NXDOMAIN', { name: 'nope.anycast.form' }, RCODE.NXDOMAIN, 'NXDOMAIN'],
  ['a known name without the type is NODATA', { name: 'txt.anycast.form', type: 'A' }, RCODE.NOERROR, 'NOERROR'],
  ['an empty record list is NODATA', { name: 'empty.anycast.form' }, RCODE.NOERROR, 'NOERROR'],
  ['the apex is never NXDOMAIN (A at the apex is NODATA)', { name: 'anycast.form' }, RCODE.NOERROR, 'NOERROR']
]
for (const [what, question, rcode, rcodeName] of negatives) {
  test(`dns-answer: ${what}, with the SOA in authority at TTL min(300, minimum 15) (RFC 2308)`, () => {
    const { packet, rcode: got } = ask(question)
    assert.is(got, rcode)
    assert.is(packet.rcode, rcodeName)
    assert.is(packet.flag_aa, true)
    assert.equal(packet.answers, [])
    assert.equal(records(packet.authorities).map((record) => [record.name, record.type, record.ttl]), [['anycast.form', 'SOA', 15]])
  })
}

const refusals: Array<[what: string, ask: Ask, rcode: number]> = [
  ['a name outside the zone is REFUSED', { name: 'example.com' }, RCODE.REFUSED],
  ['a name that only ends like the zone is REFUSED', { name: 'xanycast.form' }, RCODE.REFUSED],
  ['the parent of the apex is REFUSED', { name: 'form' }, RCODE.REFUSED],
  ['class CH is REFUSED', { name: 'www.anycast.form', qclass: 'CH' }, RCODE.REFUSED],
  ['AXFR is REFUSED', { name: 'anycast.form', type: 'AXFR' }, RCODE.REFUSED],
  ['IXFR is REFUSED', { name: 'anycast.form', type: 'IXFR' }, RCODE.REFUSED],
  ['qtype TSIG (a meta type) is NOTIMP', { name: 'www.anycast.form', type: 'TSIG' }, RCODE.NOTIMP],
  ['qtype OPT is FORMERR', { name: 'www.anycast.form', type: 'OPT' }, RCODE.FORMERR],
  ['a throwing resolver is SERVFAIL', { name: 'boom.anycast.form' }, RCODE.SERVFAIL],
  ['a resolver TTL out of range is SERVFAIL', { name: 'badttl.anycast.form' }, RCODE.SERVFAIL]
]
for (const [what, question, rcode] of refusals) {
  test(`dns-answer: ${what}, not authoritative, nothing in the sections`, () => {
    const { packet, rcode: got } = ask(question)
    assert.is(got, rcode)
    assert.is(packet.flag_aa, false)
    assert.is(packet.flag_ra, false)
    assert.equal(packet.answers, [])
    assert.equal(packet.authorities, [])
  })
}

test('dns-answer: the resolver gets the canonical name, the numeric qtype and the client (overlay flag included)', () => {
  const calls: Call[] = []
  ask({ name: 'WWW.AnyCast.Form', type: 'AAAA' }, { zone: standardZone(calls), source: { address: '10.42.0.7', family: 4, overlay: true } })
  assert.equal(calls, [{ name: 'www.anycast.form', qtype: 28, client: { address: '10.42.0.7', family: 4, overlay: true } }])
})

// ---------------------------------------------------------------------------------------------
// Format errors and opcodes

function reject (bytes: Uint8Array): ReturnType<ReturnType<typeof createAnswerer>['reject']> {
  try {
    decodeQuery(bytes)
  } catch (error) {
    if (error instanceof DnsFormatError) return createAnswerer(standardZone()).reject(error)
    throw error
  }
  throw new Error('decoded')
}

test('dns-answer: two questions get FORMERR with the id, opcode and RD echoed and empty sections', () => {
  const bytes = dnsPacket.encode({ type: 'query', id: 777, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: 'a.anycast.form', type: 'A' }, { name: 'b.anycast.form', type: 'A' }] })
  const response = reject(bytes)
  assert.ok(response !== undefined)
  assert.is(response.rcode, RCODE.FORMERR)
  const packet = decode(response.bytes)
  assert.is(packet.id, 777)
  assert.is(packet.rcode, 'FORMERR')
  assert.is(packet.flag_qr, true)
  assert.is(packet.flag_rd, true)
  assert.equal([packet.questions?.length, packet.answers?.length, packet.additionals?.length], [0, 0, 0])
})

test('dns-answer: opcode STATUS gets NOTIMP with the opcode echoed', () => {
  const bytes = Uint8Array.from(dnsPacket.encode({ type: 'query', id: 5, questions: [{ name: 'a.anycast.form', type: 'A' }] }))
  bytes[2] = 2 << 3 // opcode 2
  const response = reject(bytes)
  assert.is(response?.rcode, RCODE.NOTIMP)
  const packet = decode(response?.bytes ?? new Uint8Array(0))
  assert.is(packet.rcode, 'NOTIMP')
  assert.is(packet.opcode, 'STATUS')
})

test('dns-answer: a response or a message without a header is dropped, never answered', () => {
  const response = dnsPacket.encode({ type: 'response', id: 5, questions: [{ name: 'a.anycast.form', type: 'A' }] })
  assert.is(reject(response), undefined)
  assert.is(reject(new Uint8Array(5)), undefined)
})

// ---------------------------------------------------------------------------------------------
// EDNS0 and Client Subnet

test('dns-answer: an EDNS query gets an OPT with our UDP size (1232) and the DO bit copied', () => {
  const { packet } = ask({ name: 'www.anycast.form', opt: { udpPayloadSize: 4096, do: true } })
  const opt = packet.additionals?.[0]
  assert.ok(opt?.type === 'OPT')
  assert.is(opt.udpPayloadSize, DEFAULT_UDP_PAYLOAD_SIZE)
  assert.is(opt.flag_do, true)
  assert.is(opt.ednsVersion, 0)
  assert.equal(opt.options, [])
})

test('dns-answer: EDNS version 1 gets BADVERS (extended rcode 1) and an OPT of version 0, no answers', () => {
  const { packet, rcode } = ask({ name: 'www.anycast.form', opt: { version: 1 } })
  assert.is(rcode, RCODE.BADVERS)
  const opt = packet.additionals?.[0]
  assert.ok(opt?.type === 'OPT')
  assert.is(opt.extendedRcode, 1)
  assert.is(opt.ednsVersion, 0)
  assert.is(packet.rcode, 'NOERROR', 'the low 4 bits are 0; 16 = 1 << 4')
  assert.equal(packet.answers, [])
})

const scopes: Array<[what: string, name: string, subnet: PacketOpt, scope: number, locatedBy: string | undefined]> = [
  ['IPv4 /24: default scope /24, located by the subnet', 'www.anycast.form', ecs('81.2.69.0', 24), 24, '81.2.69.0'],
  ['IPv4 /32: default scope /24', 'www.anycast.form', ecs('81.2.69.77', 32), 24, '81.2.69.77'],
  ['IPv4 /16: scope clamped to the source', 'www.anycast.form', ecs('81.2.0.0', 16), 16, '81.2.0.0'],
  ['IPv6 /64: default scope /56', 'www.anycast.form', ecs('2001:db8:1:2::', 64, 2), 56, '2001:db8:1:2::'],
  ['IPv6 /48: scope clamped to /48', 'www.anycast.form', ecs('2001:db8:1::', 48, 2), 48, '2001:db8:1::'],
  ['the resolver says /16', 'narrow.anycast.form', ecs('81.2.69.0', 24), 16, '81.2.69.0'],
  ['the resolver says /32, clamped to the /24 source', 'wide.anycast.form', ecs('81.2.69.0', 24), 24, '81.2.69.0'],
  ['the resolver says 0 (CNAME for everyone)', 'alias.anycast.form', ecs('81.2.69.0', 24), 0, '81.2.69.0'],
  ['source /0: scope 0 and the client is located by its address', 'www.anycast.form', ecs('0.0.0.0', 0), 0, undefined],
  ['NXDOMAIN: scope 0', 'nope.anycast.form', ecs('81.2.69.0', 24), 0, '81.2.69.0']
]
for (const [what, name, subnet, scope, locatedBy] of scopes) {
  test(`dns-answer: ECS ${what}; family, source and address echoed (RFC 7871 §7.2.1)`, () => {
    const calls: Call[] = []
    const { packet } = ask({ name, opt: { options: [subnet] } }, { zone: standardZone(calls) })
    const echoed = ecsOf(packet)
    const sent = subnet as { family: number, sourcePrefixLength: number, ip: string }
    assert.equal(echoed && { family: echoed.family, source: echoed.sourcePrefixLength, ip: echoed.ip }, { family: sent.family, source: sent.sourcePrefixLength, ip: sent.ip })
    assert.is(echoed?.scopePrefixLength, scope)
    assert.is(calls[0]?.client.ecs?.address, locatedBy)
  })
}

test('dns-answer: the located client is handed to the resolver, which can order answers by it', () => {
  const zone = tableZone({
    'www.anycast.form': (_, client) => ({
      records: (client.ecs?.address ?? client.address).startsWith('81.') ? [aRecord('192.0.2.20'), aRecord('192.0.2.10')] : [aRecord('192.0.2.10'), aRecord('192.0.2.20')],
      ttlS: 30
    })
  })
  assert.equal(data(ask({ name: 'www.anycast.form', opt: { options: [ecs('81.2.69.0', 24)] } }, { zone }).packet), ['192.0.2.20', '192.0.2.10'])
  assert.equal(data(ask({ name: 'www.anycast.form', opt: { options: [ecs('8.8.8.0', 24)] } }, { zone }).packet), ['192.0.2.10', '192.0.2.20'])
  assert.equal(data(ask({ name: 'www.anycast.form' }, { zone, source: { address: '81.0.0.1', family: 4, overlay: false } }).packet), ['192.0.2.20', '192.0.2.10'])
})

// ---------------------------------------------------------------------------------------------
// Size and truncation

const truncation: Array<[what: string, ask: Ask, transport: Transport, truncated: boolean, limit: number]> = [
  ['60 A records over UDP without EDNS exceed 512', { name: 'big.anycast.form' }, 'udp', true, 512],
  ['a client size below 512 counts as 512', { name: 'big.anycast.form', opt: { udpPayloadSize: 100 } }, 'udp', true, 512],
  ['a 4096 client is held to our 1232', { name: 'big.anycast.form', opt: { udpPayloadSize: 4096 } }, 'udp', false, 1232],
  ['over TCP the full answer', { name: 'big.anycast.form' }, 'tcp', false, 65_535],
  ['three records fit in 512', { name: 'www.anycast.form' }, 'udp', false, 512]
]
for (const [what, question, transport, truncated, limit] of truncation) {
  test(`dns-answer: ${what} → TC=${String(truncated)}, at most ${limit} bytes`, () => {
    const answered = ask(question, { transport })
    assert.is(answered.truncated, truncated)
    assert.is(answered.packet.flag_tc, truncated)
    assert.ok(answered.size <= limit, `${answered.size} bytes`)
    if (truncated) {
      assert.equal(answered.packet.answers, [])
      assert.is(answered.packet.questions?.length, 1)
      assert.is(answered.packet.additionals?.length, question.opt === undefined ? 0 : 1, 'the OPT stays (RFC 6891 §7)')
    } else {
      assert.ok((answered.packet.answers?.length ?? 0) > 0)
    }
  })
}

test('dns-answer: 60 A records (1 + 60 × 16 bytes of answers) fit a 4096-byte client when our size allows it', () => {
  const answered = ask({ name: 'big.anycast.form', opt: { udpPayloadSize: 4096 } }, { udpPayloadSize: 4096 })
  assert.is(answered.truncated, false)
  assert.is(answered.packet.answers?.length, 60)
})

test('dns-answer: zone and option checks fail at creation, naming the problem', () => {
  assert.throws(() => createAnswerer({ ...standardZone(), apex: '.' }), /root/)
  assert.throws(() => createAnswerer({ ...standardZone(), nameservers: [] }), /name server/)
  assert.throws(() => createAnswerer(standardZone(), { udpPayloadSize: 100 }), /udpPayloadSize/)
  assert.throws(() => createAnswerer({ ...standardZone(), soaTtlS: 1.5 }), /TTL 1.5/)
})

// ---------------------------------------------------------------------------------------------

test('dns-answer: property — any decodable query gets a response dns-packet decodes, with the id, QR=1 and a fitting size (5,000 runs)', () => {
  const answerer = createAnswerer(standardZone())
  const names = fc.constantFrom('www', 'alias', 'txt', 'big', 'nope', 'boom', 'empty', '', 'a.b.c').map((label) => label === '' ? 'anycast.form' : `${label}.anycast.form`)
  const other = fc.constantFrom('example.com', 'form', '.')
  fc.assert(fc.property(
    fc.record({
      id: fc.integer({ min: 0, max: 0xffff }),
      name: fc.oneof(names, other),
      type: fc.constantFrom('A', 'AAAA', 'TXT', 'SOA', 'NS', 'ANY', 'CNAME', 'MX', 'AXFR'),
      opt: fc.option(fc.record({ udpPayloadSize: fc.integer({ min: 1, max: 65_535 }), do: fc.boolean(), options: fc.constantFrom<PacketOpt[][]>([], [ecs('81.2.69.0', 24)], [ecs('2001:db8::', 32, 2)]) }), { nil: undefined }),
      transport: fc.constantFrom<Transport>('udp', 'tcp')
    }),
    ({ transport, ...question }) => {
      const query = decodeQuery(queryBytes(question))
      const response = answerer.answer(query, SOURCE, transport)
      const packet = dnsPacket.decode(Buffer.from(response.bytes))
      assert.is(packet.id, question.id)
      assert.is(packet.flag_qr, true)
      if (transport === 'udp') assert.ok(response.bytes.byteLength <= Math.min(DEFAULT_UDP_PAYLOAD_SIZE, Math.max(512, question.opt?.udpPayloadSize ?? 512)))
      assert.is(packet.additionals?.length, question.opt === undefined ? 0 : 1)
    }
  ), { numRuns: 5000, seed: 53 })
})

test.run()
