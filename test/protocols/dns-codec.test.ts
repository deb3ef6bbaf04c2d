import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fc from 'fast-check'
import dnsPacket, { type Packet, type PacketOpt } from 'dns-packet'
import {
  DnsFormatError, DnsNameError, FLAG, MAX_UDP_QUERY_BYTES, RCODE, RR_TYPE, aRecord, aaaaRecord, cnameRecord, decodeHeader, decodeQuery,
  encodeName, encodeResponse, nsRecord, responseEncodingLength, soaRecord, txtRecord, type DnsResponseMessage
} from '../../src/protocols/dns-codec.ts'

interface Rr { name: string, type: string, ttl?: number, data?: unknown }
const records = (list: ReturnType<typeof dnsPacket.decode>['answers']): Rr[] => (list ?? []) as unknown as Rr[]
/** dns-packet's name codec, which its typings leave out. */
const names = (dnsPacket as unknown as { name: { encode(name: string): Buffer, decode(bytes: Buffer, offset: number): string } }).name

interface QueryShape { id?: number, name: string, type?: string, flags?: number, opt?: { udpPayloadSize?: number, version?: number, do?: boolean, options?: PacketOpt[] } }

function query ({ id = 4242, name, type = 'A', flags = dnsPacket.RECURSION_DESIRED, opt }: QueryShape): Buffer {
  const packet: Packet = { type: 'query', id, flags, questions: [{ name, type: type as 'A', class: 'IN' }] }
  if (opt !== undefined) {
    packet.additionals = [{
      type: 'OPT', name: '.', udpPayloadSize: opt.udpPayloadSize ?? 1232, extendedRcode: 0, ednsVersion: opt.version ?? 0,
      flags: opt.do === true ? dnsPacket.DNSSEC_OK : 0, flag_do: opt.do === true, options: opt.options ?? []
    }]
  }
  return dnsPacket.encode(packet)
}

const ecs = (ip: string, sourcePrefixLength: number, family = 1): PacketOpt => ({ code: 8, family, sourcePrefixLength, scopePrefixLength: 0, ip })

/** Bytes with the header counts and flags overwritten. */
function withHeader (bytes: Uint8Array, patch: { flags?: number, qd?: number, an?: number, ns?: number, ar?: number }): Uint8Array {
  const copy = Uint8Array.from(bytes)
  const put = (at: number, value: number | undefined): void => { if (value !== undefined) { copy[at] = value >> 8; copy[at + 1] = value & 0xff } }
  put(2, patch.flags); put(4, patch.qd); put(6, patch.an); put(8, patch.ns); put(10, patch.ar)
  return copy
}

const concat = (...parts: Array<Uint8Array | number[]>): Uint8Array => Uint8Array.from(parts.flatMap((part) => Array.from(part)))
const header = (counts: { qd?: number, an?: number, ns?: number, ar?: number } = {}, flags = 0x0100): number[] =>
  [0x12, 0x34, flags >> 8, flags & 0xff, 0, counts.qd ?? 1, 0, counts.an ?? 0, 0, counts.ns ?? 0, 0, counts.ar ?? 0]
/** "www.anycast.form" type A class IN at offset 12. */
const wwwQuestion = [3, 0x77, 0x77, 0x77, 7, ...Buffer.from('anycast'), 4, ...Buffer.from('form'), 0, 0, 1, 0, 1]
/** An OPT record (root owner) with the given option bytes. */
const optRecord = (options: number[], owner: number[] = [0], udp = 1232): number[] =>
  [...owner, 0, 41, udp >> 8, udp & 0xff, 0, 0, 0, 0, options.length >> 8, options.length & 0xff, ...options]
const ecsOption = (family: number, source: number, scope: number, address: number[]): number[] =>
  [0, 8, 0, 4 + address.length, 0, family, source, scope, ...address]

// ---------------------------------------------------------------------------------------------

test('dns-codec: a plain A query decodes to id, flags, canonical name, the client\'s wire and no EDNS', () => {
  const decoded = decodeQuery(query({ id: 7, name: 'WwW.AnyCast.Form' }))
  assert.is(decoded.header.id, 7)
  assert.is(decoded.header.opcode, 0)
  assert.is(decoded.header.flags & FLAG.RD, FLAG.RD)
  assert.is(decoded.question.name, 'www.anycast.form')
  assert.equal(Array.from(decoded.question.wire), [3, ...Buffer.from('WwW'), 7, ...Buffer.from('AnyCast'), 4, ...Buffer.from('Form'), 0], 'case kept on the wire (0x20 echo)')
  assert.is(decoded.question.type, RR_TYPE.A)
  assert.is(decoded.question.class, 1)
  assert.is(decoded.edns, undefined)
})

const typeTable: Array<[string, number]> = [['A', 1], ['NS', 2], ['CNAME', 5], ['SOA', 6], ['TXT', 16], ['AAAA', 28], ['ANY', 255], ['AXFR', 252]]
for (const [name, code] of typeTable) {
  test(`dns-codec: qtype ${name} decodes as ${code}`, () => {
    assert.is(decodeQuery(query({ name: 'x.anycast.form', type: name })).question.type, code)
  })
}

test('dns-codec: the root name decodes as "" with a one-byte wire', () => {
  const decoded = decodeQuery(query({ name: '.', type: 'NS' }))
  assert.is(decoded.question.name, '')
  assert.equal(Array.from(decoded.question.wire), [0])
})

test('dns-codec: EDNS0 size, version and DO bit are read; no ECS when absent', () => {
  const decoded = decodeQuery(query({ name: 'a.anycast.form', opt: { udpPayloadSize: 4096, do: true } }))
  assert.equal(decoded.edns, { udpPayloadSize: 4096, version: 0, dnssecOk: true })
})

const ecsTable: Array<[ip: string, source: number, family: number, address: string, bytes: number[]]> = [
  ['81.2.69.0', 24, 1, '81.2.69.0', [81, 2, 69]],
  ['81.2.64.0', 20, 1, '81.2.64.0', [81, 2, 64]],
  ['203.0.113.7', 32, 1, '203.0.113.7', [203, 0, 113, 7]],
  ['0.0.0.0', 0, 1, '0.0.0.0', []],
  ['2001:db8:aa00::', 40, 2, '2001:db8:aa00::', [0x20, 0x01, 0x0d, 0xb8, 0xaa]],
  ['2001:db8:1234:5600::', 56, 2, '2001:db8:1234:5600::', [0x20, 0x01, 0x0d, 0xb8, 0x12, 0x34, 0x56]]
]
for (const [ip, source, family, address, bytes] of ecsTable) {
  test(`dns-codec: ECS ${ip}/${source} decodes with its address and the octets as sent`, () => {
    const decoded = decodeQuery(query({ name: 'a.anycast.form', opt: { options: [ecs(ip, source, family)] } }))
    assert.equal(decoded.edns?.clientSubnet, { family: family === 1 ? 4 : 6, sourcePrefix: source, scopePrefix: 0, address, bytes: Uint8Array.from(bytes) })
  })
}

test('dns-codec: other EDNS options (cookie, padding) are skipped, ECS after them still read', () => {
  const options = [...[0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8], ...[0, 12, 0, 3, 0, 0, 0], ...ecsOption(1, 24, 0, [10, 1, 2])]
  const decoded = decodeQuery(concat(header({ ar: 1 }), wwwQuestion, optRecord(options)))
  assert.is(decoded.edns?.clientSubnet?.address, '10.1.2.0')
})

test('dns-codec: a non-OPT additional record (e.g. TSIG) with a compressed owner is skipped', () => {
  const tsigLike = [0xc0, 12, 0, 250, 0, 255, 0, 0, 0, 0, 0, 2, 0xaa, 0xbb]
  const decoded = decodeQuery(concat(header({ ar: 2 }), wwwQuestion, tsigLike, optRecord([])))
  assert.is(decoded.question.name, 'www.anycast.form')
  assert.ok(decoded.edns !== undefined)
})

test('dns-codec: label bytes outside printable ASCII, "." and "\\" are \\DDD-escaped, so distinct names never share a text', () => {
  const oneLabel = decodeQuery(concat(header(), [3, 0x61, 0x2e, 0x62, 0, 0, 1, 0, 1])) // "a.b" as one label
  const twoLabels = decodeQuery(concat(header(), [1, 0x61, 1, 0x62, 0, 0, 1, 0, 1]))
  const binary = decodeQuery(concat(header(), [4, 0x00, 0xff, 0x5c, 0x41, 0, 0, 1, 0, 1]))
  assert.is(oneLabel.question.name, 'a\\046b')
  assert.is(twoLabels.question.name, 'a.b')
  assert.is(binary.question.name, '\\000\\255\\092a')
})

// ---------------------------------------------------------------------------------------------
// Every way a message is refused, with the field it names and whether a header came back

const valid = concat(header({ ar: 1 }), wwwQuestion, optRecord([]))
const longName = Array.from({ length: 5 }, () => [63, ...new Array<number>(63).fill(0x61)]).flat()
const errorTable: Array<[what: string, bytes: Uint8Array, field: RegExp, reason: RegExp, hasHeader: boolean, rcode?: number]> = [
  ['11 bytes', valid.subarray(0, 11), /^header$/, /truncated: 11 of 12/, false],
  ['a response', withHeader(valid, { flags: 0x8100 }), /header\.qr/, /response/, true],
  ['opcode STATUS (2)', withHeader(valid, { flags: 2 << 11 }), /header\.opcode/, /opcode 2 is not implemented/, true, RCODE.NOTIMP],
  ['opcode NOTIFY (4)', withHeader(valid, { flags: 4 << 11 }), /header\.opcode/, /not implemented/, true, RCODE.NOTIMP],
  ['no question', withHeader(valid, { qd: 0 }), /header\.qdcount/, /one question, not 0/, true],
  ['two questions', concat(header({ qd: 2 }), wwwQuestion, wwwQuestion), /header\.qdcount/, /not 2/, true],
  ['an answer record', withHeader(valid, { an: 1 }), /header\.ancount/, /no answers/, true],
  ['an authority record', withHeader(valid, { ns: 1 }), /header\.nscount/, /no authority/, true],
  ['a name cut short', concat(header(), [3, 0x77, 0x77]), /question\.name/, /truncated label/, true],
  ['a name without its end', concat(header(), [3, 0x77, 0x77, 0x77]), /question\.name/, /truncated name/, true],
  ['no type and class', concat(header(), [3, 0x77, 0x77, 0x77, 0, 0, 1]), /^question$/, /truncated type/, true],
  ['a self-pointing name', concat(header(), [0xc0, 12, 0, 1, 0, 1]), /question\.name/, /does not point backwards/, true],
  ['a forward pointer', concat(header(), [0xc0, 20, 0, 1, 0, 1, 0, 0, 0, 0]), /question\.name/, /does not point backwards/, true],
  ['a pointer into the header', concat(header(), [1, 0x61, 0xc0, 2, 0, 1, 0, 1]), /question\.name/, /into the header/, true],
  ['a cut pointer', concat(header(), [1, 0x61, 0xc0]), /question\.name/, /truncated compression pointer/, true],
  ['label type 0x40', concat(header(), [0x41, 0x61, 0, 0, 1, 0, 1]), /question\.name/, /label type 0x40/, true],
  ['a 320-byte name', concat(header(), longName, [0, 0, 1, 0, 1]), /question\.name/, /longer than 255/, true],
  ['more additionals than bytes', concat(header({ ar: 9 }), wwwQuestion, optRecord([])), /header\.arcount/, /cannot fit/, true],
  ['two OPT records', concat(header({ ar: 2 }), wwwQuestion, optRecord([]), optRecord([])), /additional\[1\]/, /more than one OPT/, true],
  ['an OPT not owned by the root', concat(header({ ar: 1 }), wwwQuestion, optRecord([], [0xc0, 12])), /additional\[0\]\.name/, /owned by the root/, true],
  ['rdata past the end', concat(header({ ar: 1 }), wwwQuestion, [0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 9, 0, 8]), /additional\[0\]\.rdata/, /past the end/, true],
  ['a cut record header', concat(header({ ar: 1 }), wwwQuestion, [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0]), /additional\[0\]/, /truncated record header/, true],
  ['an option past its record', concat(header({ ar: 1 }), wwwQuestion, optRecord([0, 8, 0, 20, 0, 1])), /opt\.option\(8\)/, /runs past the record/, true],
  ['a cut option header', concat(header({ ar: 1 }), wwwQuestion, optRecord([0, 8])), /opt\.option/, /truncated option header/, true],
  ['ECS shorter than 4', concat(header({ ar: 1 }), wwwQuestion, optRecord([0, 8, 0, 2, 0, 1])), /opt\.ecs/, /shorter than 4/, true],
  ['ECS family 3', concat(header({ ar: 1 }), wwwQuestion, optRecord(ecsOption(3, 0, 0, []))), /opt\.ecs/, /family 3/, true],
  ['ECS IPv4 /33', concat(header({ ar: 1 }), wwwQuestion, optRecord(ecsOption(1, 33, 0, [1, 2, 3, 4, 5]))), /opt\.ecs/, /longer than 32 bits/, true],
  ['ECS IPv6 /129', concat(header({ ar: 1 }), wwwQuestion, optRecord(ecsOption(2, 129, 0, []))), /opt\.ecs/, /longer than 128 bits/, true],
  ['ECS scope set in a query', concat(header({ ar: 1 }), wwwQuestion, optRecord(ecsOption(1, 24, 24, [1, 2, 3]))), /opt\.ecs/, /scope prefix must be 0/, true],
  ['ECS /24 with 4 address octets', concat(header({ ar: 1 }), wwwQuestion, optRecord(ecsOption(1, 24, 0, [1, 2, 3, 0]))), /opt\.ecs/, /a \/24 needs 3/, true],
  ['ECS /24 with 2 address octets', concat(header({ ar: 1 }), wwwQuestion, optRecord(ecsOption(1, 24, 0, [1, 2]))), /opt\.ecs/, /a \/24 needs 3/, true],
  ['ECS /20 with bits past the prefix', concat(header({ ar: 1 }), wwwQuestion, optRecord(ecsOption(1, 20, 0, [1, 2, 0x31]))), /opt\.ecs/, /bits set past the \/20/, true],
  ['two ECS options', concat(header({ ar: 1 }), wwwQuestion, optRecord([...ecsOption(1, 8, 0, [10]), ...ecsOption(1, 8, 0, [10])])), /opt\.ecs/, /more than one client subnet/, true],
  ['trailing bytes', concat(valid, [0, 0, 0]), /^message$/, /3 trailing bytes/, true],
  ['4097 bytes', concat(valid, new Array<number>(MAX_UDP_QUERY_BYTES + 1 - valid.byteLength).fill(0)), /^message$/, /more than 4096/, true]
]

for (const [what, bytes, field, reason, hasHeader, rcode = RCODE.FORMERR] of errorTable) {
  test(`dns-codec: ${what} is refused (${field.source}: ${reason.source})`, () => {
    try {
      decodeQuery(bytes)
      assert.unreachable('decoded')
    } catch (error) {
      assert.instance(error, DnsFormatError)
      const formatError = error as DnsFormatError
      assert.is(formatError.name, 'DnsFormatError')
      assert.match(formatError.field, field)
      assert.match(formatError.reason, reason)
      assert.is(formatError.header !== undefined, hasHeader)
      assert.is(formatError.rcode, rcode)
      if (hasHeader) assert.is(formatError.header?.id, 0x1234)
    }
  })
}

test('dns-codec: a TCP-sized bound accepts what the UDP bound refuses', () => {
  const big = concat(header({ ar: 2 }), wwwQuestion, [0, 0, 99, 0, 1, 0, 0, 0, 0, 0x13, 0x88, ...new Array<number>(5000).fill(1)], optRecord([]))
  assert.throws(() => decodeQuery(big), (error: DnsFormatError) => /more than 4096/.test(error.reason))
  assert.is(decodeQuery(big, 65_535).question.name, 'www.anycast.form')
})

test('dns-codec: a compression loop in the additional section fails fast, not by running out of hops', () => {
  // The owner right after the question points to itself; any loop needs such a non-backward hop.
  const at = 12 + wwwQuestion.length
  const loop = concat(header({ ar: 1 }), wwwQuestion, [0xc0, at, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0])
  const started = performance.now()
  assert.throws(() => decodeQuery(loop), (error: DnsFormatError) => /does not point backwards/.test(error.reason))
  assert.ok(performance.now() - started < 50)
})

test('dns-codec: decodeHeader reads counts and flags of any 12 bytes', () => {
  assert.equal(decodeHeader(Uint8Array.from([0, 9, 0x81, 0x80, 0, 1, 0, 2, 0, 3, 0, 4])), {
    id: 9, flags: 0x8180, opcode: 0, isResponse: true, qdcount: 1, ancount: 2, nscount: 3, arcount: 4
  })
})

// ---------------------------------------------------------------------------------------------
// Names and records

const nameTable: Array<[input: string, name: string, wire: number[]]> = [
  ['anycast.form', 'anycast.form', [7, ...Buffer.from('anycast'), 4, ...Buffer.from('form'), 0]],
  ['AnyCast.Form.', 'anycast.form', [7, ...Buffer.from('anycast'), 4, ...Buffer.from('form'), 0]],
  ['.', '', [0]],
  ['', '', [0]],
  ['_dns.x', '_dns.x', [4, ...Buffer.from('_dns'), 1, 0x78, 0]]
]
for (const [input, name, wire] of nameTable) {
  test(`dns-codec: encodeName("${input}") is "${name}"`, () => {
    const encoded = encodeName(input)
    assert.is(encoded.name, name)
    assert.equal(Array.from(encoded.wire), wire)
  })
}

const badNames: Array<[input: string, reason: RegExp]> = [
  ['a..b', /empty label/],
  ['x'.repeat(64) + '.form', /longer than 63/],
  [Array.from({ length: 5 }, () => 'x'.repeat(60)).join('.'), /more than 255/],
  ['caf\u00e9.form', /not printable ASCII/],
  ['a b.form', /not printable ASCII/],
  ['a\\b.form', /not printable ASCII/]
]
for (const [input, reason] of badNames) {
  test(`dns-codec: encodeName refuses ${JSON.stringify(input.slice(0, 24))} (${reason.source})`, () => {
    assert.throws(() => encodeName(input), (error: Error) => error instanceof DnsNameError && reason.test(error.message))
  })
}

test('dns-codec: record constructors refuse wrong families, bad TTLs and oversized TXT', () => {
  assert.throws(() => aRecord('2001:db8::1'), /not an IPv4/)
  assert.throws(() => aaaaRecord('10.0.0.1'), /not an IPv6/)
  assert.throws(() => aRecord('10.0.0'), (error: Error) => error instanceof DnsNameError)
  assert.throws(() => aRecord('10.0.0.1', { ttlS: -1 }), /TTL -1/)
  assert.throws(() => aRecord('10.0.0.1', { ttlS: 2 ** 31 }), /TTL/)
  assert.throws(() => txtRecord('x'.repeat(70_000)), /more than 65535/)
  assert.throws(() => soaRecord({ mname: 'a', rname: 'b', serial: -1, refreshS: 1, retryS: 1, expireS: 1, minimumS: 1 }), /32-bit/)
})

function responseOf (message: Partial<DnsResponseMessage>): ReturnType<typeof dnsPacket.decode> {
  const question = decodeQuery(query({ id: 1, name: 'WWW.eu.anycast.form' })).question
  const full: DnsResponseMessage = { id: 1, flags: FLAG.QR | FLAG.AA, question, answers: [], answerTtlS: 30, authorities: [], authorityTtlS: 5, ...message }
  const bytes = encodeResponse(full)
  assert.is(bytes.byteLength, responseEncodingLength(full))
  return dnsPacket.decode(Buffer.from(bytes))
}

test('dns-codec: every record type we serve decodes with dns-packet to what was put in', () => {
  const soa = { mname: 'ns1.anycast.form', rname: 'hostmaster.anycast.form', serial: 2024010101, refreshS: 3600, retryS: 600, expireS: 604800, minimumS: 30 }
  const decoded = responseOf({
    answers: [
      aRecord('192.0.2.10'),
      aaaaRecord('2001:db8::10', { ttlS: 7 }),
      cnameRecord('target.anycast.form.'),
      txtRecord(['v=1', 'y'.repeat(300)]),
      nsRecord('ns1.anycast.form', { name: 'anycast.form' }),
      soaRecord(soa, { name: 'anycast.form' }),
      aRecord('192.0.2.11', { name: 'other.example' })
    ]
  })
  const answers = records(decoded.answers)
  assert.equal(answers.map((answer) => [answer.name, answer.type, answer.ttl]), [
    ['WWW.eu.anycast.form', 'A', 30], ['WWW.eu.anycast.form', 'AAAA', 7], ['WWW.eu.anycast.form', 'CNAME', 30], ['WWW.eu.anycast.form', 'TXT', 30],
    ['anycast.form', 'NS', 30], ['anycast.form', 'SOA', 30], ['other.example', 'A', 30]
  ])
  assert.equal(answers.map((answer) => answer.data).slice(0, 3), ['192.0.2.10', '2001:db8::10', 'target.anycast.form'])
  assert.equal((answers[3].data as Buffer[]).map((chunk) => chunk.toString()), ['v=1', 'y'.repeat(255), 'y'.repeat(45)])
  assert.is(answers[4].data, 'ns1.anycast.form')
  assert.equal(answers[5].data, { mname: 'ns1.anycast.form', rname: 'hostmaster.anycast.form', serial: 2024010101, refresh: 3600, retry: 600, expire: 604800, minimum: 30 })
})

test('dns-codec: owners equal to the question or a suffix of it are compressed to 2 bytes; others written out', () => {
  const question = decodeQuery(query({ id: 1, name: 'www.eu.anycast.form' })).question
  const base: DnsResponseMessage = { id: 1, flags: FLAG.QR, question, answers: [], answerTtlS: 1, authorities: [], authorityTtlS: 1 }
  const size = (record: ReturnType<typeof aRecord>): number => responseEncodingLength({ ...base, answers: [record] }) - responseEncodingLength(base)
  assert.is(size(aRecord('192.0.2.1')), 2 + 10 + 4)
  assert.is(size(aRecord('192.0.2.1', { name: 'anycast.form' })), 2 + 10 + 4)
  assert.is(size(aRecord('192.0.2.1', { name: 'eu.anycast.form' })), 2 + 10 + 4)
  assert.is(size(aRecord('192.0.2.1', { name: 'u.anycast.form' })), encodeName('u.anycast.form').wire.byteLength + 10 + 4, 'not a label boundary')
  assert.is(size(aRecord('192.0.2.1', { name: '.' })), 1 + 10 + 4)
  const decoded = responseOf({ authorities: [soaRecord({ mname: 'a.b', rname: 'c.d', serial: 1, refreshS: 1, retryS: 1, expireS: 1, minimumS: 1 }, { name: 'anycast.form' })] })
  assert.is(records(decoded.authorities)[0].name, 'anycast.form')
  assert.is(records(decoded.authorities)[0].ttl, 5)
})

test('dns-codec: an OPT with ECS is written as RFC 7871 §6 lays it out', () => {
  const subnet = decodeQuery(query({ name: 'a.anycast.form', opt: { options: [ecs('81.2.69.0', 24)] } })).edns?.clientSubnet
  assert.ok(subnet !== undefined)
  const decoded = responseOf({ opt: { udpPayloadSize: 1232, extendedRcode: 1, dnssecOk: true, clientSubnet: { ...subnet, scopePrefix: 20 } } })
  const opt = decoded.additionals?.[0]
  assert.ok(opt !== undefined && opt.type === 'OPT')
  assert.is(opt.udpPayloadSize, 1232)
  assert.is(opt.extendedRcode, 1)
  assert.is(opt.flag_do, true)
  assert.equal(opt.options.map((option) => ({ ...option, data: undefined })), [{
    code: 8, type: 'CLIENT_SUBNET', data: undefined, family: 1, sourcePrefixLength: 24, scopePrefixLength: 20, ip: '81.2.69.0'
  }])
})

test('dns-codec: encodeResponse refuses more than 65,535 bytes', () => {
  const question = decodeQuery(query({ name: 'a.anycast.form' })).question
  const big = txtRecord('z'.repeat(60_000))
  assert.throws(() => encodeResponse({ id: 1, flags: 0, question, answers: [big, big], answerTtlS: 1, authorities: [], authorityTtlS: 1 }), RangeError)
})

// ---------------------------------------------------------------------------------------------
// Properties: agreement with dns-packet, and nothing but DnsFormatError on any input

const label = fc.stringMatching(/^[a-zA-Z0-9-]{1,20}$/)
const name = fc.array(label, { minLength: 1, maxLength: 5 }).map((labels) => labels.join('.'))
const qtype = fc.constantFrom('A', 'AAAA', 'CNAME', 'TXT', 'SOA', 'NS', 'ANY', 'MX', 'SRV')
const ipv4Subnet = fc.tuple(fc.integer({ min: 0, max: 32 }), fc.uint8Array({ minLength: 4, maxLength: 4 })).map(([source, bytes]) => {
  const masked = bytes.map((byte, index) => { const bits = Math.max(0, Math.min(8, source - 8 * index)); return byte & ((0xff << (8 - bits)) & 0xff) })
  return ecs(Array.from(masked).join('.'), source)
})
const queryArbitrary = fc.record({
  id: fc.integer({ min: 0, max: 0xffff }),
  name,
  type: qtype,
  flags: fc.constantFrom(0, dnsPacket.RECURSION_DESIRED, dnsPacket.RECURSION_DESIRED | dnsPacket.CHECKING_DISABLED),
  // dns-packet writes a size of 0 as 4096.
  opt: fc.option(fc.record({ udpPayloadSize: fc.integer({ min: 1, max: 65_535 }), do: fc.boolean(), options: fc.array(ipv4Subnet, { maxLength: 1 }) }), { nil: undefined })
})

test('dns-codec: property — queries dns-packet encodes decode to the same id, name, type and subnet (1,000 runs)', () => {
  fc.assert(fc.property(queryArbitrary, (shape) => {
    const bytes = query(shape)
    const ours = decodeQuery(bytes)
    const theirs = dnsPacket.decode(bytes)
    assert.is(ours.header.id, theirs.id)
    assert.is(ours.question.name, theirs.questions?.[0].name.toLowerCase())
    assert.equal(Buffer.from(ours.question.wire), names.encode(theirs.questions?.[0].name ?? ''))
    assert.is(ours.edns?.udpPayloadSize, shape.opt?.udpPayloadSize)
    const subnet = shape.opt?.options[0] as { ip: string, sourcePrefixLength: number } | undefined
    assert.is(ours.edns?.clientSubnet?.address, subnet?.ip)
    assert.is(ours.edns?.clientSubnet?.sourcePrefix, subnet?.sourcePrefixLength)
  }), { numRuns: 1000, seed: 5353 })
})

/** Mutations of a valid packet: flip, set, cut, insert, or splice bytes. */
const mutated = fc.tuple(queryArbitrary, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 4 }), fc.nat(255)), { minLength: 1, maxLength: 4 }))
  .map(([shape, edits]) => {
    let bytes = Array.from(query({ ...shape, opt: shape.opt ?? { options: [ecs('10.0.0.0', 8)] } }))
    for (const [position, kind, value] of edits) {
      const at = position % (bytes.length + 1)
      if (kind === 0) bytes[at] = (bytes[at] ?? 0) ^ (1 << (value % 8))
      else if (kind === 1) bytes[at] = value
      else if (kind === 2) bytes = bytes.slice(0, at)
      else if (kind === 3) bytes.splice(at, 0, value)
      else bytes.splice(at, 0, 0xc0, value) // a compression pointer
    }
    return Uint8Array.from(bytes)
  })

function decodeOrFormatError (bytes: Uint8Array): ReturnType<typeof decodeQuery> | DnsFormatError {
  try { return decodeQuery(bytes) } catch (error) {
    if (error instanceof DnsFormatError) return error
    throw error
  }
}

/** Random bytes of unbiased length, half of them behind a plausible query header (one question). */
const randomMessage = fc.tuple(fc.boolean(), fc.noBias(fc.integer({ min: 0, max: 600 })), fc.integer({ min: 0, max: 3 }))
  .chain(([shaped, length, arcount]) => fc.noBias(fc.uint8Array({ minLength: length, maxLength: length })).map((bytes) => {
    if (!shaped || bytes.length < 12) return bytes
    const copy = Uint8Array.from(bytes)
    copy[2] &= 0x07 // QR=0, opcode QUERY
    copy.set([0, 1, 0, 0, 0, 0, 0, arcount], 4)
    return copy
  }))

test('dns-codec: property — random bytes only ever decode or throw DnsFormatError (20,000 runs)', () => {
  const fields = new Set<string>()
  fc.assert(fc.property(randomMessage, (bytes) => {
    const result = decodeOrFormatError(bytes)
    if (result instanceof DnsFormatError) fields.add(result.field.replace(/\[\d+\]/g, '[]'))
  }), { numRuns: 20_000, seed: 1 })
  assert.ok(fields.size >= 8, `random input should reach many checks, reached ${[...fields].join(', ')}`)
})

test('dns-codec: property — mutated queries only ever decode or throw DnsFormatError; accepted names agree with dns-packet (20,000 runs)', () => {
  let accepted = 0
  fc.assert(fc.property(mutated, (bytes) => {
    const result = decodeOrFormatError(bytes)
    if (result instanceof DnsFormatError) return
    accepted++
    // Where we accept, dns-packet reads the same question (when the name is plain printable text).
    if (result.question.name.includes('\\')) return
    const theirs = names.decode(Buffer.from(bytes), 12)
    assert.is(theirs.toLowerCase(), result.question.name === '' ? '.' : result.question.name)
  }), { numRuns: 20_000, seed: 2 })
  assert.ok(accepted > 1000, `mutations should leave many packets valid, got ${accepted}`)
})

test.run()
