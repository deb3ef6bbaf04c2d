// The node agent's GeoDNS: the GeoIP database it locates clients with, its own location when the
// config gives none, and the authoritative server over the node's zone (zone-view.ts). Start-up
// problems are ConfigErrors naming the field (exit 2), except where the operator said GeoIP is
// optional: then a loud error-level log line, and answers without geography.
import { ConfigError, type DnsConfig, type NodeLocation } from './config.ts'
import { createDnsServer, DnsServerError, type DnsServer } from './dns-server.ts'
import { DEFAULT_GEOIP_PACKAGE, GeoIpError, defaultGeoIpPaths, openGeoIpFiles, type GeoIp } from './geoip.ts'
import { createNodeZone, zoneSourceFromNode, type NodeZone } from './zone-view.ts'
import type { NodeHost } from './node.ts'
import type { Clock, Logger, Metrics } from './ports.ts'

/** The database GeoDNS uses: undefined when geography is off (by config, or optional and unusable). */
export async function openDnsGeoIp (dns: DnsConfig, configPath: string, logger: Logger): Promise<GeoIp | undefined> {
  const { mode } = dns.geoip
  if (mode === 'off') return undefined
  const paths = dns.geoip.paths ?? defaultGeoIpPaths()
  const unusable = (reason: string): undefined => {
    if (mode === 'required') throw new ConfigError(configPath, 'dns.geoip.path', reason)
    logger.error('GEOIP UNAVAILABLE: GeoDNS answers are NOT ordered by client location (dns.geoip.mode is "optional")', { reason })
    return undefined
  }
  if (paths === undefined) {
    return unusable(`no GeoIP database: the optional package ${DEFAULT_GEOIP_PACKAGE} is not installed; set dns.geoip.path, or dns.geoip.mode "optional" or "off"`)
  }
  try {
    const geoip = await openGeoIpFiles(paths, { logger })
    logger.info('dns.geoip.opened', { path: geoip.path, databaseType: geoip.databaseType })
    return geoip
  } catch (error) {
    if (error instanceof GeoIpError) return unusable(error.message)
    throw error
  }
}

/** The node's place from GeoIP of its DNS address, when the config gives none. */
export function locateNode (geoip: GeoIp | undefined, address: string | undefined): NodeLocation | undefined {
  if (geoip === undefined || address === undefined) return undefined
  const found = geoip.lookup(address)
  if (found === undefined) return undefined
  return { lat: found.lat, lon: found.lon, ...(found.country === undefined ? {} : { region: found.country }), ...(found.city === undefined ? {} : { city: found.city }) }
}

export interface NodeDns {
  server: DnsServer
  zone: NodeZone
  /** "127.0.0.1:5353" */
  readonly endpoint: string
  stop(): Promise<void>
}

export interface StartNodeDnsInit {
  dns: DnsConfig
  configPath: string
  host: NodeHost
  geoip: GeoIp | undefined
  clock: Clock
  logger: Logger
  metrics: Metrics
}

/** Build the zone over the running node and bind the server; a bind failure names dns.port. */
export async function startNodeDns (init: StartNodeDnsInit): Promise<NodeDns> {
  const { dns, logger } = init
  const zone = createNodeZone({
    source: zoneSourceFromNode(init.host, dns.address === undefined ? {} : { address: dns.address }),
    now: () => init.clock.now(),
    ...(init.geoip === undefined ? {} : { geoip: init.geoip }),
    zone: dns.zone,
    ttlS: dns.ttlS,
    failoverTtlS: dns.failoverTtlS,
    failoverWindowMs: dns.failoverWindowS * 1000,
    maxAnswers: dns.maxAnswers,
    strategy: dns.strategy,
    fallback: dns.fallback,
    logger
  })
  const server = createDnsServer({
    zone,
    logger,
    metrics: init.metrics,
    host: dns.host,
    ...(dns.host6 === undefined ? {} : { host6: dns.host6 }),
    port: dns.port,
    overlayPrefixes: dns.overlayPrefixes
  })
  try {
    await server.start()
  } catch (error) {
    const code = error instanceof DnsServerError ? error.code : (error as NodeJS.ErrnoException).code
    const reason = code === 'EADDRINUSE' ? 'address already in use' : code === 'EACCES' ? 'permission denied' : (error as Error).message
    throw new ConfigError(init.configPath, 'dns.port', `cannot listen on ${dns.host}:${dns.port} (UDP and TCP): ${reason}`)
  }
  if (dns.address === undefined) logger.warn('dns.address is not set and no listen address names one interface: other nodes cannot answer with this node', {})
  const host = dns.host.includes(':') ? `[${dns.host}]` : dns.host
  return { server, zone, endpoint: `${host}:${server.port ?? dns.port}`, stop: async () => { await server.stop() } }
}
