// The node's HTTP status API: read-only JSON views of the node, Prometheus metrics, and a live
// stream of inspection events for the debugger, as Server-Sent Events or over a WebSocket on the
// same path. Bound to loopback by default; anywhere else the stream needs a bearer token.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { WebSocketServer, type WebSocket } from 'ws'
import { bearerMatches, isLoopbackHost } from './inspect-token.ts'
import type { NodeHost } from './node.ts'
import type { PromMetrics } from './metrics.ts'
import { traceLine, type InspectionBus } from './inspection.ts'
import { ServiceExistsError, ServiceRecordError } from '../protocols/service-registry.ts'
import { IpamExhaustedError } from '../protocols/ipam.ts'
import { STATE_COLLECTIONS } from '../protocols/state-crdt.ts'
import type { DataplaneView } from './dataplane-reconciler.ts'

export interface StatusApiInit {
  node: NodeHost
  metrics: PromMetrics
  inspector: InspectionBus
  host: string
  port: number
  /** The dataplane's table, when the node runs one (config `dataplane`). */
  dataplane?: () => DataplaneView | undefined
  /** When set, /v1/inspect (SSE and WebSocket) needs `Authorization: Bearer <token>`. Required off loopback. */
  inspectToken?: string
}

export class InspectTokenRequiredError extends Error {
  override name = 'InspectTokenRequiredError'
  constructor (readonly host: string) {
    super(`status API on ${host}: not a loopback address, so the inspection stream needs a token (config statusApi.inspectToken)`)
  }
}

export class PortInUseError extends Error {
  override name = 'PortInUseError'
  constructor (readonly host: string, readonly port: number, reason: string) {
    super(`cannot listen on ${host}:${port}: ${reason}`)
  }
}

const SERVICE_ACTION = /^\/v1\/services\/([a-z0-9][a-z0-9-]{0,62})\/(down|up)$/

/** Most live inspection clients at once (SSE and WebSocket together); each costs a write per event. */
const MAX_STREAM_CLIENTS = 8
/** A client that reads slower than this much backlog loses events rather than growing our memory. */
const MAX_STREAM_BACKLOG_BYTES = 1024 * 1024
/** Largest request body read (POST /v1/services: `{"name": "..."}`). */
export const MAX_REQUEST_BODY_BYTES = 4096

const ENDPOINTS = [
  '/v1/status', '/v1/peers', '/v1/members', '/v1/routes', '/v1/health', '/v1/leases', '/v1/state', '/v1/dataplane', '/v1/actors', '/v1/inspect', '/metrics',
  'POST /v1/services', 'POST /v1/services/<name>/down', 'POST /v1/services/<name>/up'
]
const NO_STATE = 'this node keeps no replicated state (config state.enabled is false)'

class RequestBodyError extends Error {
  override name = 'RequestBodyError'
  constructor (readonly status: number, message: string) { super(message) }
}

export class StatusApi {
  private server: Server | undefined
  private readonly streams = new Set<ServerResponse>()
  private readonly sockets = new Set<WebSocket>()
  private webSockets: WebSocketServer | undefined

  constructor (private readonly init: StatusApiInit) {}

  get url (): string {
    const address = this.server?.address() as AddressInfo | null | undefined
    if (address === undefined || address === null) throw new Error('status API is not listening')
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
    return `http://${host}:${address.port}`
  }

  async start (): Promise<void> {
    if (this.server !== undefined) return
    if (this.init.inspectToken === undefined && !isLoopbackHost(this.init.host)) throw new InspectTokenRequiredError(this.init.host)
    const server = createServer((request, response) => { this.handle(request, response) })
    this.webSockets = new WebSocketServer({ noServer: true, maxPayload: 4096 })
    server.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => { this.upgrade(request, socket, head) })
    server.headersTimeout = 10_000
    server.requestTimeout = 10_000
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        const reason = error.code === 'EADDRINUSE' ? 'address already in use' : error.code === 'EACCES' ? 'permission denied' : error.message
        reject(new PortInUseError(this.init.host, this.init.port, reason))
      })
      server.listen(this.init.port, this.init.host, () => resolve())
    })
    this.server = server
  }

  async stop (): Promise<void> {
    const server = this.server
    if (server === undefined) return
    this.server = undefined
    for (const stream of this.streams) stream.end()
    this.streams.clear()
    for (const socket of this.sockets) socket.terminate()
    this.sockets.clear()
    this.webSockets?.close()
    this.webSockets = undefined
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  private handle (request: IncomingMessage, response: ServerResponse): void {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname
    const { node } = this.init
    const service = SERVICE_ACTION.exec(path)
    if (service !== null) {
      if (request.method !== 'POST') { this.json(response, 405, { error: `use POST ${path}` }); return }
      const down = service[2] === 'down'
      if (!node.controlPlane.setAdminDown(service[1]!, down)) { this.json(response, 404, { error: `this node serves no service ${JSON.stringify(service[1])}` }); return }
      this.json(response, 200, { service: service[1], adminDown: down })
      return
    }
    if (path === '/v1/services') {
      if (request.method !== 'POST') { this.json(response, 405, { error: 'use POST /v1/services with {"name": "<service>"}' }); return }
      void this.registerService(request, response)
      return
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      this.json(response, 405, { error: `method ${request.method ?? ''} not allowed here; only POST /v1/services and POST /v1/services/<name>/down|up change anything` })
      return
    }
    switch (path) {
      case '/v1/status': this.json(response, 200, node.status()); return
      case '/v1/peers': this.json(response, 200, { peers: node.sessions() }); return
      case '/v1/members': this.json(response, 200, { members: node.memberList() }); return
      case '/v1/actors': this.json(response, 200, node.tree()); return
      case '/v1/routes': this.json(response, 200, { routes: node.controlPlane.routes() }); return
      case '/v1/health': this.json(response, 200, { services: node.controlPlane.serviceHealth(), origins: node.controlPlane.originHealth() }); return
      case '/v1/leases': this.leases(response); return
      case '/v1/state': this.stateSummary(response); return
      case '/v1/dataplane': {
        const view = this.init.dataplane?.()
        if (view === undefined) this.json(response, 404, { error: 'this node runs no dataplane (config dataplane.kind is "none")' })
        else this.json(response, 200, view)
        return
      }
      case '/v1/inspect':
        if (!this.authorized(request)) { this.json(response, 401, { error: 'the inspection stream needs Authorization: Bearer <statusApi.inspectToken>' }, { 'www-authenticate': 'Bearer realm="form-anycast inspect"' }); return }
        this.stream(response)
        return
      case '/metrics':
        this.init.metrics.render().then((text) => {
          response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' })
          response.end(text)
        }, (error: Error) => this.json(response, 500, { error: error.message }))
        return
      default:
        this.json(response, 404, { error: `no such endpoint ${path} (endpoints: ${ENDPOINTS.join(', ')})`, endpoints: ENDPOINTS })
    }
  }

  /** Every lease in the replicated state, and this node's own unicast address. */
  private leases (response: ServerResponse): void {
    const { node } = this.init
    if (node.leases === undefined) { this.json(response, 404, { error: NO_STATE }); return }
    this.json(response, 200, {
      nodeId: node.peerId,
      unicast: node.leases.unicastAddress() ?? null,
      nowMs: node.components.clock.now(),
      leases: node.leases.leases()
    })
  }

  /** The replica's digest (equal on two nodes exactly when they hold the same state) and counts. */
  private stateSummary (response: ServerResponse): void {
    const replicator = this.init.node.replicator
    if (replicator === undefined) { this.json(response, 404, { error: NO_STATE }); return }
    const digests = replicator.state.collectionDigests()
    const counts = replicator.state.counts()
    this.json(response, 200, {
      digest: replicator.state.digest(),
      collections: Object.fromEntries(STATE_COLLECTIONS.map((name) => [name, { digest: digests[name], ...counts[name] }]))
    })
  }

  /** POST /v1/services {"name"}: 201 with the record, 409 when it exists, 400 naming the field. */
  private async registerService (request: IncomingMessage, response: ServerResponse): Promise<void> {
    const { node } = this.init
    try {
      if (node.replicator === undefined) throw new RequestBodyError(404, NO_STATE)
      const body = await readJsonBody(request)
      if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new RequestBodyError(400, 'body: must be a JSON object such as {"name": "shop"}')
      const unknown = Object.keys(body).find((key) => key !== 'name')
      if (unknown !== undefined) throw new RequestBodyError(400, `${unknown}: unknown field (allowed: name)`)
      const record = await node.registerService((body as { name?: unknown }).name as string)
      this.json(response, 201, record)
    } catch (error) {
      if (error instanceof RequestBodyError) this.json(response, error.status, { error: error.message }, error.status === 413 ? { connection: 'close' } : {})
      else if (error instanceof ServiceRecordError) this.json(response, 400, { error: error.message, field: error.field })
      else if (error instanceof ServiceExistsError) this.json(response, 409, { error: error.message, service: error.record })
      else if (error instanceof IpamExhaustedError) this.json(response, 503, { error: error.message })
      else this.json(response, 500, { error: (error as Error).message })
    }
  }

  private json (response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body, null, 2) + '\n'
    response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers })
    response.end(text)
  }

  private authorized (request: IncomingMessage): boolean {
    const token = this.init.inspectToken
    return token === undefined || bearerMatches(request.headers.authorization, token)
  }

  private get streamClients (): number { return this.streams.size + this.sockets.size }

  /** GET /v1/inspect with Upgrade: websocket: one text message of trace JSON per inspection event. */
  private upgrade (request: IncomingMessage, socket: Socket, head: Buffer): void {
    const refuse = (status: number, reason: string, extra = ''): void => {
      socket.end(`HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-length: 0\r\n${extra}\r\n`)
    }
    const path = new URL(request.url ?? '/', 'http://localhost').pathname
    const server = this.webSockets
    if (path !== '/v1/inspect' || server === undefined) { refuse(404, 'Not Found'); return }
    if (!this.authorized(request)) { refuse(401, 'Unauthorized', 'www-authenticate: Bearer realm="form-anycast inspect"\r\n'); return }
    if (this.streamClients >= MAX_STREAM_CLIENTS) { refuse(503, 'Service Unavailable'); return }
    server.handleUpgrade(request, socket, head, (webSocket) => {
      this.sockets.add(webSocket)
      const unsubscribe = this.init.inspector.addSink({
        write: (event) => {
          if (webSocket.readyState === webSocket.OPEN && webSocket.bufferedAmount < MAX_STREAM_BACKLOG_BYTES) webSocket.send(traceLine(event))
        }
      })
      // The stream is one-way: anything the client sends is ignored.
      webSocket.on('close', () => { unsubscribe(); this.sockets.delete(webSocket) })
      webSocket.on('error', () => { webSocket.terminate() })
    })
  }

  /** Server-Sent Events: one `data:` line of trace JSON per inspection event. */
  private stream (response: ServerResponse): void {
    if (this.streamClients >= MAX_STREAM_CLIENTS) {
      this.json(response, 503, { error: `at most ${MAX_STREAM_CLIENTS} inspection streams at once` })
      return
    }
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' })
    response.write(': form-anycast inspection stream\n\n')
    this.streams.add(response)
    const unsubscribe = this.init.inspector.addSink({
      write: (event) => {
        // Drop rather than buffer without bound when a client reads slowly.
        if (response.writableLength < MAX_STREAM_BACKLOG_BYTES) response.write(`data: ${traceLine(event)}\n\n`)
      }
    })
    response.on('close', () => { unsubscribe(); this.streams.delete(response) })
  }
}

/**
 * Reads at most MAX_REQUEST_BODY_BYTES of JSON. A longer body is a 413: reading stops at the bound
 * (the answer closes the connection rather than draining the rest).
 */
async function readJsonBody (request: IncomingMessage): Promise<unknown> {
  const tooLarge = (): RequestBodyError => new RequestBodyError(413, `body: larger than ${MAX_REQUEST_BODY_BYTES} bytes`)
  if (Number(request.headers['content-length'] ?? 0) > MAX_REQUEST_BODY_BYTES) throw tooLarge()
  const text = await new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = []
    let length = 0
    request.on('data', (chunk: Buffer) => {
      length += chunk.length
      if (length > MAX_REQUEST_BODY_BYTES) { request.pause(); request.removeAllListeners('data'); reject(tooLarge()); return }
      chunks.push(chunk)
    })
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    request.on('error', reject)
  })
  try { return JSON.parse(text) } catch (error) {
    throw new RequestBodyError(400, `body: not valid JSON: ${(error as Error).message}`)
  }
}
