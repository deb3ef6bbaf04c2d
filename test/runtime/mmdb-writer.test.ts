import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fc from 'fast-check'
import { Reader } from 'maxmind'
import { formatAddress } from '../../src/protocols/cidr.ts'
import { METADATA_MARKER, MmdbTypedNumber, MmdbWriteError, writeMmdb, type MmdbRecord, type MmdbValue, type MmdbWriteOptions } from '../../src/runtime/mmdb-writer.ts'

const read = (buffer: Buffer): Reader<any> => new Reader<any>(buffer)

test('mmdb writer: metadata round-trips through the maxmind Reader', () => {
  const buffer = writeMmdb({
    databaseType: 'Test-City',
    records: [{ network: '192.0.2.0/24', data: { city: 'Frankfurt' } }],
    languages: ['en', 'de'],
    description: { en: 'fixture' },
    buildEpochSeconds: 1_700_000_000
  })
  const { metadata } = read(buffer)
  assert.is(metadata.binaryFormatMajorVersion, 2)
  assert.is(metadata.binaryFormatMinorVersion, 0)
  assert.is(metadata.databaseType, 'Test-City')
  assert.is(metadata.ipVersion, 6)
  assert.equal(metadata.languages, ['en', 'de'])
  assert.equal(metadata.description, { en: 'fixture' })
  assert.is(metadata.buildEpoch.getTime(), 1_700_000_000_000)
  assert.is(metadata.recordSize, 24, 'the smallest record size that fits is chosen')
  assert.is(buffer.lastIndexOf(METADATA_MARKER), metadata.searchTreeSize + 16 + buffer.subarray(metadata.searchTreeSize + 16).indexOf(METADATA_MARKER))
  assert.ok(buffer.subarray(metadata.searchTreeSize, metadata.searchTreeSize + 16).every((byte) => byte === 0), '16-byte zero separator after the tree')
})

test('mmdb writer: every data type round-trips', () => {
  const data = {
    string: 'Zürich 東京',
    empty: '',
    long: 'x'.repeat(70_000),
    double: 50.1109,
    negativeZero: -0,
    uint32: 4_294_967_295,
    int32: -2_147_483_648,
    bigDouble: 2 ** 40,
    uint16: new MmdbTypedNumber('uint16', 65_535),
    float: new MmdbTypedNumber('float', 1.5),
    uint64: 2n ** 64n - 1n,
    uint128: 2n ** 128n - 1n,
    yes: true,
    no: false,
    bytes: new Uint8Array([0, 1, 255]),
    array: [1, 'two', [3], {}],
    nested: { a: { b: { c: 'deep' } } }
  }
  const record = read(writeMmdb({ databaseType: 'Types', records: [{ network: '10.0.0.0/8', data }] })).get('10.1.2.3')
  const expected = { ...data, uint16: 65_535, float: 1.5, bytes: Buffer.from([0, 1, 255]) }
  assert.equal(record, expected)
  assert.ok(Object.is(record.negativeZero, -0))
})

test('mmdb writer: IPv4 at ::/96, IPv4-mapped ::ffff:0:0/96 aliased, IPv6 on its own', () => {
  const reader = read(writeMmdb({
    databaseType: 'Alias',
    records: [
      { network: '192.0.2.0/24', data: 'frankfurt' },
      { network: '2001:db8:1::/48', data: 'sydney' }
    ]
  }))
  assert.equal(reader.getWithPrefixLength('192.0.2.77'), ['frankfurt', 24])
  assert.equal(reader.getWithPrefixLength('::ffff:192.0.2.77'), ['frankfurt', 120])
  assert.equal(reader.getWithPrefixLength('::c000:24d'), ['frankfurt', 120])
  assert.is(reader.get('2001:db8:1:ffff::1'), 'sydney')
  assert.is(reader.get('2001:db8:2::1'), null)
  assert.is(reader.get('198.51.100.1'), null)
  const unaliased = read(writeMmdb({ databaseType: 'NoAlias', aliasIpv4Mapped: false, records: [{ network: '192.0.2.0/24', data: 'frankfurt' }] }))
  assert.is(unaliased.get('192.0.2.1'), 'frankfurt')
  assert.is(unaliased.get('::ffff:192.0.2.1'), null)
})

test('mmdb writer: the more specific network wins, whatever the input order', () => {
  const records: MmdbRecord[] = [
    { network: '10.0.0.0/8', data: 'eight' },
    { network: '10.1.0.0/16', data: 'sixteen' },
    { network: '10.1.2.3/32', data: 'host' },
    { network: '0.0.0.0/0', data: 'default' }
  ]
  for (const order of [records, [...records].reverse()]) {
    const reader = read(writeMmdb({ databaseType: 'Overlap', records: order }))
    assert.equal(reader.getWithPrefixLength('10.1.2.3'), ['host', 32])
    assert.equal(reader.getWithPrefixLength('10.1.2.4'), ['sixteen', 30])
    assert.equal(reader.getWithPrefixLength('10.2.0.0'), ['eight', 15])
    assert.is(reader.get('11.0.0.0'), 'default')
    assert.is(reader.get('2001:db8::1'), null, 'an IPv4 default route does not cover IPv6')
  }
})

test('mmdb writer: an IPv4-only database (ip_version 4)', () => {
  const reader = read(writeMmdb({ databaseType: 'V4', ipVersion: 4, records: [{ network: '203.0.113.0/24', data: 'singapore' }] }))
  assert.is(reader.metadata.ipVersion, 4)
  assert.equal(reader.getWithPrefixLength('203.0.113.9'), ['singapore', 24])
  assert.is(reader.get('203.0.114.9'), null)
})

test('mmdb writer: equal data is stored once', () => {
  const data = { city: 'Frankfurt', padding: 'p'.repeat(1000) }
  const one = writeMmdb({ databaseType: 'Dedup', records: [{ network: '192.0.2.0/24', data }] })
  const many = writeMmdb({ databaseType: 'Dedup', records: Array.from({ length: 20 }, (_, index) => ({ network: `10.${index}.0.0/16`, data: { ...data } })) })
  assert.ok(many.length < one.length + 20 * 200, `20 records with equal data take ${many.length} bytes, one takes ${one.length}`)
})

for (const recordSize of [24, 28, 32] as const) {
  test(`mmdb writer: ${recordSize}-bit records, data beyond 2^24 bytes when the size allows it`, () => {
    const big = new Uint8Array(16_800_000)
    big[big.length - 1] = 7
    const records: MmdbRecord[] = [{ network: '10.0.0.0/8', data: big }, { network: '2001:db8::/32', data: 'after the big one' }]
    if (recordSize === 24) {
      assert.throws(() => writeMmdb({ databaseType: 'Big', recordSize, records }), (error: unknown) => error instanceof MmdbWriteError && /24-bit records cannot address/.test(error.message))
      const small = read(writeMmdb({ databaseType: 'Small', recordSize, records: [{ network: '10.0.0.0/8', data: 'x' }] }))
      assert.is(small.metadata.recordSize, 24)
      assert.is(small.get('10.9.9.9'), 'x')
      return
    }
    const reader = read(writeMmdb({ databaseType: 'Big', recordSize, records }))
    assert.is(reader.metadata.recordSize, recordSize)
    assert.is(reader.get('2001:db8:ffff::1'), 'after the big one', 'a record value above 2^24 decodes (28-bit high nibble)')
    assert.is(reader.get('10.0.0.1').at(-1), 7)
  })
}

const rejects: Array<{ name: string, options: Parameters<typeof writeMmdb>[0], field: RegExp }> = [
  { name: 'malformed network', options: { databaseType: 'T', records: [{ network: '10.0.0.0', data: 'x' }] }, field: /records\[0\]\.network.*missing "\/length"/ },
  { name: 'host bits set', options: { databaseType: 'T', records: [{ network: '10.0.0.1/8', data: 'x' }] }, field: /records\[0\]\.network.*host bits/ },
  { name: 'same network twice', options: { databaseType: 'T', records: [{ network: '10.0.0.0/8', data: 'x' }, { network: '10.0.0.0/8', data: 'y' }] }, field: /records\[1\]\.network.*same network as records\[0\]/ },
  { name: 'same network in two spellings', options: { databaseType: 'T', records: [{ network: '192.0.2.0/24', data: 'x' }, { network: '::c000:200/120', data: 'y' }] }, field: /records\[1\]\.network.*same network/ },
  { name: 'network inside the aliased ::ffff:0:0/96', options: { databaseType: 'T', records: [{ network: '::ffff:c000:200/120', data: 'x' }] }, field: /records\[0\]\.network.*::ffff:0:0\/96/ },
  { name: 'IPv6 network in an IPv4 database', options: { databaseType: 'T', ipVersion: 4, records: [{ network: '2001:db8::/32', data: 'x' }] }, field: /records\[0\]\.network.*IPv4-only/ },
  { name: 'null data', options: { databaseType: 'T', records: [{ network: '10.0.0.0/8', data: { city: null as unknown as MmdbValue } }] }, field: /records\[0\]\.data\.city: null cannot be stored/ },
  { name: 'lone surrogate', options: { databaseType: 'T', records: [{ network: '10.0.0.0/8', data: 'a\ud800' }] }, field: /records\[0\]\.data: .*surrogate/ },
  { name: '__proto__ key', options: { databaseType: 'T', records: [{ network: '10.0.0.0/8', data: JSON.parse('{"__proto__": 1}') }] }, field: /__proto__/ },
  { name: 'uint16 out of range', options: { databaseType: 'T', records: [{ network: '10.0.0.0/8', data: new MmdbTypedNumber('uint16', 65_536) }] }, field: /outside the uint16 range/ },
  { name: 'empty database type', options: { databaseType: '', records: [] }, field: /databaseType/ }
]

for (const { name, options, field } of rejects) {
  test(`mmdb writer: rejects ${name} with an error naming the field`, () => {
    assert.throws(() => writeMmdb(options), (error: unknown) => error instanceof MmdbWriteError && field.test(error.message))
  })
}

test('mmdb writer: an empty database opens and finds nothing', () => {
  const reader = read(writeMmdb({ databaseType: 'Empty', records: [] }))
  assert.is(reader.get('192.0.2.1'), null)
  assert.is(reader.get('2001:db8::1'), null)
})

test('mmdb writer: the same input gives the same bytes', () => {
  const options: MmdbWriteOptions = { databaseType: 'Det', records: [{ network: '192.0.2.0/24', data: { a: 1 } }, { network: '2001:db8::/32', data: { b: 2.5 } }] }
  assert.ok(writeMmdb(options).equals(writeMmdb(options)))
})

// Property: random non-overlapping networks with random data come back from the maxmind Reader
// exactly, at the right prefix length, and addresses outside every network find nothing.

interface Network { bytes: Uint8Array, length: number, family: 4 | 6 }

function mask (bytes: Uint8Array, length: number): Uint8Array {
  const copy = bytes.slice()
  for (let bit = length; bit < copy.length * 8; bit++) copy[bit >> 3]! &= ~(0x80 >> (bit & 7))
  return copy
}

/** The network in the IPv6 tree's address space (IPv4 at ::/96). */
function treeBits (network: Network): { bytes: Uint8Array, length: number } {
  if (network.family === 6) return network
  const bytes = new Uint8Array(16)
  bytes.set(network.bytes, 12)
  return { bytes, length: network.length + 96 }
}

function contains (outer: { bytes: Uint8Array, length: number }, inner: { bytes: Uint8Array, length: number }): boolean {
  if (inner.length < outer.length) return false
  for (let bit = 0; bit < outer.length; bit++) {
    const mask = 0x80 >> (bit & 7)
    if ((outer.bytes[bit >> 3]! & mask) !== (inner.bytes[bit >> 3]! & mask)) return false
  }
  return true
}

const overlaps = (a: Network, b: Network): boolean => contains(treeBits(a), treeBits(b)) || contains(treeBits(b), treeBits(a))
/** ::/80 holds both ::/96 (IPv4) and ::ffff:0:0/96 (the alias); random IPv6 networks stay clear of it. */
const IPV4_AREA: Network = { bytes: new Uint8Array(16), length: 80, family: 6 }

const networkArbitrary: fc.Arbitrary<Network> = fc.oneof(
  fc.tuple(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.integer({ min: 1, max: 32 })).map(([bytes, length]) => ({ bytes: mask(bytes, length), length, family: 4 as const })),
  fc.tuple(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 1, max: 128 })).map(([bytes, length]) => ({ bytes: mask(bytes, length), length, family: 6 as const }))
)

const key = fc.string({ unit: 'grapheme', maxLength: 12 }).filter((text) => text !== '__proto__')
const scalar = fc.oneof(fc.string({ unit: 'grapheme', maxLength: 40 }), fc.integer(), fc.maxSafeInteger(), fc.double(), fc.boolean())
const dataArbitrary = fc.dictionary(key, fc.oneof(scalar, fc.array(scalar, { maxLength: 4 }), fc.dictionary(key, scalar, { maxKeys: 4 })), { maxKeys: 6 })

const text = (network: Network): string => `${formatAddress(network.bytes)}/${network.length}`

/** An address inside `network`, with host bits from `noise`. */
function inside (network: Network, noise: Uint8Array): Uint8Array {
  const address = network.bytes.slice()
  for (let bit = network.length; bit < address.length * 8; bit++) {
    if ((noise[bit >> 3]! & (0x80 >> (bit & 7))) !== 0) address[bit >> 3]! |= 0x80 >> (bit & 7)
  }
  return address
}

test('mmdb writer: property — random non-overlapping networks and data round-trip through the maxmind Reader', () => {
  fc.assert(fc.property(
    fc.array(fc.tuple(networkArbitrary, dataArbitrary), { minLength: 1, maxLength: 40 }),
    fc.array(fc.uint8Array({ minLength: 16, maxLength: 16 }), { minLength: 1, maxLength: 10 }),
    fc.constantFrom<24 | 28 | 32 | undefined>(undefined, 28, 32),
    (entries, probes, recordSize) => {
      const kept: Array<{ network: Network, data: Record<string, MmdbValue> }> = []
      for (const [network, data] of entries) {
        if (network.family === 6 && overlaps(network, IPV4_AREA)) continue
        if (kept.some((other) => overlaps(other.network, network))) continue
        // fast-check builds null-prototype objects; the reader returns ordinary ones.
        kept.push({ network, data: structuredClone(data) })
      }
      const reader = read(writeMmdb({ databaseType: 'Property', recordSize, records: kept.map(({ network, data }) => ({ network: text(network), data })) }))
      kept.forEach(({ network, data }, index) => {
        const address = formatAddress(inside(network, probes[index % probes.length]!))
        assert.equal(reader.getWithPrefixLength(address), [data, network.length], `${address} in ${text(network)}`)
        if (network.family === 4) assert.equal(reader.get(`::ffff:${address}`), data, `::ffff:${address} (mapped)`)
      })
      for (const probe of probes) {
        for (const family of [4, 6] as const) {
          const address: Network = { bytes: family === 4 ? probe.subarray(0, 4) : probe, length: family === 4 ? 32 : 128, family }
          if (family === 6 && overlaps(address, IPV4_AREA)) continue
          const owner = kept.find(({ network }) => overlaps(network, address))
          assert.equal(reader.get(formatAddress(address.bytes)), owner === undefined ? null : owner.data)
        }
      }
    }
  ), { numRuns: 150 })
})

test.run()
