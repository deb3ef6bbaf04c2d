// Node configuration: parsed at the edge into typed values. Any problem is a ConfigError naming
// the file, the field and the reason; the CLI prints its one line and exits with code 2.
import { readFileSync } from 'node:fs'
import { defaultPeerSessionConfig, type PeerSessionConfig } from '../actors/peer-session.ts'
import { LOG_LEVELS, type LogLevel } from './logger.ts'
import { RELAY_DEFAULT_DATA_LIMIT_BYTES, RELAY_DEFAULT_DURATION_LIMIT_MS, type RelayOptions } from './relay-options.ts'
import { formatAddress, parseAddress, parsePrefix } from '../protocols/cidr.ts'
import { DEFAULT_DNS_PORT, DEFAULT_TTL_S, DEFAULT_ZONE } from '../protocols/dns-answer.ts'
import { DEFAULT_MAX_ORIGINS } from '../protocols/nearest.ts'
import { DISTANCE_STRATEGIES, type DistanceStrategy } from '../protocols/geo.ts'
import { DEFAULT_ANYCAST_CIDR, DEFAULT_OVERLAY_CIDR, IpamConfigError, parseIpamConfig } from '../protocols/ipam.ts'
import { defaultDirectFallbackPolicy, type DirectFallbackPolicy } from '../protocols/direct-fallback.ts'
import { defaultOriginStandbyPolicy, type OriginStandbyPolicy } from '../protocols/probe-tiers.ts'
import { isLoopbackHost, MAX_INSPECT_TOKEN_LENGTH, MIN_INSPECT_TOKEN_LENGTH, tokenProblem } from './inspect-token.ts'
import { ConfigError, FieldReader, describe, join } from './field-reader.ts'

export { ConfigError }

export interface NodeLocation { lat: number, lon: number, region?: string, city?: string }

export type ServiceCheck =
  | { kind: 'tcp', host: string, port: number }
  | { kind: 'http', url: string, expectStatus?: number }

/** A service this node serves: it announces `prefix` while `check` passes. */
export interface ServiceConfig {
  name: string
  /** Anycast prefix (CIDR) the service is reached at. */
  prefix: string
  check: ServiceCheck
  /** 0..1000, higher preferred before cost; default 100. */
  preference: number
}

export interface ProbePolicyConfig {
  intervalMs: number
  timeoutMs: number
  rise: number
  fall: number
}

export const defaultProbePolicy: ProbePolicyConfig = { intervalMs: 500, timeoutMs: 400, rise: 3, fall: 3 }

/**
 * GeoIP policy: 'required' (default) makes a missing or corrupt database a start-up error;
 * 'optional' logs a loud warning and answers without geography; 'off' loads nothing.
 */
export type GeoIpMode = 'required' | 'optional' | 'off'
export const GEOIP_MODES: readonly GeoIpMode[] = ['required', 'optional', 'off']

/** The node's authoritative GeoDNS server (`dns` section; absent: no DNS server). */
export interface DnsConfig {
  enabled: boolean
  /** Canonical zone apex: lower case, no trailing dot; default "anycast.form". */
  zone: string
  host: string
  host6?: string
  /** Default 5353; 0 picks a free port. */
  port: number
  /** TTL of answers; default 30 s. */
  ttlS: number
  /** TTL while a failover is in progress (a health change of the service within failoverWindowS); default 5 s. */
  failoverTtlS: number
  failoverWindowS: number
  /** Most A/AAAA records per answer; default 3. */
  maxAnswers: number
  /** The address DNS answers give for this node; default the first specific address in `listen`. */
  address?: string
  /** Split horizon: clients inside these prefixes are overlay clients. */
  overlayPrefixes: string[]
  strategy: DistanceStrategy
  geoip: { paths?: string[], mode: GeoIpMode }
  /** Addresses per service answered while nothing is known about it (cold start). */
  fallback: Record<string, string[]>
}

export const DEFAULT_FAILOVER_TTL_S = 5
export const DEFAULT_FAILOVER_WINDOW_S = 30

/** Replicated state, IPAM and leases (`state` section; on by default). */
export interface StateConfig {
  enabled: boolean
  /** The overlay's address space; default 10.42.0.0/16. */
  overlayCidr: string
  /** The pool service anycast addresses come from, inside the overlay; default 10.42.255.0/24. */
  anycastCidr: string
  leaseMs: number
  antiEntropyIntervalMs: number
}

export const defaultStateConfig: StateConfig = {
  enabled: true,
  overlayCidr: DEFAULT_OVERLAY_CIDR,
  anycastCidr: DEFAULT_ANYCAST_CIDR,
  leaseMs: 60_000,
  antiEntropyIntervalMs: 5_000
}

/** The packet path (`dataplane` section; default kind "none": DNS steering only). */
export interface DataplaneConfig {
  kind: 'none' | 'memory' | 'wireguard'
  /** WireGuard interface name; default "fa0". */
  interface: string
  /** WireGuard UDP port; default 51820 (formnet's). */
  listenPort: number
  /** host:port other nodes send to; default the DNS address or first specific listen address, with listenPort. */
  endpoint?: string
  reconcileIntervalMs: number
  /** Masquerade traffic leaving through the interface (an ingress or relay node); default false. */
  masquerade: boolean
}

/** An L4 TCP proxy on this node for one service (`proxies` section): forwards to the best origin. */
export interface ProxyConfig {
  /** The service connections go to (the default one when `names` routes by host name). */
  service: string
  /** TLS server_name / HTTP Host → service. */
  names?: Record<string, string>
  host: string
  port: number
  /** The service's port on every origin (reached at its overlay address). */
  targetPort: number
  connectTimeoutMs: number
  maxAttempts: number
  maxConnectionsPerOrigin?: number
}

export const DATAPLANE_KINDS = ['none', 'memory', 'wireguard'] as const
export const defaultDataplaneConfig: DataplaneConfig = { kind: 'none', interface: 'fa0', listenPort: 51820, reconcileIntervalMs: 5_000, masquerade: false }

export interface StatusApiConfig {
  host: string
  port: number
  /** Bearer token for /v1/inspect; required (or inspectTokenFile) when host is not loopback. */
  inspectToken?: string
  /** A file holding that token, read at start-up. */
  inspectTokenFile?: string
}

export interface NodeConfig {
  /** Human name of this node, e.g. "fra". */
  name: string
  networkId: string
  /** Holds node.key and persistent state. */
  dataDir: string
  listen: string[]
  /** Multiaddrs with /p2p/<peer id> of nodes to join through. */
  bootstrap: string[]
  statusApi: StatusApiConfig
  location?: NodeLocation
  session: PeerSessionConfig
  services: ServiceConfig[]
  probe: ProbePolicyConfig
  /** Run a tiny HTTP service on this port whose /health the `api` check can use (demo networks). */
  demoServicePort?: number
  logLevel: LogLevel
  /** Write the inspection trace (JSONL) of this node's actors here. */
  traceFile?: string
  /** The network's pre-shared key file (network-key.ts); without one the network is open to anyone who can connect. */
  networkKeyFile?: string
  dns?: DnsConfig
  state: StateConfig
  dataplane: DataplaneConfig
  proxies: ProxyConfig[]
  /** libp2p NAT traversal: circuit relay v2 client/server, AutoNAT, DCUtR (`relay` section; off by default). */
  relay: RelayOptions
  /** Formation's relay rule for origins (`directFallback`): failures in a window, then relayed for a hold-down. */
  directFallback: DirectFallbackPolicy
  /** Origins probed at the slower standby period (`originStandby`; src/protocols/probe-tiers.ts). */
  originStandby: OriginStandbyPolicy
}

/** A tiny schema walker: each reader takes the raw value and its dotted path. */
const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/
const NAME_HINT = 'lowercase letters, digits and dashes (at most 63)'
const MULTIADDR = /^\/(ip4|ip6|dns4|dns6|dns|memory)\//

function parseLocation (fields: FieldReader, value: unknown, field: string): NodeLocation {
  const raw = fields.object(value, field, ['lat', 'lon', 'region', 'city'])
  const location: NodeLocation = {
    lat: fields.number(raw.lat, join(field, 'lat'), -90, 90, false),
    lon: fields.number(raw.lon, join(field, 'lon'), -180, 180, false)
  }
  if (raw.region !== undefined) location.region = fields.string(raw.region, join(field, 'region'), { maxLength: 64 })
  if (raw.city !== undefined) location.city = fields.string(raw.city, join(field, 'city'), { maxLength: 128 })
  return location
}

function parseSession (fields: FieldReader, value: unknown, field: string): PeerSessionConfig {
  const session = { ...defaultPeerSessionConfig, backoff: { ...defaultPeerSessionConfig.backoff } }
  if (value === undefined) return session
  const raw = fields.object(value, field, ['holdTimeMs', 'minHoldTimeMs', 'openTimeoutMs', 'backoff'])
  if (raw.holdTimeMs !== undefined) session.holdTimeMs = fields.number(raw.holdTimeMs, join(field, 'holdTimeMs'), 300, 3_600_000)
  if (raw.minHoldTimeMs !== undefined) session.minHoldTimeMs = fields.number(raw.minHoldTimeMs, join(field, 'minHoldTimeMs'), 300, 3_600_000)
  if (raw.openTimeoutMs !== undefined) session.openTimeoutMs = fields.number(raw.openTimeoutMs, join(field, 'openTimeoutMs'), 100, 600_000)
  if (raw.backoff !== undefined) {
    const path = join(field, 'backoff')
    const backoff = fields.object(raw.backoff, path, ['minMs', 'maxMs', 'jitter'])
    if (backoff.minMs !== undefined) session.backoff.minMs = fields.number(backoff.minMs, join(path, 'minMs'), 1, 3_600_000)
    if (backoff.maxMs !== undefined) session.backoff.maxMs = fields.number(backoff.maxMs, join(path, 'maxMs'), 1, 3_600_000)
    if (backoff.jitter !== undefined) session.backoff.jitter = fields.number(backoff.jitter, join(path, 'jitter'), 0, 1, false)
    if (session.backoff.maxMs < session.backoff.minMs) fields.fail(join(path, 'maxMs'), `must be at least minMs (${session.backoff.minMs})`)
  }
  if (session.holdTimeMs < session.minHoldTimeMs) fields.fail(join(field, 'holdTimeMs'), `must be at least minHoldTimeMs (${session.minHoldTimeMs})`)
  return session
}

const SERVICE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/
const IPV4_CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/

function parseCheck (fields: FieldReader, value: unknown, field: string): ServiceCheck {
  const raw = fields.object(value, field, ['kind', 'host', 'port', 'url', 'expectStatus'])
  const kind = fields.string(raw.kind, join(field, 'kind'))
  if (kind === 'tcp') {
    return { kind, host: fields.string(raw.host, join(field, 'host'), { maxLength: 255 }), port: fields.number(raw.port, join(field, 'port'), 1, 65535) }
  }
  if (kind === 'http') {
    const url = fields.string(raw.url, join(field, 'url'), { maxLength: 2048, pattern: /^https?:\/\//, patternHint: 'an http:// or https:// URL' })
    const check: ServiceCheck = { kind, url }
    if (raw.expectStatus !== undefined) check.expectStatus = fields.number(raw.expectStatus, join(field, 'expectStatus'), 100, 599)
    return check
  }
  return fields.fail(join(field, 'kind'), `must be "tcp" or "http", got ${JSON.stringify(kind)}`)
}

function parseServices (fields: FieldReader, value: unknown): ServiceConfig[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) fields.fail('services', `must be an array, got ${describe(value)}`)
  if (value.length > 64) fields.fail('services', 'more than 64 entries')
  const names = new Set<string>()
  return value.map((item, index) => {
    const field = `services[${index}]`
    const raw = fields.object(item, field, ['name', 'prefix', 'check', 'preference'])
    const name = fields.string(raw.name, join(field, 'name'), { pattern: SERVICE_NAME, patternHint: NAME_HINT })
    if (names.has(name)) fields.fail(join(field, 'name'), `duplicate service ${JSON.stringify(name)}`)
    names.add(name)
    const prefix = fields.string(raw.prefix, join(field, 'prefix'), { pattern: IPV4_CIDR, patternHint: 'an IPv4 CIDR such as 10.42.255.1/32' })
    const match = IPV4_CIDR.exec(prefix)!
    if (match.slice(1, 5).some((octet) => Number(octet) > 255) || Number(match[5]) > 32) fields.fail(join(field, 'prefix'), `not a valid IPv4 CIDR: ${JSON.stringify(prefix)}`)
    if (raw.check === undefined) fields.fail(join(field, 'check'), 'is required')
    return {
      name,
      prefix,
      check: parseCheck(fields, raw.check, join(field, 'check')),
      preference: raw.preference === undefined ? 100 : fields.number(raw.preference, join(field, 'preference'), 0, 1000)
    }
  })
}

function parseProbePolicy (fields: FieldReader, value: unknown): ProbePolicyConfig {
  const policy = { ...defaultProbePolicy }
  if (value === undefined) return policy
  const raw = fields.object(value, 'probe', ['intervalMs', 'timeoutMs', 'rise', 'fall'])
  if (raw.intervalMs !== undefined) policy.intervalMs = fields.number(raw.intervalMs, 'probe.intervalMs', 50, 600_000)
  if (raw.timeoutMs !== undefined) policy.timeoutMs = fields.number(raw.timeoutMs, 'probe.timeoutMs', 10, 600_000)
  if (raw.rise !== undefined) policy.rise = fields.number(raw.rise, 'probe.rise', 1, 100)
  if (raw.fall !== undefined) policy.fall = fields.number(raw.fall, 'probe.fall', 1, 100)
  if (policy.timeoutMs > policy.intervalMs) fields.fail('probe.timeoutMs', `must not exceed probe.intervalMs (${policy.intervalMs})`)
  return policy
}

// ---- dns -------------------------------------------------------------------------------------

/** RFC 1035 §2.3.1 host names (letters, digits, inner dashes), at most 253 characters. */
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/

function parseZone (fields: FieldReader, value: unknown, field: string): string {
  const text = fields.string(value, field, { maxLength: 254 }).toLowerCase().replace(/\.$/, '')
  const labels = text.split('.')
  if (text.length > 253 || labels.length < 1 || !labels.every((label) => DNS_LABEL.test(label))) {
    fields.fail(field, `must be a domain name such as "anycast.form" (letters, digits, dashes; labels of 1..63), got ${JSON.stringify(value)}`)
  }
  return text
}

function parseIp (fields: FieldReader, value: unknown, field: string): string {
  const text = fields.string(value, field, { maxLength: 64 })
  try { return formatAddress(parseAddress(text).bytes) } catch { return fields.fail(field, `must be an IPv4 or IPv6 address, got ${JSON.stringify(text)}`) }
}

function parseGeoIp (fields: FieldReader, value: unknown, field: string): DnsConfig['geoip'] {
  if (value === undefined) return { mode: 'required' }
  const raw = fields.object(value, field, ['path', 'mode'])
  const geoip: DnsConfig['geoip'] = { mode: 'required' }
  if (raw.mode !== undefined) {
    const mode = fields.string(raw.mode, join(field, 'mode'))
    if (!(GEOIP_MODES as readonly string[]).includes(mode)) fields.fail(join(field, 'mode'), `must be one of ${GEOIP_MODES.join(', ')}, got ${JSON.stringify(mode)}`)
    geoip.mode = mode as GeoIpMode
  }
  if (raw.path !== undefined) geoip.paths = typeof raw.path === 'string' ? [fields.string(raw.path, join(field, 'path'))] : fields.strings(raw.path, join(field, 'path'), 8)
  if (geoip.paths?.length === 0) fields.fail(join(field, 'path'), 'must name at least one .mmdb file')
  return geoip
}

function parseFallback (fields: FieldReader, value: unknown, field: string): Record<string, string[]> {
  if (value === undefined) return {}
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fields.fail(field, `must be an object of service name → addresses, got ${describe(value)}`)
  const entries = Object.entries(value as Record<string, unknown>)
  if (entries.length > 64) fields.fail(field, 'more than 64 services')
  return Object.fromEntries(entries.map(([service, addresses]) => {
    const path = join(field, service)
    if (!SERVICE_NAME.test(service)) fields.fail(path, `service name must be ${NAME_HINT}`)
    const list = fields.strings(addresses, path, 32).map((address, index) => parseIp(fields, address, `${path}[${index}]`))
    return [service, list]
  }))
}

const DNS_KEYS = ['enabled', 'zone', 'host', 'host6', 'port', 'ttlS', 'failoverTtlS', 'failoverWindowS', 'maxAnswers', 'address', 'overlayPrefixes', 'strategy', 'geoip', 'fallback'] as const

function parseDns (fields: FieldReader, value: unknown, field: string): DnsConfig {
  const raw = fields.object(value, field, DNS_KEYS)
  const at = (key: string): string => join(field, key)
  const dns: DnsConfig = {
    enabled: true,
    zone: raw.zone === undefined ? DEFAULT_ZONE : parseZone(fields, raw.zone, at('zone')),
    host: raw.host === undefined ? '127.0.0.1' : parseIp(fields, raw.host, at('host')),
    port: raw.port === undefined ? DEFAULT_DNS_PORT : fields.number(raw.port, at('port'), 0, 65535),
    ttlS: raw.ttlS === undefined ? DEFAULT_TTL_S : fields.number(raw.ttlS, at('ttlS'), 1, 86_400),
    failoverTtlS: DEFAULT_FAILOVER_TTL_S,
    failoverWindowS: raw.failoverWindowS === undefined ? DEFAULT_FAILOVER_WINDOW_S : fields.number(raw.failoverWindowS, at('failoverWindowS'), 1, 3600),
    maxAnswers: raw.maxAnswers === undefined ? DEFAULT_MAX_ORIGINS : fields.number(raw.maxAnswers, at('maxAnswers'), 1, 32),
    overlayPrefixes: raw.overlayPrefixes === undefined ? ['10.42.0.0/16'] : fields.strings(raw.overlayPrefixes, at('overlayPrefixes'), 32),
    strategy: 'linear',
    geoip: parseGeoIp(fields, raw.geoip, at('geoip')),
    fallback: parseFallback(fields, raw.fallback, at('fallback'))
  }
  if (raw.enabled !== undefined) {
    if (typeof raw.enabled !== 'boolean') fields.fail(at('enabled'), `must be true or false, got ${describe(raw.enabled)}`)
    dns.enabled = raw.enabled
  }
  if (raw.host6 !== undefined) {
    dns.host6 = parseIp(fields, raw.host6, at('host6'))
    if (!dns.host6.includes(':')) fields.fail(at('host6'), `must be an IPv6 address, got ${JSON.stringify(raw.host6)}`)
  }
  dns.failoverTtlS = Math.min(dns.ttlS, DEFAULT_FAILOVER_TTL_S)
  if (raw.failoverTtlS !== undefined) dns.failoverTtlS = fields.number(raw.failoverTtlS, at('failoverTtlS'), 0, dns.ttlS)
  if (raw.address !== undefined) dns.address = parseIp(fields, raw.address, at('address'))
  dns.overlayPrefixes.forEach((prefix, index) => {
    try { parsePrefix(prefix) } catch (error) { fields.fail(`${at('overlayPrefixes')}[${index}]`, (error as Error).message) }
  })
  if (raw.strategy !== undefined) {
    const strategy = fields.string(raw.strategy, at('strategy'))
    if (!(DISTANCE_STRATEGIES as readonly string[]).includes(strategy)) fields.fail(at('strategy'), `must be one of ${DISTANCE_STRATEGIES.join(', ')}, got ${JSON.stringify(strategy)}`)
    dns.strategy = strategy as DistanceStrategy
  }
  return dns
}

// ---- state -----------------------------------------------------------------------------------

const STATE_KEYS = ['enabled', 'overlayCidr', 'anycastCidr', 'leaseMs', 'antiEntropyIntervalMs'] as const

function parseState (fields: FieldReader, value: unknown, field: string): StateConfig {
  const state = { ...defaultStateConfig }
  if (value === undefined) return state
  const raw = fields.object(value, field, STATE_KEYS)
  const at = (key: string): string => join(field, key)
  if (raw.enabled !== undefined) {
    if (typeof raw.enabled !== 'boolean') fields.fail(at('enabled'), `must be true or false, got ${describe(raw.enabled)}`)
    state.enabled = raw.enabled
  }
  const overlayCidr = raw.overlayCidr === undefined ? undefined : fields.string(raw.overlayCidr, at('overlayCidr'), { maxLength: 64 })
  const anycastCidr = raw.anycastCidr === undefined ? undefined : fields.string(raw.anycastCidr, at('anycastCidr'), { maxLength: 64 })
  // Leases renew at T1 = half the lease (RFC 2131 §4.4.5): below 5 s that is a write every 2.5 s per lease.
  if (raw.leaseMs !== undefined) state.leaseMs = fields.number(raw.leaseMs, at('leaseMs'), 5_000, 86_400_000)
  if (raw.antiEntropyIntervalMs !== undefined) state.antiEntropyIntervalMs = fields.number(raw.antiEntropyIntervalMs, at('antiEntropyIntervalMs'), 100, 3_600_000)
  // Without anycastCidr, a custom overlay gets IPAM's default pool: its last 1/256.
  try {
    const ipam = parseIpamConfig({ ...(overlayCidr === undefined ? {} : { overlayCidr }), ...(anycastCidr === undefined ? {} : { anycastCidr }) })
    state.overlayCidr = ipam.overlay.prefix
    state.anycastCidr = ipam.anycast.prefix
  } catch (error) {
    if (!(error instanceof IpamConfigError)) throw error
    const given = error.field === 'overlayCidr' ? overlayCidr : anycastCidr
    fields.fail(at(error.field), given === undefined || error.reason.includes(given) ? error.reason : `${error.reason}, got ${JSON.stringify(given)}`)
  }
  return state
}

// ---- dataplane -------------------------------------------------------------------------------

/** Linux interface names: at most 15 bytes (IFNAMSIZ - 1), no slash or space. */
const INTERFACE_NAME = /^[a-zA-Z0-9_.-]{1,15}$/
const ENDPOINT = /^(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[[0-9a-fA-F:.]+\]):\d{1,5}$/

function parseDataplane (fields: FieldReader, value: unknown, field: string, listen: readonly string[], stateEnabled: boolean): DataplaneConfig {
  const dataplane = { ...defaultDataplaneConfig }
  if (value === undefined) return dataplane
  const raw = fields.object(value, field, ['kind', 'interface', 'listenPort', 'endpoint', 'reconcileIntervalMs', 'masquerade'])
  const at = (key: string): string => join(field, key)
  if (raw.kind !== undefined) {
    const kind = fields.string(raw.kind, at('kind'))
    if (!(DATAPLANE_KINDS as readonly string[]).includes(kind)) fields.fail(at('kind'), `must be one of ${DATAPLANE_KINDS.join(', ')}, got ${JSON.stringify(kind)}`)
    dataplane.kind = kind as DataplaneConfig['kind']
  }
  if (raw.interface !== undefined) dataplane.interface = fields.string(raw.interface, at('interface'), { pattern: INTERFACE_NAME, patternHint: 'an interface name of 1 to 15 letters, digits, dots, dashes or underscores' })
  if (raw.listenPort !== undefined) dataplane.listenPort = fields.number(raw.listenPort, at('listenPort'), 1, 65535)
  if (raw.masquerade !== undefined) {
    if (typeof raw.masquerade !== 'boolean') fields.fail(at('masquerade'), `must be true or false, got ${describe(raw.masquerade)}`)
    dataplane.masquerade = raw.masquerade
  }
  if (raw.reconcileIntervalMs !== undefined) dataplane.reconcileIntervalMs = fields.number(raw.reconcileIntervalMs, at('reconcileIntervalMs'), 100, 3_600_000)
  if (raw.endpoint !== undefined) dataplane.endpoint = fields.string(raw.endpoint, at('endpoint'), { pattern: ENDPOINT, patternHint: 'an address and port such as 203.0.113.7:51820' })
  else {
    const address = defaultDnsAddress(listen)
    if (address !== undefined) dataplane.endpoint = `${address.includes(':') ? `[${address}]` : address}:${dataplane.listenPort}`
  }
  if (dataplane.kind !== 'none' && !stateEnabled) fields.fail(at('kind'), 'needs the replicated state (state.enabled): peers\' keys and overlay addresses come from it')
  return dataplane
}

function parseProxies (fields: FieldReader, value: unknown, stateEnabled: boolean): ProxyConfig[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) fields.fail('proxies', `must be an array, got ${describe(value)}`)
  if (value.length > 16) fields.fail('proxies', 'more than 16 entries')
  if (value.length > 0 && !stateEnabled) fields.fail('proxies', 'needs the replicated state (state.enabled): origins are reached at their overlay addresses')
  return value.map((item, index) => {
    const field = `proxies[${index}]`
    const raw = fields.object(item, field, ['service', 'names', 'host', 'port', 'targetPort', 'connectTimeoutMs', 'maxAttempts', 'maxConnectionsPerOrigin'])
    const proxy: ProxyConfig = {
      service: fields.string(raw.service, join(field, 'service'), { pattern: SERVICE_NAME, patternHint: NAME_HINT }),
      host: raw.host === undefined ? '127.0.0.1' : parseIp(fields, raw.host, join(field, 'host')),
      port: fields.number(raw.port, join(field, 'port'), 0, 65535),
      targetPort: fields.number(raw.targetPort, join(field, 'targetPort'), 1, 65535),
      connectTimeoutMs: raw.connectTimeoutMs === undefined ? 1000 : fields.number(raw.connectTimeoutMs, join(field, 'connectTimeoutMs'), 10, 60_000),
      maxAttempts: raw.maxAttempts === undefined ? 3 : fields.number(raw.maxAttempts, join(field, 'maxAttempts'), 1, 16)
    }
    if (raw.names !== undefined) {
      if (raw.names === null || typeof raw.names !== 'object' || Array.isArray(raw.names)) fields.fail(join(field, 'names'), `must be an object of host name → service, got ${describe(raw.names)}`)
      const names = raw.names as Record<string, unknown>
      if (Object.keys(names).length > 256) fields.fail(join(field, 'names'), 'more than 256 names')
      proxy.names = Object.fromEntries(Object.entries(names).map(([name, service]) => {
        const path = join(join(field, 'names'), name)
        if (!/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/.test(name)) fields.fail(path, 'must be a lower-case host name')
        return [name, fields.string(service, path, { pattern: SERVICE_NAME, patternHint: NAME_HINT })]
      }))
    }
    if (raw.maxConnectionsPerOrigin !== undefined) proxy.maxConnectionsPerOrigin = fields.number(raw.maxConnectionsPerOrigin, join(field, 'maxConnectionsPerOrigin'), 1, 1_000_000)
    return proxy
  })
}

/** The first listen address that names one interface (not 0.0.0.0 or ::): on formnet, the overlay IP. */
export function defaultDnsAddress (listen: readonly string[]): string | undefined {
  for (const address of listen) {
    const match = /^\/ip[46]\/([^/]+)\//.exec(address)
    if (match === null) continue
    try {
      const text = formatAddress(parseAddress(match[1]!).bytes)
      if (text !== '0.0.0.0' && text !== '::') return text
    } catch { /* not an address; the listen check reports it */ }
  }
  return undefined
}

/** `directFallback`: { failures, windowMs, holdDownMs }, each optional (Formation's 3, 300 s; relayed 300 s). */
function parseDirectFallback (fields: FieldReader, value: unknown): DirectFallbackPolicy {
  const policy = { ...defaultDirectFallbackPolicy }
  if (value === undefined) return policy
  const raw = fields.object(value, 'directFallback', ['failures', 'windowMs', 'holdDownMs'])
  if (raw.failures !== undefined) policy.failures = fields.number(raw.failures, 'directFallback.failures', 1, 100)
  if (raw.windowMs !== undefined) policy.windowMs = fields.number(raw.windowMs, 'directFallback.windowMs', 0, 86_400_000)
  if (raw.holdDownMs !== undefined) policy.holdDownMs = fields.number(raw.holdDownMs, 'directFallback.holdDownMs', 0, 86_400_000)
  return policy
}

/**
 * `originStandby`: { activePerPrefix, intervalMs }, each optional (2 origins per prefix at the full
 * probe rate, the rest every 5 s). The interval is never below the origin probe's own.
 */
function parseOriginStandby (fields: FieldReader, value: unknown): OriginStandbyPolicy {
  const policy = { ...defaultOriginStandbyPolicy }
  if (value === undefined) return policy
  const raw = fields.object(value, 'originStandby', ['activePerPrefix', 'intervalMs'])
  if (raw.activePerPrefix !== undefined) policy.activePerPrefix = fields.number(raw.activePerPrefix, 'originStandby.activePerPrefix', 1, 1000)
  if (raw.intervalMs !== undefined) policy.intervalMs = fields.number(raw.intervalMs, 'originStandby.intervalMs', 50, 600_000)
  return policy
}

const NODE_KEYS = ['name', 'networkId', 'dataDir', 'listen', 'bootstrap', 'statusApi', 'location', 'session', 'services', 'probe', 'demoServicePort', 'logLevel', 'traceFile', 'networkKeyFile', 'dns', 'state', 'dataplane', 'proxies', 'relay', 'directFallback', 'originStandby'] as const

/** Validate a parsed JSON value as a node config. `source` names the file in errors. */
export function parseNodeConfig (value: unknown, source: string): NodeConfig {
  const fields = new FieldReader(source)
  const raw = fields.object(value, '', NODE_KEYS)
  if (raw.name === undefined) fields.fail('name', 'is required')
  if (raw.dataDir === undefined) fields.fail('dataDir', 'is required')
  const config: NodeConfig = {
    name: fields.string(raw.name, 'name', { pattern: NAME, patternHint: NAME_HINT }),
    networkId: raw.networkId === undefined ? 'default' : fields.string(raw.networkId, 'networkId', { pattern: NAME, patternHint: NAME_HINT }),
    dataDir: fields.string(raw.dataDir, 'dataDir'),
    listen: raw.listen === undefined ? ['/ip4/127.0.0.1/tcp/0'] : fields.strings(raw.listen, 'listen', 16),
    bootstrap: raw.bootstrap === undefined ? [] : fields.strings(raw.bootstrap, 'bootstrap', 256),
    statusApi: { host: '127.0.0.1', port: 0 },
    session: parseSession(fields, raw.session, 'session'),
    services: parseServices(fields, raw.services),
    probe: parseProbePolicy(fields, raw.probe),
    logLevel: 'info',
    state: parseState(fields, raw.state, 'state'),
    dataplane: defaultDataplaneConfig,
    proxies: [],
    relay: { client: false, server: false },
    directFallback: parseDirectFallback(fields, raw.directFallback),
    originStandby: parseOriginStandby(fields, raw.originStandby)
  }
  if (raw.demoServicePort !== undefined) config.demoServicePort = fields.number(raw.demoServicePort, 'demoServicePort', 0, 65535)
  config.listen.forEach((address, index) => { if (!MULTIADDR.test(address)) fields.fail(`listen[${index}]`, `must be a multiaddr such as /ip4/127.0.0.1/tcp/0, got ${JSON.stringify(address)}`) })
  config.bootstrap.forEach((address, index) => {
    if (!MULTIADDR.test(address) || !address.includes('/p2p/')) fields.fail(`bootstrap[${index}]`, `must be a multiaddr ending in /p2p/<peer id>, got ${JSON.stringify(address)}`)
  })
  if (raw.statusApi !== undefined) {
    const api = fields.object(raw.statusApi, 'statusApi', ['host', 'port', 'inspectToken', 'inspectTokenFile'])
    if (api.host !== undefined) config.statusApi.host = fields.string(api.host, 'statusApi.host', { maxLength: 255 })
    if (api.port !== undefined) config.statusApi.port = fields.number(api.port, 'statusApi.port', 0, 65535)
    if (api.inspectToken !== undefined) {
      const token = fields.string(api.inspectToken, 'statusApi.inspectToken', { maxLength: MAX_INSPECT_TOKEN_LENGTH })
      const problem = tokenProblem(token)
      if (problem !== undefined) fields.fail('statusApi.inspectToken', problem)
      config.statusApi.inspectToken = token
    }
    if (api.inspectTokenFile !== undefined) {
      if (api.inspectToken !== undefined) fields.fail('statusApi.inspectTokenFile', 'give statusApi.inspectToken or statusApi.inspectTokenFile, not both')
      config.statusApi.inspectTokenFile = fields.string(api.inspectTokenFile, 'statusApi.inspectTokenFile')
    }
  }
  if (!isLoopbackHost(config.statusApi.host) && config.statusApi.inspectToken === undefined && config.statusApi.inspectTokenFile === undefined) {
    fields.fail('statusApi.inspectToken', `is required when statusApi.host (${JSON.stringify(config.statusApi.host)}) is not a loopback address: /v1/inspect shows every actor's state and event; set statusApi.inspectToken or statusApi.inspectTokenFile (at least ${MIN_INSPECT_TOKEN_LENGTH} characters, e.g. from \`openssl rand -hex 16\`)`)
  }
  if (raw.location !== undefined) config.location = parseLocation(fields, raw.location, 'location')
  if (raw.logLevel !== undefined) {
    const level = fields.string(raw.logLevel, 'logLevel')
    if (!(LOG_LEVELS as readonly string[]).includes(level)) fields.fail('logLevel', `must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(level)}`)
    config.logLevel = level as LogLevel
  }
  if (raw.traceFile !== undefined) config.traceFile = fields.string(raw.traceFile, 'traceFile')
  if (raw.networkKeyFile !== undefined) config.networkKeyFile = fields.string(raw.networkKeyFile, 'networkKeyFile')
  if (raw.dns !== undefined) {
    config.dns = parseDns(fields, raw.dns, 'dns')
    config.dns.address ??= defaultDnsAddress(config.listen)
  }
  config.dataplane = parseDataplane(fields, raw.dataplane, 'dataplane', config.listen, config.state.enabled)
  config.proxies = parseProxies(fields, raw.proxies, config.state.enabled)
  if (raw.relay !== undefined) {
    const relay = fields.object(raw.relay, 'relay', ['client', 'server', 'durationLimitMs', 'dataLimitBytes'])
    for (const key of ['client', 'server'] as const) {
      const value = relay[key]
      if (value === undefined) continue
      if (typeof value === 'boolean') config.relay[key] = value
      else fields.fail(`relay.${key}`, `must be true or false, got ${describe(value)}`)
    }
    // A relay may cut relayed connections sooner than libp2p's defaults, never later.
    if (relay.durationLimitMs !== undefined) config.relay.durationLimitMs = fields.number(relay.durationLimitMs, 'relay.durationLimitMs', 1000, RELAY_DEFAULT_DURATION_LIMIT_MS)
    if (relay.dataLimitBytes !== undefined) config.relay.dataLimitBytes = fields.number(relay.dataLimitBytes, 'relay.dataLimitBytes', 1024, RELAY_DEFAULT_DATA_LIMIT_BYTES)
  }
  return config
}

/** Largest config file we read; anything bigger is certainly not a config. */
const MAX_CONFIG_BYTES = 1024 * 1024

export function readJsonFile (path: string, what = 'config'): unknown {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    const reason = code === 'ENOENT' ? `${what} file not found` : code === 'EISDIR' ? 'is a directory, not a file' : `cannot read: ${(error as Error).message}`
    throw new ConfigError(path, '', reason)
  }
  if (text.length > MAX_CONFIG_BYTES) throw new ConfigError(path, '', `larger than ${MAX_CONFIG_BYTES} bytes`)
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new ConfigError(path, '', `not valid JSON: ${(error as Error).message}`)
  }
}

export function loadNodeConfig (path: string): NodeConfig {
  return parseNodeConfig(readJsonFile(path), path)
}
