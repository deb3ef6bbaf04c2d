import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fc from 'fast-check'
import { generateKeyPairSync, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto'
import {
  AnnouncementError, MAX_ANNOUNCEMENTS_PER_UPDATE, MAX_REACH_ENTRIES, MAX_REACH_RELAYING, MAX_UPDATE_MESSAGE_BYTES, SIGNING_DOMAIN,
  announcementSigningBytes, decodeUpdate, encodeUpdate, packUpdates, signAnnouncement, updateEncodingLength,
  validateAnnouncement, validateReachReport, verifyAnnouncement, type UpdateMessage
} from '../../src/protocols/announcement-codec.ts'
import { formatAddress } from '../../src/protocols/cidr.ts'
import type { ReachReport, RouteAnnouncement, SignedAnnouncement } from '../../src/protocols/routes.ts'
import type { Signer, Verifier } from '../../src/runtime/ports.ts'

function announcement (overrides: Partial<RouteAnnouncement> = {}): RouteAnnouncement {
  return {
    prefix: '10.42.255.1/32',
    service: 'api',
    origin: '12D3KooWExampleOrigin',
    seq: 1_700_000_000_123,
    withdrawn: false,
    attributes: { health: 'healthy', preference: 100, load: 0.25, ttlMs: 30_000, location: { lat: 52.37, lon: 4.9, region: 'eu-west' } },
    ...overrides
  }
}

function signed (a: RouteAnnouncement = announcement(), signature = new Uint8Array(64).fill(7)): SignedAnnouncement {
  return { announcement: a, signature }
}

const reach: ReachReport = { from: 'n2', seq: 9, entries: [{ origin: 'n3', rttMs: 12.5 }, { origin: 'n4', rttMs: 0 }] }

/** The one round-trip check every message goes through: value and bytes both survive. */
function roundTrip (message: UpdateMessage): UpdateMessage {
  const bytes = encodeUpdate(message)
  assert.is(bytes.byteLength, updateEncodingLength(message))
  const decoded = decodeUpdate(bytes)
  assert.equal(decoded, message)
  assert.equal(encodeUpdate(decoded), bytes)
  return decoded
}

function expectError (run: () => unknown, field: string, reason: RegExp): void {
  try {
    run()
  } catch (error) {
    assert.instance(error, AnnouncementError)
    assert.is((error as AnnouncementError).name, 'AnnouncementError')
    assert.is((error as AnnouncementError).field, field)
    assert.match((error as AnnouncementError).reason, reason)
    assert.ok((error as Error).message.startsWith(`announcement: ${field}: `), (error as Error).message)
    return
  }
  assert.unreachable(`expected an AnnouncementError on ${field}`)
}

// --- round trips ----------------------------------------------------------------------------------

const roundTrips: Array<[name: string, message: UpdateMessage]> = [
  ['empty', { announcements: [] }],
  ['one announcement with location and region', { announcements: [signed()] }],
  ['location without region', { announcements: [signed(announcement({ attributes: { health: 'degraded', preference: 0, load: 1, ttlMs: 1_000, location: { lat: -90, lon: 180 } } }))] }],
  ['no location, withdrawn, failed', { announcements: [signed(announcement({ withdrawn: true, attributes: { health: 'failed', preference: 1000, load: 0, ttlMs: 86_400_000 } }))] }],
  ['IPv6 prefix, unicode region', { announcements: [signed(announcement({ prefix: '2001:db8::/48', attributes: { health: 'healthy', preference: 5, load: 0.5, ttlMs: 9_000, location: { lat: 35.68, lon: 139.69, region: '東京 🗼' } } }))] }],
  ['reach only', { announcements: [], reach }],
  ['announcements and reach', { announcements: [signed(), signed(announcement({ origin: 'n9', seq: 0 }), new Uint8Array([1]))], reach }],
  ['reach with no entries', { announcements: [], reach: { from: 'n1', seq: 0, entries: [] } }]
]

for (const [name, message] of roundTrips) {
  test(`announcement-codec: round trip, ${name}`, () => { roundTrip(message) })
}

test('announcement-codec: a region starting with a byte-order mark survives (canonical bytes)', () => {
  roundTrip({ announcements: [signed(announcement({ attributes: { health: 'healthy', preference: 1, load: 0, ttlMs: 1000, location: { lat: 0, lon: 0, region: '\uFEFFx' } } }))] })
})

// --- validation ---------------------------------------------------------------------------------

const base = announcement()
const invalid: Array<[name: string, value: unknown, field: string, reason: RegExp]> = [
  ['prefix not a CIDR', { ...base, prefix: '10.0.0.0' }, 'prefix', /missing "\/length"/],
  ['prefix host bits', { ...base, prefix: '10.0.0.1/24' }, 'prefix', /host bits are set/],
  ['prefix not canonical', { ...base, prefix: '2001:DB8::/32' }, 'prefix', /not canonical \(write "2001:db8::\/32"\)/],
  ['prefix not a string', { ...base, prefix: 7 }, 'prefix', /must be a string/],
  ['service upper case', { ...base, service: 'API' }, 'service', /must match/],
  ['service leading dash', { ...base, service: '-api' }, 'service', /must match/],
  ['service empty', { ...base, service: '' }, 'service', /must match/],
  ['service 64 characters', { ...base, service: 'a'.repeat(64) }, 'service', /must match/],
  ['origin empty', { ...base, origin: '' }, 'origin', /1\.\.128 visible ASCII/],
  ['origin 129 characters', { ...base, origin: 'x'.repeat(129) }, 'origin', /1\.\.128/],
  ['origin with a space', { ...base, origin: 'n 1' }, 'origin', /visible ASCII/],
  ['seq negative', { ...base, seq: -1 }, 'seq', /integer in \[0, 9007199254740991\]/],
  ['seq fractional', { ...base, seq: 1.5 }, 'seq', /integer/],
  ['seq unsafe', { ...base, seq: 2 ** 53 }, 'seq', /integer/],
  ['seq NaN', { ...base, seq: Number.NaN }, 'seq', /integer/],
  ['withdrawn missing', { ...base, withdrawn: undefined }, 'withdrawn', /boolean/],
  ['attributes missing', { ...base, attributes: null }, 'attributes', /must be an object/],
  ['health unknown', { ...base, attributes: { ...base.attributes, health: 'ok' } }, 'attributes.health', /"healthy", "degraded" or "failed"/],
  ['health inherited key', { ...base, attributes: { ...base.attributes, health: 'toString' } }, 'attributes.health', /"healthy"/],
  ['preference 1001', { ...base, attributes: { ...base.attributes, preference: 1001 } }, 'attributes.preference', /integer in \[0, 1000\]/],
  ['preference fractional', { ...base, attributes: { ...base.attributes, preference: 1.5 } }, 'attributes.preference', /integer/],
  ['load above 1', { ...base, attributes: { ...base.attributes, load: 1.01 } }, 'attributes.load', /number in \[0, 1\]/],
  ['load infinite', { ...base, attributes: { ...base.attributes, load: Number.POSITIVE_INFINITY } }, 'attributes.load', /number/],
  ['ttl 999', { ...base, attributes: { ...base.attributes, ttlMs: 999 } }, 'attributes.ttlMs', /\[1000, 86400000\]/],
  ['ttl a day and 1 ms', { ...base, attributes: { ...base.attributes, ttlMs: 86_400_001 } }, 'attributes.ttlMs', /\[1000, 86400000\]/],
  ['lat 91', { ...base, attributes: { ...base.attributes, location: { lat: 91, lon: 0 } } }, 'attributes.location.lat', /\[-90, 90\]/],
  ['lon -181', { ...base, attributes: { ...base.attributes, location: { lat: 0, lon: -181 } } }, 'attributes.location.lon', /\[-180, 180\]/],
  ['region empty', { ...base, attributes: { ...base.attributes, location: { lat: 0, lon: 0, region: '' } } }, 'attributes.location.region', /1\.\.64 printable/],
  ['region control character', { ...base, attributes: { ...base.attributes, location: { lat: 0, lon: 0, region: 'eu\n' } } }, 'attributes.location.region', /printable/],
  ['region lone surrogate', { ...base, attributes: { ...base.attributes, location: { lat: 0, lon: 0, region: 'a\uD800' } } }, 'attributes.location.region', /printable/],
  ['region 65 characters', { ...base, attributes: { ...base.attributes, location: { lat: 0, lon: 0, region: 'r'.repeat(65) } } }, 'attributes.location.region', /1\.\.64/],
  ['not an object', 'api', 'announcement', /must be an object/]
]

for (const [name, value, field, reason] of invalid) {
  test(`announcement-codec: validateAnnouncement rejects ${name} (field ${field})`, () => {
    expectError(() => validateAnnouncement(value as RouteAnnouncement), field, reason)
    if (typeof value === 'object') {
      expectError(() => encodeUpdate({ announcements: [signed(value as RouteAnnouncement)] }), `announcements[0].announcement.${field}`, reason)
    }
  })
}

const invalidReach: Array<[name: string, value: unknown, field: string, reason: RegExp]> = [
  ['from empty', { ...reach, from: '' }, 'reach.from', /visible ASCII/],
  ['seq negative', { ...reach, seq: -1 }, 'reach.seq', /integer/],
  ['entries not an array', { ...reach, entries: {} }, 'reach.entries', /array/],
  ['rtt above 60 s', { ...reach, entries: [{ origin: 'a', rttMs: 60_001 }] }, 'reach.entries[0].rttMs', /\[0, 60000\]/],
  ['rtt negative', { ...reach, entries: [{ origin: 'a', rttMs: -1 }] }, 'reach.entries[0].rttMs', /\[0, 60000\]/],
  ['rtt NaN', { ...reach, entries: [{ origin: 'a', rttMs: Number.NaN }] }, 'reach.entries[0].rttMs', /number/],
  ['duplicate origin', { ...reach, entries: [{ origin: 'a', rttMs: 1 }, { origin: 'a', rttMs: 2 }] }, 'reach.entries[1].origin', /duplicate/],
  ['too many entries', { ...reach, entries: Array.from({ length: MAX_REACH_ENTRIES + 1 }, (_, i) => ({ origin: `n${i}`, rttMs: 1 })) }, 'reach.entries', /more than 1024/],
  ['relaying not an array', { ...reach, relaying: '10.0.0.1/32' }, 'reach.relaying', /array/],
  ['relaying empty (absent is its one encoding)', { ...reach, relaying: [] }, 'reach.relaying', /absent when empty/],
  ['relaying a non-canonical prefix', { ...reach, relaying: ['10.0.0.1/24'] }, 'reach.relaying[0]', /canonical|host bits/],
  ['relaying a prefix twice', { ...reach, relaying: ['10.0.0.1/32', '10.0.0.1/32'] }, 'reach.relaying[1]', /duplicate prefix/],
  ['relaying too many prefixes', { ...reach, relaying: Array.from({ length: MAX_REACH_RELAYING + 1 }, (_, i) => `10.0.${i >> 8}.${i & 255}/32`) }, 'reach.relaying', /more than 1024/],
  ['relayPending not an array', { ...reach, relayPending: 7 }, 'reach.relayPending', /array/],
  ['relayPending empty', { ...reach, relayPending: [] }, 'reach.relayPending', /absent when empty/],
  ['relayPending too many prefixes', { ...reach, relayPending: Array.from({ length: MAX_REACH_RELAYING + 1 }, (_, i) => `10.0.${i >> 8}.${i & 255}/32`) }, 'reach.relayPending', /more than 1024/],
  ['a prefix both relayed and about to be', { ...reach, relaying: ['10.0.0.1/32'], relayPending: ['10.0.0.2/32', '10.0.0.1/32'] }, 'reach.relayPending[1]', /duplicate prefix \(in relaying or relayPending\)/]
]

for (const [name, value, field, reason] of invalidReach) {
  test(`announcement-codec: validateReachReport rejects ${name} (field ${field})`, () => {
    expectError(() => validateReachReport(value as ReachReport), field, reason)
    expectError(() => encodeUpdate({ announcements: [], reach: value as ReachReport }), field, reason)
  })
}

test('announcement-codec: encode rejects a bad signature length and more than 256 announcements', () => {
  expectError(() => encodeUpdate({ announcements: [signed(base, new Uint8Array(0))] }), 'announcements[0].signature', /1\.\.128 bytes/)
  expectError(() => encodeUpdate({ announcements: [signed(base, new Uint8Array(129))] }), 'announcements[0].signature', /1\.\.128 bytes/)
  const many = Array.from({ length: MAX_ANNOUNCEMENTS_PER_UPDATE + 1 }, (_, seq) => signed(announcement({ seq, attributes: { health: 'healthy', preference: 1, load: 0, ttlMs: 1000 } }), new Uint8Array(1)))
  expectError(() => encodeUpdate({ announcements: many }), 'announcements', /more than 256/)
  roundTrip({ announcements: many.slice(0, MAX_ANNOUNCEMENTS_PER_UPDATE) })
})

test('announcement-codec: a message over 60 KiB is refused on encode and on decode', () => {
  const big = Array.from({ length: 200 }, (_, seq) => signed(announcement({ seq, origin: 'o'.repeat(128) }), new Uint8Array(128)))
  expectError(() => encodeUpdate({ announcements: big }), 'update', /larger than 61440 \(split it with packUpdates\)/)
  expectError(() => decodeUpdate(new Uint8Array(MAX_UPDATE_MESSAGE_BYTES + 1)), 'update', /larger than 61440 bytes/)
})

test('announcement-codec: packUpdates splits a large table into messages that each encode, in order, reach first', () => {
  const table = Array.from({ length: 600 }, (_, seq) => signed(announcement({ seq, origin: 'o'.repeat(128) }), new Uint8Array(64)))
  const messages = packUpdates(table, reach)
  assert.ok(messages.length > 1)
  assert.equal(messages[0]!.reach, reach)
  assert.ok(messages.slice(1).every((message) => message.reach === undefined))
  for (const message of messages) {
    assert.ok(encodeUpdate(message).byteLength <= MAX_UPDATE_MESSAGE_BYTES)
    assert.ok(message.announcements.length <= MAX_ANNOUNCEMENTS_PER_UPDATE)
  }
  assert.equal(messages.flatMap((message) => message.announcements), table)
  const small = Array.from({ length: 300 }, (_, seq) => signed(announcement({ seq, attributes: { health: 'healthy', preference: 1, load: 0, ttlMs: 1000 } }), new Uint8Array(1)))
  assert.equal(packUpdates(small).map((message) => message.announcements.length), [256, 44])
  assert.equal(packUpdates([]), [{ announcements: [] }])
  expectError(() => packUpdates([signed(announcement({ service: 'X' }))]), 'announcements[0].announcement.service', /must match/)
})

// --- decoding errors -----------------------------------------------------------------------------

function encoded (message: UpdateMessage = { announcements: [signed()], reach }): Uint8Array {
  return encodeUpdate(message)
}

/** Offset of the flags byte of the first announcement in an encoding of `signed()`. */
function flagsOffset (): number {
  const a = base
  return 1 + 2 + (1 + a.prefix.length) + (1 + a.service.length) + (1 + a.origin.length) + 8
}

test('announcement-codec: decode names the field of each malformed byte', () => {
  const valid = encoded()
  const patched = (offset: number, value: number): Uint8Array => { const copy = valid.slice(); copy[offset] = value; return copy }
  expectError(() => decodeUpdate(new Uint8Array(0)), 'update.version', /truncated/)
  // Version 1 reach reports had no relaying list and version 2 one list for relaying and about to
  // relay: an older peer's update is refused by name.
  expectError(() => decodeUpdate(patched(0, 1)), 'update.version', /unsupported version 1/)
  expectError(() => decodeUpdate(patched(0, 2)), 'update.version', /unsupported version 2/)
  expectError(() => decodeUpdate(patched(0, 4)), 'update.version', /unsupported version 4/)
  expectError(() => decodeUpdate(Uint8Array.of(3, 0x01, 0x01)), 'announcements', /more than 256/)
  expectError(() => decodeUpdate(Uint8Array.of(3, 0, 1)), 'announcements[0].announcement.prefix', /truncated/)
  expectError(() => decodeUpdate(patched(flagsOffset(), 0x08 | 0x02)), 'announcements[0].announcement.flags', /unknown bits 0xa/)
  expectError(() => decodeUpdate(patched(flagsOffset(), 0x04)), 'announcements[0].announcement.flags', /region without location/)
  expectError(() => decodeUpdate(patched(flagsOffset() + 1, 4)), 'announcements[0].announcement.attributes.health', /unknown code 4/)
  expectError(() => decodeUpdate(patched(flagsOffset() + 2, 0xff)), 'announcements[0].announcement.attributes.preference', /\[0, 1000\]/)
  expectError(() => decodeUpdate(patched(4, 0xff)), 'announcements[0].announcement.prefix', /not valid UTF-8/)
  expectError(() => decodeUpdate(patched(4, 0x78)), 'announcements[0].announcement.prefix', /IPv4 part "x0" must be decimal/)
  expectError(() => decodeUpdate(valid.subarray(0, valid.byteLength - 5)), 'reach.entries[1].rttMs', /truncated/)
  expectError(() => decodeUpdate(valid.subarray(0, valid.byteLength - 1)), 'reach.relayPending', /truncated/)
  expectError(() => decodeUpdate(valid.subarray(0, valid.byteLength - 3)), 'reach.relaying', /truncated/)
  // The two lists close the report: u16 count · str × count, twice.
  const text = (value: string): number[] => [value.length, ...new TextEncoder().encode(value)]
  const lists = (relaying: string[], pending: string[]): Uint8Array => Uint8Array.of(...valid.subarray(0, valid.byteLength - 4),
    0, relaying.length, ...relaying.flatMap(text), 0, pending.length, ...pending.flatMap(text))
  assert.equal(decodeUpdate(lists(['10.42.255.2/32'], ['10.42.255.3/32'])).reach, { ...reach, relaying: ['10.42.255.2/32'], relayPending: ['10.42.255.3/32'] })
  expectError(() => decodeUpdate(lists(['10.42.255.2/32'], []).subarray(0, -3)), 'reach.relaying[0]', /truncated/)
  expectError(() => decodeUpdate(lists([], ['10.42.255.3/32']).subarray(0, -1)), 'reach.relayPending[0]', /truncated/)
  expectError(() => decodeUpdate(lists(['10.42.255.2/24'], [])), 'reach.relaying[0]', /host bits|canonical/)
  expectError(() => decodeUpdate(lists([], ['10.42.255.2/24'])), 'reach.relayPending[0]', /host bits|canonical/)
  expectError(() => decodeUpdate(lists(['10.42.255.2/32'], ['10.42.255.2/32'])), 'reach.relayPending[0]', /duplicate prefix \(in relaying or relayPending\)/)
  expectError(() => decodeUpdate(Uint8Array.of(...valid, 0)), 'update', /1 trailing bytes/)
  const noReach = encoded({ announcements: [] })
  expectError(() => decodeUpdate(Uint8Array.of(...noReach.subarray(0, 3), 2)), 'reach', /flag must be 0 or 1, not 2/)
  expectError(() => decodeUpdate(Uint8Array.of(...noReach.subarray(0, 3))), 'reach', /truncated/)
})

test('announcement-codec: decode rejects an empty signature and a NaN seq', () => {
  const bytes = encoded({ announcements: [signed()] })
  const withoutSignature = Uint8Array.of(...bytes.subarray(0, bytes.byteLength - 66), 0, 0)
  expectError(() => decodeUpdate(withoutSignature), 'announcements[0].signature', /empty/)
  const nan = bytes.slice()
  new DataView(nan.buffer).setFloat64(flagsOffset() - 8, Number.NaN)
  expectError(() => decodeUpdate(nan), 'announcements[0].announcement.seq', /not a finite number/)
})

test('announcement-codec: decode copies bytes out of the input (a reused buffer cannot change a decoded signature)', () => {
  const bytes = encoded({ announcements: [signed()] })
  const decoded = decodeUpdate(bytes)
  bytes.fill(0)
  assert.equal(decoded.announcements[0]!.signature, new Uint8Array(64).fill(7))
})

// --- signing -----------------------------------------------------------------------------------

function ed25519Node (nodeId: string): { signer: Signer, publicKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  return { signer: { nodeId, sign: (data) => new Uint8Array(cryptoSign(null, data, privateKey)) }, publicKey }
}

function verifierOf (keys: Record<string, KeyObject>): Verifier {
  return { verify: (nodeId, data, signature) => keys[nodeId] !== undefined && cryptoVerify(null, data, keys[nodeId]!, signature) }
}

test('announcement-codec: signing bytes are deterministic, domain-separated, and cover every field', () => {
  const bytes = announcementSigningBytes(base)
  assert.equal(announcementSigningBytes(structuredClone(base)), bytes)
  assert.equal(bytes.subarray(0, SIGNING_DOMAIN.length), new TextEncoder().encode(SIGNING_DOMAIN))
  const changes: RouteAnnouncement[] = [
    announcement({ prefix: '10.42.255.2/32' }), announcement({ service: 'web' }), announcement({ origin: 'other' }),
    announcement({ seq: base.seq + 1 }), announcement({ withdrawn: true }),
    announcement({ attributes: { ...base.attributes, health: 'degraded' } }), announcement({ attributes: { ...base.attributes, preference: 101 } }),
    announcement({ attributes: { ...base.attributes, load: 0.26 } }), announcement({ attributes: { ...base.attributes, ttlMs: 30_001 } }),
    announcement({ attributes: { ...base.attributes, location: { lat: 52.37, lon: 4.9 } } }),
    announcement({ attributes: { health: 'healthy', preference: 100, load: 0.25, ttlMs: 30_000 } })
  ]
  const distinct = new Set([bytes, ...changes.map(announcementSigningBytes)].map((b) => Buffer.from(b).toString('hex')))
  assert.is(distinct.size, changes.length + 1)
  expectError(() => announcementSigningBytes(announcement({ seq: -1 })), 'seq', /integer/)
})

test('announcement-codec: Ed25519 sign then verify; tampering, wrong key and unknown origin all fail', () => {
  const alice = ed25519Node('alice')
  const mallory = ed25519Node('mallory')
  const verifier = verifierOf({ alice: alice.publicKey, mallory: mallory.publicKey })
  const mine = signAnnouncement(announcement({ origin: 'alice' }), alice.signer)
  assert.is(mine.signature.byteLength, 64)
  assert.ok(verifyAnnouncement(mine, verifier))
  const [decoded] = decodeUpdate(encodeUpdate({ announcements: [mine] })).announcements
  assert.ok(verifyAnnouncement(decoded!, verifier), 'still verifies after the wire')
  assert.not.ok(verifyAnnouncement({ ...mine, announcement: { ...mine.announcement, seq: mine.announcement.seq + 1 } }, verifier))
  assert.not.ok(verifyAnnouncement({ ...mine, announcement: { ...mine.announcement, attributes: { ...mine.announcement.attributes, preference: 1000 } } }, verifier))
  // Mallory signs a claim to be alice's origin: the signature is checked against alice's key.
  const forged = { announcement: announcement({ origin: 'alice' }), signature: mallory.signer.sign(announcementSigningBytes(announcement({ origin: 'alice' }))) }
  assert.not.ok(verifyAnnouncement(forged, verifier))
  assert.not.ok(verifyAnnouncement(mine, verifierOf({ mallory: mallory.publicKey })), 'unknown origin key')
  // Bytes signed without the domain prefix are not accepted as an announcement signature.
  const body = announcementSigningBytes(mine.announcement).subarray(SIGNING_DOMAIN.length)
  assert.not.ok(verifyAnnouncement({ announcement: mine.announcement, signature: alice.signer.sign(body) }, verifier))
  assert.not.ok(verifyAnnouncement({ announcement: announcement({ origin: 'alice', seq: -5 }), signature: mine.signature }, verifier), 'invalid announcement is false, not a throw')
  assert.not.ok(verifyAnnouncement({ announcement: mine.announcement, signature: new Uint8Array(0) }, verifier))
  assert.not.ok(verifyAnnouncement(null as unknown as SignedAnnouncement, verifier))
})

test('announcement-codec: signAnnouncement refuses another node\'s announcement and an invalid one', () => {
  const alice = ed25519Node('alice')
  expectError(() => signAnnouncement(announcement({ origin: 'bob' }), alice.signer), 'origin', /"bob" is not the signer "alice"/)
  expectError(() => signAnnouncement(announcement({ origin: 'alice', service: '' }), alice.signer), 'service', /must match/)
  expectError(() => signAnnouncement(announcement({ origin: 'alice' }), { nodeId: 'alice', sign: () => new Uint8Array(0) }), 'signature', /signer produced 0 bytes/)
})

// --- properties and fuzzing ----------------------------------------------------------------------

const visibleAscii = fc.integer({ min: 0x21, max: 0x7e }).map((code) => String.fromCharCode(code))
const nodeId = fc.string({ unit: visibleAscii, minLength: 1, maxLength: 128 })
const prefixArb = fc.tuple(fc.oneof(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.uint8Array({ minLength: 16, maxLength: 16 })), fc.nat(128))
  .map(([raw, seed]) => {
    const length = seed % (raw.byteLength * 8 + 1)
    for (let bit = length; bit < raw.byteLength * 8; bit++) raw[bit >> 3] &= ~(0x80 >> (bit & 7))
    return `${formatAddress(raw)}/${length}`
  })
const regionArb = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }).filter((s) => s.length <= 64 && !/[\p{Cc}\p{Cs}]/u.test(s))
const locationArb = fc.record({ lat: fc.double({ min: -90, max: 90, noNaN: true }), lon: fc.double({ min: -180, max: 180, noNaN: true }), region: regionArb }, { requiredKeys: ['lat', 'lon'], noNullPrototype: true })
const announcementArb: fc.Arbitrary<RouteAnnouncement> = fc.record({
  prefix: prefixArb,
  service: fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,62}$/),
  origin: nodeId,
  seq: fc.maxSafeNat(),
  withdrawn: fc.boolean(),
  attributes: fc.record({
    health: fc.constantFrom('healthy' as const, 'degraded' as const, 'failed' as const),
    preference: fc.integer({ min: 0, max: 1000 }),
    load: fc.double({ min: 0, max: 1, noNaN: true }),
    ttlMs: fc.integer({ min: 1_000, max: 86_400_000 }),
    location: locationArb
  }, { requiredKeys: ['health', 'preference', 'load', 'ttlMs'], noNullPrototype: true })
}, { noNullPrototype: true })
const signedArb = fc.record({ announcement: announcementArb, signature: fc.uint8Array({ minLength: 1, maxLength: 128 }) }, { noNullPrototype: true })
const reachArb: fc.Arbitrary<ReachReport> = fc.record({
  from: nodeId,
  seq: fc.maxSafeNat(),
  entries: fc.uniqueArray(fc.record({ origin: nodeId, rttMs: fc.double({ min: 0, max: 60_000, noNaN: true }) }, { noNullPrototype: true }), { selector: (entry) => entry.origin, maxLength: 40 }),
  relaying: fc.uniqueArray(prefixArb, { minLength: 1, maxLength: 8 }),
  relayPending: fc.uniqueArray(prefixArb, { minLength: 1, maxLength: 8 })
}, { requiredKeys: ['from', 'seq', 'entries'], noNullPrototype: true }).filter((report) =>
  // A prefix is relayed or about to be, never both.
  !(report.relayPending ?? []).some((prefix) => report.relaying?.includes(prefix) === true))
const messageArb: fc.Arbitrary<UpdateMessage> = fc.record({ announcements: fc.array(signedArb, { maxLength: 12 }), reach: reachArb }, { requiredKeys: ['announcements'], noNullPrototype: true })

test('announcement-codec: property — arbitrary valid messages round-trip to equal values and equal bytes', () => {
  fc.assert(fc.property(messageArb, (message) => { roundTrip(message) }), { seed: 11, numRuns: 1500 })
})

test('announcement-codec: property — signing bytes of a decoded announcement equal the sender\'s', () => {
  fc.assert(fc.property(signedArb, (s) => {
    const [decoded] = decodeUpdate(encodeUpdate({ announcements: [s] })).announcements
    assert.equal(announcementSigningBytes(decoded!.announcement), announcementSigningBytes(s.announcement))
  }), { seed: 12, numRuns: 500 })
})

/** Decode must either succeed (and then be canonical) or throw AnnouncementError; nothing else. */
function decodeOrAnnouncementError (bytes: Uint8Array): 'decoded' | 'rejected' {
  let message: UpdateMessage
  try {
    message = decodeUpdate(bytes)
  } catch (error) {
    if (error instanceof AnnouncementError) return 'rejected'
    throw error
  }
  assert.equal(encodeUpdate(message), bytes, 'whatever decodes re-encodes to the same bytes')
  return 'decoded'
}

test('announcement-codec: fuzz — random bytes only ever raise AnnouncementError', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => { decodeOrAnnouncementError(bytes) }), { seed: 13, numRuns: 5000 })
  fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), (tail) => { decodeOrAnnouncementError(Uint8Array.of(2, ...tail)) }), { seed: 14, numRuns: 5000 })
})

const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat() })
)

function mutate (bytes: Uint8Array, mutations: Array<{ kind: 'flip' | 'truncate' | 'insert' | 'delete', at: number, value?: number }>): Uint8Array {
  let out = Array.from(bytes)
  for (const { kind, at, value } of mutations) {
    const index = out.length === 0 ? 0 : at % out.length
    if (kind === 'flip') out[index] = value!
    else if (kind === 'truncate') out = out.slice(0, index)
    else if (kind === 'insert') out.splice(index, 0, value!)
    else out.splice(index, 1)
  }
  return Uint8Array.from(out)
}

test('announcement-codec: fuzz — mutated valid encodings only ever raise AnnouncementError, and decode quickly', () => {
  let slowestMs = 0
  const outcomes = { decoded: 0, rejected: 0 }
  fc.assert(fc.property(messageArb, fc.array(mutation, { minLength: 1, maxLength: 4 }), (message, mutations) => {
    const bytes = mutate(encodeUpdate(message), mutations)
    const started = performance.now()
    outcomes[decodeOrAnnouncementError(bytes)]++
    slowestMs = Math.max(slowestMs, performance.now() - started)
  }), { seed: 15, numRuns: 3000 })
  assert.ok(slowestMs < 250, `slowest decode took ${slowestMs} ms`)
  // Both branches are exercised: some mutations (inside a signature, a region) still decode.
  assert.ok(outcomes.decoded > 50 && outcomes.rejected > 1000, JSON.stringify(outcomes))
})

test.run()
