import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fc from 'fast-check'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { GeoIpError, geoIpFromBuffer, locationFromRecord, openGeoIp, type GeoIp, type GeoIpLocation } from '../../src/runtime/geoip.ts'
import { createMemoryLogger } from '../../src/runtime/logger.ts'
import { writeMmdb } from '../../src/runtime/mmdb-writer.ts'
import { FIXTURE_CITIES, FIXTURE_NETWORKS, OUTSIDE_ADDRESSES, geoIp2CityMmdb, writeGeoFixtures, type FixtureCity, type GeoFixtureFiles } from '../support/geo-fixtures.ts'

let files: GeoFixtureFiles
test.before(async () => { files = await writeGeoFixtures() })
test.after(async () => { await files.cleanup() })

const isGeoIpError = (path: string, reason: RegExp) => (error: unknown): boolean =>
  error instanceof GeoIpError && error.name === 'GeoIpError' && error.path === path && error.message.includes(path) && reason.test(error.reason)

async function rejectsWith (promise: Promise<unknown>, path: string, reason: RegExp): Promise<void> {
  try {
    await promise
  } catch (error) {
    assert.ok(isGeoIpError(path, reason)(error), `expected GeoIpError for ${path} matching ${reason}, got ${String(error)}`)
    return
  }
  assert.unreachable(`expected GeoIpError for ${path}`)
}

/** Float coordinates (the flat fixture) are within 1e-5 degrees of the city's. */
function assertLocation (actual: GeoIpLocation | undefined, city: FixtureCity, subdivision: string, where: string): void {
  assert.ok(actual !== undefined, `${where}: a location`)
  assert.ok(Math.abs(actual.lat - city.lat) < 1e-5 && Math.abs(actual.lon - city.lon) < 1e-5, `${where}: (${actual.lat}, ${actual.lon}) is ${city.name}`)
  assert.is(actual.country, city.country, `${where}: country`)
  assert.is(actual.subdivision, subdivision, `${where}: subdivision`)
  assert.is(actual.city, city.name, `${where}: city`)
}

const schemas = [
  { schema: 'GeoIP2-City', path: () => files.geoIp2Path, subdivision: (city: FixtureCity) => city.subdivisionCode },
  { schema: 'flat ip-location-db', path: () => files.flatPath, subdivision: (city: FixtureCity) => city.subdivisionName }
]

for (const { schema, path, subdivision } of schemas) {
  test(`geoip: ${schema} schema resolves every fixture range, IPv4 also as IPv4-mapped IPv6`, async () => {
    const geoIp = await openGeoIp(path())
    assert.ok(geoIp.available)
    for (const { network, probe, city } of FIXTURE_NETWORKS) {
      assertLocation(geoIp.lookup(probe), FIXTURE_CITIES[city], subdivision(FIXTURE_CITIES[city]), `${probe} in ${network}`)
      if (!probe.includes(':')) {
        assertLocation(geoIp.lookup(`::ffff:${probe}`), FIXTURE_CITIES[city], subdivision(FIXTURE_CITIES[city]), `::ffff:${probe}`)
        assertLocation(geoIp.lookup(`0:0:0:0:0:FFFF:${probe}`), FIXTURE_CITIES[city], subdivision(FIXTURE_CITIES[city]), 'long mapped spelling')
      }
    }
  })

  test(`geoip: ${schema} schema — addresses outside every range, and non-addresses, answer undefined`, async () => {
    const geoIp = await openGeoIp(path())
    for (const address of OUTSIDE_ADDRESSES) assert.is(geoIp.lookup(address), undefined, address)
    for (const junk of ['', 'localhost', '192.0.2.256', '192.0.2', '1.2.3.4.5', '192.0.2.01', '2001:db8:1::1/48', 'fe80::1%eth0', `${'1'.repeat(100)}`, ' 192.0.2.1']) {
      assert.is(geoIp.lookup(junk), undefined, JSON.stringify(junk))
    }
    assert.is(geoIp.lookupErrors, 0)
  })
}

test('geoip: the mapped alias is not needed — ::ffff:a.b.c.d is looked up as IPv4 even in a database without it', () => {
  const buffer = writeMmdb({ databaseType: 'NoAlias', aliasIpv4Mapped: false, records: [{ network: '192.0.2.0/24', data: { latitude: 1, longitude: 2 } }] })
  const geoIp = geoIpFromBuffer(buffer, 'memory:no-alias')
  assert.equal(geoIp.lookup('::ffff:192.0.2.9'), { lat: 1, lon: 2 })
})

test('geoip: an IPv4-only database answers IPv4 and IPv4-mapped, and undefined for IPv6', async () => {
  const geoIp = await openGeoIp(files.flatIpv4Path)
  assertLocation(geoIp.lookup('203.0.113.5'), FIXTURE_CITIES.singapore, FIXTURE_CITIES.singapore.subdivisionName, 'IPv4')
  assertLocation(geoIp.lookup('::ffff:203.0.113.5'), FIXTURE_CITIES.singapore, FIXTURE_CITIES.singapore.subdivisionName, 'mapped')
  assert.is(geoIp.lookup('2001:db8:1::1'), undefined)
  assert.is(geoIp.lookup('::cb00:7105'), undefined, 'an IPv6 address, not IPv4, even though its low bits spell 203.0.113.5')
})

test('geoip: databaseType comes from the metadata', async () => {
  assert.is((await openGeoIp(files.geoIp2Path)).databaseType, 'GeoIP2-City')
  assert.is((await openGeoIp(files.flatPath)).databaseType, 'ip-location-db-city')
})

test('geoip: a missing file is a GeoIpError naming the file; with onMissing warn, a logged warning and no locations', async () => {
  const missing = join(files.dir, 'no-such.mmdb')
  await rejectsWith(openGeoIp(missing), missing, /^file not found$/)
  await rejectsWith(openGeoIp(missing, { onMissing: 'error' }), missing, /^file not found$/)
  const logger = createMemoryLogger()
  const geoIp = await openGeoIp(missing, { onMissing: 'warn', logger })
  assert.is(geoIp.available, false)
  assert.is(geoIp.lookup('192.0.2.1'), undefined)
  assert.equal(logger.records.map((record) => [record.level, record.fields.path]), [['warn', missing]])
})

test('geoip: onMissing warn does not excuse a corrupt file', async () => {
  const path = await files.writeFile('junk-warn.mmdb', Buffer.from('definitely not a database'))
  await rejectsWith(openGeoIp(path, { onMissing: 'warn' }), path, /metadata marker/)
})

test('geoip: a directory, an empty file, an oversized file are GeoIpErrors', async () => {
  await rejectsWith(openGeoIp(files.dir), files.dir, /not a regular file/)
  const empty = await files.writeFile('empty.mmdb', new Uint8Array(0))
  await rejectsWith(openGeoIp(empty), empty, /empty/)
  await rejectsWith(openGeoIp(files.geoIp2Path, { maxBytes: 100 }), files.geoIp2Path, /more than the 100-byte limit/)
})

test('geoip: random bytes are a GeoIpError, never a crash', async () => {
  const path = await files.writeFile('random.mmdb', Buffer.from(Array.from({ length: 4096 }, (_, index) => (index * 7919 + 13) % 251)))
  await rejectsWith(openGeoIp(path), path, /metadata marker/)
  fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 2048 }), (bytes) => {
    assert.throws(() => geoIpFromBuffer(Buffer.from(bytes), 'memory:random'), isGeoIpError('memory:random', /./))
  }))
})

test('geoip: a truncated valid file is a GeoIpError', async () => {
  const whole = await readFile(files.geoIp2Path)
  for (const keep of [0.5, 0.9, 0.99]) {
    const path = await files.writeFile(`truncated-${keep}.mmdb`, whole.subarray(0, Math.floor(whole.length * keep)))
    await rejectsWith(openGeoIp(path), path, /metadata marker|truncated|corrupt/)
  }
})

test('geoip: cut at every length, a valid file is a GeoIpError or still answers correctly — never a crash', () => {
  const whole = geoIp2CityMmdb()
  let opened = 0
  for (let length = 0; length < whole.length; length++) {
    let geoIp: GeoIp
    try {
      geoIp = geoIpFromBuffer(whole.subarray(0, length), 'memory:cut')
    } catch (error) {
      assert.ok(isGeoIpError('memory:cut', /./)(error), `cut at ${length}: ${String(error)}`)
      continue
    }
    opened++
    for (const { probe } of FIXTURE_NETWORKS) geoIp.lookup(probe)
  }
  assert.is(opened, 0, 'no prefix of the file opens (the metadata ends with record_size, which a cut breaks)')
})

test('geoip: corrupt metadata is a GeoIpError saying what is wrong', () => {
  const whole = geoIp2CityMmdb()
  const marker = whole.lastIndexOf(Buffer.from('\xab\xcd\xefMaxMind.com', 'latin1'))
  /** Replace the encoded value of a small unsigned integer in the metadata map (control byte + payload). */
  const replaceUint = (key: string, controlType: number, value: number): Buffer => {
    const at = whole.indexOf(key, marker, 'latin1') + key.length
    const oldLength = 1 + (whole[at]! & 0x1f)
    const payload: number[] = []
    for (let rest = value; rest > 0; rest = Math.floor(rest / 256)) payload.unshift(rest % 256)
    return Buffer.concat([whole.subarray(0, at), Buffer.from([(controlType << 5) | payload.length, ...payload]), whole.subarray(at + oldLength)])
  }
  const UINT16 = 5
  const UINT32 = 6
  const nodeCountAt = whole.indexOf('node_count', marker, 'latin1') + 'node_count'.length
  const nodeCount = whole.readUIntBE(nodeCountAt + 1, whole[nodeCountAt]! & 0x1f)
  const cases: Array<{ name: string, bytes: Buffer, reason: RegExp }> = [
    { name: 'record_size 20', bytes: replaceUint('record_size', UINT16, 20), reason: /Unsupported record size/ },
    { name: 'ip_version 5', bytes: replaceUint('ip_version', UINT16, 5), reason: /ip_version 5 is not 4 or 6/ },
    { name: 'major version 3', bytes: replaceUint('binary_format_major_version', UINT16, 3), reason: /major version 3 is not 2/ },
    { name: 'node_count 0', bytes: replaceUint('node_count', UINT32, 0), reason: /node_count 0 is not a positive integer/ },
    { name: 'node_count far too large', bytes: replaceUint('node_count', UINT32, 10_000_000), reason: /does not fit before the metadata/ },
    { name: 'node_count one too small (no separator where the tree should end)', bytes: replaceUint('node_count', UINT32, nodeCount - 1), reason: /separator/ },
    { name: 'node_count one too large', bytes: replaceUint('node_count', UINT32, nodeCount + 1), reason: /separator|corrupt/ },
    { name: 'metadata of an unknown type', bytes: (() => { const copy = Buffer.from(whole); copy[marker + 14] = 0x00; copy[marker + 15] = 0x20; return copy })(), reason: /corrupt metadata/ }
  ]
  for (const { name, bytes, reason } of cases) {
    assert.throws(() => geoIpFromBuffer(bytes, `memory:${name}`), isGeoIpError(`memory:${name}`, reason), name)
  }
})

const addressArbitrary = fc.oneof(
  fc.ipV4(),
  fc.ipV6(),
  fc.ipV4().map((ip) => `::ffff:${ip}`),
  fc.ipV4Extended(),
  fc.string({ maxLength: 80 }),
  fc.constantFrom(...FIXTURE_NETWORKS.map(({ probe }) => probe))
)

test('geoip: fuzz — lookup never throws and answers undefined or a valid location, both schemas', async () => {
  for (const path of [files.geoIp2Path, files.flatPath, files.flatIpv4Path]) {
    const geoIp = await openGeoIp(path)
    fc.assert(fc.property(addressArbitrary, (address) => {
      const location = geoIp.lookup(address)
      return location === undefined || (Math.abs(location.lat) <= 90 && Math.abs(location.lon) <= 180 && typeof location.country === 'string')
    }), { numRuns: 500 })
  }
})

test('geoip: fuzz — bytes flipped inside a valid file: a GeoIpError at open, or lookups that never throw', () => {
  const whole = geoIp2CityMmdb()
  fc.assert(fc.property(
    fc.array(fc.tuple(fc.nat({ max: whole.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
    fc.array(addressArbitrary, { minLength: 1, maxLength: 8 }),
    (flips, addresses) => {
      const bytes = Buffer.from(whole)
      for (const [at, value] of flips) bytes[at] = value
      let geoIp: GeoIp
      try {
        geoIp = geoIpFromBuffer(bytes, 'memory:flipped')
      } catch (error) {
        return isGeoIpError('memory:flipped', /./)(error)
      }
      for (const address of addresses) geoIp.lookup(address)
      return true
    }
  ), { numRuns: 300 })
})

test('geoip: a record the decoder cannot read answers undefined, is counted and logged once', () => {
  const buffer = writeMmdb({ databaseType: 'Bad', records: [{ network: '192.0.2.0/24', data: { latitude: 1, longitude: 2 } }, { network: '198.51.100.0/24', data: 'x' }] })
  // The first data item starts right after the tree and the 16-byte separator: make its type unknown.
  const corrupt = Buffer.from(buffer)
  const dataStart = findDataStart(corrupt)
  corrupt[dataStart] = 0x00
  corrupt[dataStart + 1] = 0xf0
  const logger = createMemoryLogger()
  const geoIp = geoIpFromBuffer(corrupt, 'memory:bad-record', { logger })
  assert.is(geoIp.lookup('192.0.2.1'), undefined)
  assert.is(geoIp.lookup('192.0.2.2'), undefined)
  assert.is(geoIp.lookupErrors, 2)
  assert.is(logger.records.length, 1)
  assert.is(logger.records[0]!.level, 'warn')
})

/** Data section start of a writeMmdb file, from node_count and record_size in its metadata. */
function findDataStart (buffer: Buffer): number {
  const marker = buffer.lastIndexOf(Buffer.from('\xab\xcd\xefMaxMind.com', 'latin1'))
  const nodeCountAt = buffer.indexOf('node_count', marker, 'latin1') + 'node_count'.length
  const recordSizeAt = buffer.indexOf('record_size', marker, 'latin1') + 'record_size'.length
  const nodeCount = buffer.readUIntBE(nodeCountAt + 1, buffer[nodeCountAt]! & 0x1f)
  const recordSize = buffer[recordSizeAt + 1]!
  return nodeCount * recordSize / 4 + 16
}

// Record parsing, both schemas, table-driven.
const records: Array<{ name: string, record: unknown, location: GeoIpLocation | undefined }> = [
  { name: 'GeoIP2 city', record: { location: { latitude: 1.5, longitude: -2 }, country: { iso_code: 'de' }, subdivisions: [{ iso_code: 'HE' }, { iso_code: 'X' }], city: { names: { de: 'Köln', en: 'Cologne' } } }, location: { lat: 1.5, lon: -2, country: 'DE', subdivision: 'HE', city: 'Cologne' } },
  { name: 'GeoIP2 city name in another language only', record: { location: { latitude: 1, longitude: 2 }, city: { names: { de: 'Köln' } } }, location: { lat: 1, lon: 2, city: 'Köln' } },
  { name: 'GeoIP2 without location (a country-only record)', record: { country: { iso_code: 'DE' } }, location: undefined },
  { name: 'GeoIP2 location without longitude', record: { location: { latitude: 1 } }, location: undefined },
  { name: 'flat', record: { latitude: -33.8688, longitude: 151.2093, country_code: 'AU', state1: 'New South Wales', city: 'Sydney' }, location: { lat: -33.8688, lon: 151.2093, country: 'AU', subdivision: 'New South Wales', city: 'Sydney' } },
  { name: 'flat with coordinates as text', record: { latitude: '50.1109', longitude: '8.6821', country_code: 'DE' }, location: { lat: 50.1109, lon: 8.6821, country: 'DE' } },
  { name: 'flat with empty strings dropped', record: { latitude: 0, longitude: 0, country_code: '', state1: ' ', city: '' }, location: { lat: 0, lon: 0 } },
  { name: 'latitude out of range', record: { latitude: 91, longitude: 0 }, location: undefined },
  { name: 'longitude NaN', record: { latitude: 0, longitude: Number.NaN }, location: undefined },
  { name: 'coordinates of the wrong type', record: { latitude: true, longitude: [1] }, location: undefined },
  { name: 'country-only flat record', record: { country_code: 'US' }, location: undefined },
  { name: 'a string record', record: 'Frankfurt', location: undefined },
  { name: 'null', record: null, location: undefined },
  { name: 'an array', record: [1, 2], location: undefined },
  { name: 'absurdly long names are dropped', record: { latitude: 1, longitude: 1, city: 'x'.repeat(500) }, location: { lat: 1, lon: 1 } }
]

for (const { name, record, location } of records) {
  test(`geoip: locationFromRecord — ${name}`, () => {
    assert.equal(locationFromRecord(record), location)
  })
}

test.run()
