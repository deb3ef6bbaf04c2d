// The geo/health-aware L4 TCP proxy (form-rplb's job, which picks a backend at random): each
// accepted connection is forwarded to the best origin of one service prefix — the route table's
// nearest healthy choice, then the next-best by cost (src/protocols/proxy-order.ts) — with a connect
// timeout per attempt, a retry on the next origin, and open/total/failed connection counts per origin.
import { createServer, connect, type Server, type Socket } from 'node:net'
import { proxyOrder } from '../protocols/proxy-order.ts'
import { MAX_PEEK_BYTES, peekRoutingName } from '../protocols/l7-peek.ts'
import type { RouteEntry } from '../protocols/routes.ts'
import type { Counter, Gauge, Logger, Metrics } from './ports.ts'

export const DEFAULT_PROXY_CONNECT_TIMEOUT_MS = 1_000
export const DEFAULT_PROXY_MAX_ATTEMPTS = 3
/** With name routing, a client has this long to send its ClientHello or request head. */
export const PEEK_TIMEOUT_MS = 5_000

export interface TcpProxyComponents {
  /** The node's route table (ControlPlane.routes). */
  routes: () => readonly RouteEntry[]
  /** Where to reach an origin: its overlay address (its unicast lease), or loopback for this node. */
  addressOf: (origin: string) => string | undefined
  logger: Logger
  metrics: Metrics
  /**
   * Told whenever the connections open to one (service, origin) change: the node feeds those to
   * its own origin into the load it announces (ControlPlane.setServiceConnections).
   */
  onActiveChange?: (change: { service: string, origin: string, active: number }) => void
}

export interface TcpProxyConfig {
  /** The service a connection goes to when `names` is absent or names nothing it asked for. */
  service: string
  /**
   * Host name → service: route by TLS server_name or HTTP Host (form-rplb's routing) instead of
   * sending every connection to `service`. The proxy reads the connection's first bytes to decide.
   */
  names?: Readonly<Record<string, string>>
  /** The service's anycast prefix; default the route whose service is `service`. */
  prefix?: string
  host: string
  port: number
  /** The service's port on every origin. */
  targetPort: number
  connectTimeoutMs?: number
  /** Origins tried per connection, at most. */
  maxAttempts?: number
  maxConnectionsPerOrigin?: number
}

export interface OriginConnections { origin: string, active: number, total: number, failed: number }

export class TcpProxyError extends Error {
  override name = 'TcpProxyError'
}

export class TcpProxy {
  private server: Server | undefined
  private readonly sockets = new Set<Socket>()
  private readonly counts = new Map<string, OriginConnections>()
  /** Open connections by service and origin (`<service>\n<origin>`); with `names` one proxy serves several services. */
  private readonly perService = new Map<string, number>()
  private readonly metrics: { connections: Counter, failures: Counter, active: Gauge }

  constructor (private readonly components: TcpProxyComponents, private readonly config: TcpProxyConfig) {
    this.metrics = {
      connections: components.metrics.counter('proxy_connections_total', 'Connections the proxy forwarded', ['service', 'origin']),
      failures: components.metrics.counter('proxy_connect_failures_total', 'Connect attempts to an origin that failed', ['service', 'origin']),
      active: components.metrics.gauge('proxy_connections_active', 'Open proxied connections', ['service', 'origin'])
    }
  }

  /** Idempotent. Resolves with the bound port. */
  async start (): Promise<number> {
    if (this.server === undefined) {
      const server = createServer((client) => { this.accept(client) })
      await new Promise<void>((resolve, reject) => {
        server.once('error', (error) => reject(new TcpProxyError(`cannot listen on ${this.config.host}:${this.config.port}: ${error.message}`)))
        server.listen(this.config.port, this.config.host, () => resolve())
      })
      this.server = server
    }
    return (this.server.address() as { port: number }).port
  }

  /** Idempotent: stops accepting and closes every open connection. */
  async stop (): Promise<void> {
    const server = this.server
    this.server = undefined
    for (const socket of this.sockets) socket.destroy()
    this.sockets.clear()
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  connections (): OriginConnections[] { return [...this.counts.values()].map((count) => ({ ...count })).sort((a, b) => a.origin < b.origin ? -1 : 1) }

  private count (origin: string): OriginConnections {
    let count = this.counts.get(origin)
    if (count === undefined) { count = { origin, active: 0, total: 0, failed: 0 }; this.counts.set(origin, count) }
    return count
  }

  private accept (client: Socket): void {
    this.sockets.add(client)
    client.pause()
    client.on('error', () => undefined)
    client.once('close', () => this.sockets.delete(client))
    const names = this.config.names
    if (names === undefined) { void this.forward(client, this.config.service, this.order(this.config.service, this.config.prefix), undefined); return }
    void this.peek(client).then(({ name, head }) => {
      const service = name === undefined ? this.config.service : names[name] ?? this.config.service
      void this.forward(client, service, this.order(service, undefined), head)
    })
  }

  /** Origins to try for a service, best first (the route whose service it is, or the configured prefix). */
  private order (service: string, prefix: string | undefined): string[] {
    const entry = this.components.routes().find((route) => prefix === undefined ? route.service === service : route.prefix === prefix)
    const active = new Map([...this.counts.values()].map((count) => [count.origin, count.active]))
    return proxyOrder(entry, { active, ...(this.config.maxConnectionsPerOrigin === undefined ? {} : { maxConnectionsPerOrigin: this.config.maxConnectionsPerOrigin }) })
      .slice(0, this.config.maxAttempts ?? DEFAULT_PROXY_MAX_ATTEMPTS)
  }

  /** Reads until the first bytes name a host (or cannot), at most MAX_PEEK_BYTES and PEEK_TIMEOUT_MS. */
  private async peek (client: Socket): Promise<{ name: string | undefined, head: Buffer }> {
    return await new Promise((resolve) => {
      let head = Buffer.alloc(0)
      const finish = (name: string | undefined): void => {
        clearTimeout(timer)
        client.off('data', onData)
        client.pause()
        resolve({ name, head })
      }
      const onData = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk])
        const result = peekRoutingName(head)
        if (result.kind === 'tls') finish(result.serverName)
        else if (result.kind === 'http') finish(result.host)
        else if (result.kind === 'unknown' || head.length >= MAX_PEEK_BYTES) finish(undefined)
      }
      const timer = setTimeout(() => finish(undefined), PEEK_TIMEOUT_MS)
      client.on('data', onData)
      client.resume()
    })
  }

  private async forward (client: Socket, service: string, order: string[], head: Buffer | undefined): Promise<void> {
    for (const origin of order) {
      if (client.destroyed) return
      const address = this.components.addressOf(origin)
      if (address === undefined) continue
      const upstream = await this.tryConnect(address)
      if (upstream === undefined) {
        this.count(origin).failed++
        this.metrics.failures.inc({ service: this.config.service, origin })
        continue
      }
      if (head !== undefined && head.length > 0) upstream.write(head)
      this.splice(client, upstream, service, origin)
      return
    }
    this.components.logger.warn('proxy: no origin accepted the connection', { service: this.config.service, tried: order.length })
    client.destroy()
  }

  private async tryConnect (address: string): Promise<Socket | undefined> {
    return await new Promise((resolve) => {
      const socket = connect({ host: address, port: this.config.targetPort })
      const timer = setTimeout(() => { socket.destroy(); resolve(undefined) }, this.config.connectTimeoutMs ?? DEFAULT_PROXY_CONNECT_TIMEOUT_MS)
      socket.once('connect', () => { clearTimeout(timer); resolve(socket) })
      socket.once('error', () => { clearTimeout(timer); socket.destroy(); resolve(undefined) })
    })
  }

  /** Open connections of `service` to `origin`, changed by `delta`, reported to onActiveChange. */
  private changeActive (service: string, origin: string, delta: number): void {
    const key = `${service}\n${origin}`
    const active = (this.perService.get(key) ?? 0) + delta
    if (active === 0) this.perService.delete(key)
    else this.perService.set(key, active)
    try { this.components.onActiveChange?.({ service, origin, active }) } catch (error) {
      this.components.logger.warn('proxy: load listener failed', { service, origin, error: (error as Error).message })
    }
  }

  private splice (client: Socket, upstream: Socket, service: string, origin: string): void {
    this.sockets.add(upstream)
    const count = this.count(origin)
    count.active++
    count.total++
    this.changeActive(service, origin, 1)
    this.metrics.connections.inc({ service: this.config.service, origin })
    this.metrics.active.set(count.active, { service: this.config.service, origin })
    upstream.on('error', () => undefined)
    let closed = false
    const close = (): void => {
      if (closed) return
      closed = true
      count.active--
      this.changeActive(service, origin, -1)
      this.metrics.active.set(count.active, { service: this.config.service, origin })
      this.sockets.delete(upstream)
      client.destroy()
      upstream.destroy()
    }
    upstream.once('close', close)
    client.once('close', close)
    client.pipe(upstream)
    upstream.pipe(client)
    client.resume()
  }
}
