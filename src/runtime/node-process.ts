// `form-anycast node --config FILE`: one node agent in this process, on real libp2p, the real
// clock and the disk. Prints one ready line on stdout, then runs until SIGINT/SIGTERM.
import { mkdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { loadNodeConfig, ConfigError, type NodeConfig } from './config.ts'
import { loadOrCreateNodeKey } from './node-key.ts'
import { NetworkKeyError, readNetworkKey } from './network-key.ts'
import { InspectTokenError, readInspectToken } from './inspect-token.ts'
import { createLibp2pOverlay } from './libp2p-overlay.ts'
import { createRealClock } from './clock.ts'
import { createRandom, randomSeed } from './random.ts'
import { createPinoLogger } from './logger.ts'
import { createPromMetrics } from './metrics.ts'
import { createJsonlFileSink, InspectionBus } from './inspection.ts'
import { defaultNodeTiming, NodeHost } from './node.ts'
import { StatusApi, PortInUseError } from './status-api.ts'
import { parseBootstrapList } from './libp2p-node.ts'
import { KeyDirectory, signerFromLibp2pKey } from './signing.ts'
import { createNetProber } from './probers.ts'
import { startDemoService, type DemoService } from './demo-service.ts'
import { locateNode, openDnsGeoIp, startNodeDns, type NodeDns } from './node-dns.ts'
import { LevelStore } from './level-store.ts'
import { StoreError } from './memory-store.ts'
import { StatePersistenceError } from './state-persistence.ts'
import { startDataplaneAgent, type DataplaneAgent } from './dataplane-agent.ts'
import { MemoryDataplane } from './dataplane-memory.ts'
import { DataplaneError, loadOrCreateWireguardKey, WireguardDataplane } from './dataplane-wireguard.ts'
import type { Dataplane, Logger } from './ports.ts'
import { TcpProxy, TcpProxyError } from './tcp-proxy.ts'

export interface RunningNode {
  host: NodeHost
  api: StatusApi
  /** The GeoDNS server, when the config enables one. */
  dns: NodeDns | undefined
  /** The dataplane, when the config enables one. */
  dataplane: DataplaneAgent | undefined
  /** The L4 proxies of the config's `proxies`. */
  proxies: TcpProxy[]
  stop(): Promise<void>
}

/** Where the replicated state lives: LevelDB under the data directory. */
export function stateDirectory (dataDir: string): string { return join(dataDir, 'state') }

/**
 * Opens the node's state store before any socket, so a store another process holds (LevelDB's
 * lock) or a corrupt one fails start-up with nothing to undo, naming `dataDir`.
 */
async function openStateStore (config: NodeConfig, dataDir: string, configPath: string): Promise<LevelStore | undefined> {
  if (!config.state.enabled) return undefined
  const directory = stateDirectory(dataDir)
  const store = new LevelStore({ directory })
  try { await store.open() } catch (error) {
    if (!(error instanceof StoreError)) throw error
    const cause = (error.cause as { cause?: { code?: string }, code?: string } | undefined)
    const locked = cause?.code === 'LEVEL_LOCKED' || cause?.cause?.code === 'LEVEL_LOCKED'
    throw new ConfigError(configPath, 'dataDir', locked
      ? `the state store ${directory} is locked: another form-anycast node runs with this data directory`
      : `cannot open the state store ${directory}: ${error.message}`)
  }
  return store
}

export async function startNode (config: NodeConfig, configPath: string): Promise<RunningNode> {
  const logger = createPinoLogger({ level: config.logLevel, bindings: { node: config.name } })
  const dataDir = resolve(config.dataDir)
  try { mkdirSync(dataDir, { recursive: true }) } catch (error) {
    throw new ConfigError(configPath, 'dataDir', `cannot create ${dataDir}: ${(error as Error).message}`)
  }
  const privateKey = await loadOrCreateNodeKey(dataDir)
  const store = await openStateStore(config, dataDir, configPath)
  try {
    return await startWithStore(config, configPath, { logger, privateKey, store })
  } catch (error) {
    await store?.close()
    if (error instanceof StatePersistenceError) throw new ConfigError(configPath, 'dataDir', `cannot load the state store ${stateDirectory(dataDir)}: ${error.message}`)
    throw error
  }
}

interface Opened {
  logger: ReturnType<typeof createPinoLogger>
  privateKey: Awaited<ReturnType<typeof loadOrCreateNodeKey>>
  store: LevelStore | undefined
}

async function startWithStore (config: NodeConfig, configPath: string, { logger, privateKey, store }: Opened): Promise<RunningNode> {
  let networkKey: Uint8Array | undefined
  if (config.networkKeyFile !== undefined) {
    try { networkKey = await readNetworkKey(resolve(config.networkKeyFile)) } catch (error) {
      if (error instanceof NetworkKeyError) throw new ConfigError(configPath, 'networkKeyFile', error.message)
      throw error
    }
  } else {
    logger.warn('no networkKeyFile: this node accepts connections from anyone who can reach it (see README, "Membership")')
  }
  let inspectToken = config.statusApi.inspectToken
  if (config.statusApi.inspectTokenFile !== undefined) {
    try { inspectToken = readInspectToken(resolve(config.statusApi.inspectTokenFile)) } catch (error) {
      if (error instanceof InspectTokenError) throw new ConfigError(configPath, 'statusApi.inspectTokenFile', error.message)
      throw error
    }
  }
  // GeoIP before any socket: a missing or corrupt database fails start-up with nothing to undo.
  const dnsConfig = config.dns
  const geoip = dnsConfig?.enabled === true ? await openDnsGeoIp(dnsConfig, configPath, logger.child({ component: 'dns' })) : undefined
  const location = config.location ?? locateNode(geoip, dnsConfig?.address)
  const overlay = await createLibp2pOverlay({
    privateKey,
    networkId: config.networkId,
    listen: config.listen,
    bootstrap: config.bootstrap,
    logger: logger.child({ component: 'overlay' }),
    // A local demo network opens many loopback connections from one address at once.
    inboundConnectionThreshold: 100,
    ...(config.relay.client || config.relay.server ? { relay: config.relay } : {}),
    ...(networkKey === undefined ? {} : { networkKey })
  })
  const clock = createRealClock()
  const metrics = createPromMetrics()
  const inspector = new InspectionBus()
  const trace = config.traceFile === undefined ? undefined : createJsonlFileSink(resolve(config.traceFile))
  if (trace !== undefined) inspector.addSink(trace)
  const neighbours = parseBootstrapList(config.bootstrap, overlay.peerId).map((peer) => peer.peerId.toString())
  const host = new NodeHost({
    clock,
    random: createRandom(randomSeed()),
    overlay,
    logger,
    metrics,
    inspector,
    signer: signerFromLibp2pKey(overlay.peerId, privateKey),
    verifier: new KeyDirectory({ fromPeerIds: true }),
    makeProber: (peers) => createNetProber(peers, clock),
    ...(store === undefined ? {} : { store })
  }, {
    name: config.name,
    networkId: config.networkId,
    session: config.session,
    neighbours,
    ...defaultNodeTiming,
    services: config.services,
    serviceProbe: { ...defaultNodeTiming.serviceProbe, ...config.probe },
    directFallback: config.directFallback,
    originStandby: config.originStandby,
    ...(location === undefined ? {} : { location }),
    ...(dnsConfig?.address === undefined ? {} : { address: dnsConfig.address }),
    ...(store === undefined
      ? {}
      : {
          state: {
            antiEntropyIntervalMs: config.state.antiEntropyIntervalMs,
            leaseMs: config.state.leaseMs,
            ipam: { overlayCidr: config.state.overlayCidr, anycastCidr: config.state.anycastCidr }
          }
        })
  })
  let dataplane: DataplaneAgent | undefined
  const proxies: TcpProxy[] = []
  const api = new StatusApi({
    node: host,
    metrics,
    inspector,
    host: config.statusApi.host,
    port: config.statusApi.port,
    dataplane: () => dataplane?.reconciler.view(),
    ...(inspectToken === undefined ? {} : { inspectToken })
  })
  let demo: DemoService | undefined
  let dns: NodeDns | undefined
  try {
    await api.start()
    if (config.demoServicePort !== undefined) {
      try {
        demo = await startDemoService({ name: config.name, host: '127.0.0.1', port: config.demoServicePort })
      } catch (error) {
        throw new ConfigError(configPath, 'demoServicePort', `cannot listen on 127.0.0.1:${config.demoServicePort}: ${(error as Error).message}`)
      }
    }
    if (dnsConfig?.enabled === true) {
      dns = await startNodeDns({ dns: dnsConfig, configPath, host, geoip, clock, logger: logger.child({ component: 'dns' }), metrics })
    }
  } catch (error) {
    await demo?.stop()
    await api.stop()
    await overlay.stop()
    if (error instanceof PortInUseError) throw new ConfigError(configPath, 'statusApi.port', error.message)
    throw error
  }
  try {
    await host.start()
    dataplane = await startDataplane(config, configPath, host, logger)
    await startProxies(config, configPath, host, logger, metrics, proxies)
  } catch (error) {
    for (const proxy of proxies) await proxy.stop()
    await dataplane?.stop()
    await host.stop()
    await dns?.stop()
    await demo?.stop()
    await api.stop()
    await overlay.stop()
    throw error
  }
  let stopping: Promise<void> | undefined
  return {
    host,
    api,
    dns,
    dataplane,
    proxies,
    stop: async () => {
      stopping ??= (async () => {
        for (const proxy of proxies) await proxy.stop()
        await dns?.stop()
        // The interface goes before the control plane drains: nothing on the host outlives the node.
        await dataplane?.stop()
        // NodeHost.stop stops the replicator, which closes the store; closing is idempotent, so
        // this only makes sure LevelDB's lock is released before the process exits.
        await host.stop()
        await store?.close()
        await demo?.stop()
        await api.stop()
        trace?.close()
      })()
      await stopping
    }
  }
}

/** The configured dataplane over a started node; a host that cannot run it fails start-up naming `dataplane`. */
async function startDataplane (config: NodeConfig, configPath: string, host: NodeHost, logger: Logger): Promise<DataplaneAgent | undefined> {
  const settings = config.dataplane
  if (settings.kind === 'none') return undefined
  let dataplane: Dataplane
  let publicKey: string
  if (settings.kind === 'memory') {
    dataplane = new MemoryDataplane()
    publicKey = (await loadOrCreateWireguardKey(resolve(config.dataDir))).publicKey
  } else {
    const key = await loadOrCreateWireguardKey(resolve(config.dataDir))
    publicKey = key.publicKey
    dataplane = new WireguardDataplane({
      interface: settings.interface,
      listenPort: settings.listenPort,
      privateKeyFile: key.privateKeyFile,
      overlayCidr: config.state.overlayCidr,
      anycastCidr: config.state.anycastCidr,
      masquerade: settings.masquerade,
      logger: logger.child({ component: 'wireguard' })
    })
  }
  try {
    return await startDataplaneAgent({ host, dataplane, publicKey, anycastCidr: config.state.anycastCidr, intervalMs: settings.reconcileIntervalMs, ...(settings.endpoint === undefined ? {} : { endpoint: settings.endpoint }) })
  } catch (error) {
    await dataplane.stop()
    if (error instanceof DataplaneError) throw new ConfigError(configPath, 'dataplane', error.message)
    throw error
  }
}

/** The config's L4 proxies; origins are reached at their overlay address (their unicast lease), this node at loopback. */
async function startProxies (config: NodeConfig, configPath: string, host: NodeHost, logger: Logger, metrics: ReturnType<typeof createPromMetrics>, started: TcpProxy[]): Promise<void> {
  const addressOf = (origin: string): string | undefined => {
    if (origin === host.peerId) return '127.0.0.1'
    return host.leases?.leases().find((lease) => lease.kind === 'unicast' && lease.live && lease.holder === origin)?.address
  }
  // Connections the proxies hold open to this node's own services, per proxy and service: their sum
  // against the smallest configured capacity is the load announced for the service.
  const ownActive = new Map<string, Map<number, number>>()
  const capacity = (service: string): number | undefined => {
    const limits = [...ownActive.get(service)?.keys() ?? []].map((index) => config.proxies[index]!.maxConnectionsPerOrigin).filter((limit) => limit !== undefined)
    return limits.length === 0 ? undefined : Math.min(...limits)
  }
  for (const [index, proxyConfig] of config.proxies.entries()) {
    const onActiveChange = ({ service, origin, active }: { service: string, origin: string, active: number }): void => {
      if (origin !== host.peerId) return
      let byProxy = ownActive.get(service)
      if (byProxy === undefined) ownActive.set(service, byProxy = new Map())
      byProxy.set(index, active)
      host.controlPlane.setServiceConnections(service, [...byProxy.values()].reduce((sum, value) => sum + value, 0), capacity(service))
    }
    const proxy = new TcpProxy({ routes: () => host.controlPlane.routes(), addressOf, logger: logger.child({ component: 'proxy', service: proxyConfig.service }), metrics, onActiveChange }, proxyConfig)
    try { await proxy.start() } catch (error) {
      if (error instanceof TcpProxyError) throw new ConfigError(configPath, `proxies[${index}].port`, error.message)
      throw error
    }
    started.push(proxy)
  }
}

/** Runs until a signal; resolves with the process exit code. */
export async function runNodeCommand (configPath: string, write: (line: string) => void): Promise<number> {
  const config = loadNodeConfig(configPath)
  const node = await startNode(config, configPath)
  const status = node.host.status()
  // The DNS line first: `up` has every node's DNS endpoint once it has every ready line.
  if (node.dns !== undefined) write(`node ${config.name} dns: ${node.dns.endpoint} zone ${node.dns.zone.apex} udp+tcp`)
  write(`node ${config.name} ready: status API ${node.api.url} peer ${status.peerId} pid ${process.pid}`)
  return await new Promise<number>((resolveExit) => {
    const shutdown = (signal: string): void => {
      process.off('SIGINT', onInt)
      process.off('SIGTERM', onTerm)
      write(`node ${config.name} stopping (${signal})`)
      const force = setTimeout(() => resolveExit(1), 10_000)
      force.unref()
      node.stop().then(() => { clearTimeout(force); resolveExit(0) }, () => resolveExit(1))
    }
    const onInt = (): void => shutdown('SIGINT')
    const onTerm = (): void => shutdown('SIGTERM')
    process.on('SIGINT', onInt)
    process.on('SIGTERM', onTerm)
  })
}
