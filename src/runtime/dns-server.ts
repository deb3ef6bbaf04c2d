// The node agent's authoritative DNS server: UDP (node:dgram) and TCP (node:net, RFC 1035 §4.2.2
// two-byte length framing, RFC 7766 connection handling) in front of the pure answerer in
// src/protocols/dns-answer.ts. Both transports listen on the same port, on an IPv4 address and
// optionally an IPv6 one.
//
// Every packet from outside is untrusted (DESIGN.md §6): a message that does not decode gets
// FORMERR when its header is readable and is dropped otherwise; either way it is counted and logged
// at most once per source per window. Nothing a client sends can throw out of a socket handler, and
// every buffer is bounded: 4096 bytes per UDP query, one 65,537-byte frame plus one read per TCP
// connection, `maxTcpConnections` connections, each closed after `tcpIdleMs` without traffic or
// with a frame still unfinished (a client that sends half a frame, or trickles it, is cut off).

import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram'
import { createServer, type Server as TcpServer, type Socket as TcpSocket } from 'node:net'
import { parseAddress, parsePrefix } from '../protocols/cidr.ts'
import { createAnswerer, DEFAULT_DNS_PORT, type Answerer, type DnsClientSource, type Transport, type ZoneView } from '../protocols/dns-answer.ts'
import { DnsFormatError, MAX_TCP_MESSAGE_BYTES, MAX_UDP_QUERY_BYTES, RCODE, decodeQuery, type DnsQuery } from '../protocols/dns-codec.ts'
import type { Counter, Gauge, Logger, Metrics } from './ports.ts'

/** formnet's overlay (shared/FORMATION-FACTS.md "formnet"): clients here get overlay addresses. */
export const DEFAULT_OVERLAY_PREFIXES: readonly string[] = ['10.42.0.0/16']
export const DEFAULT_MAX_TCP_CONNECTIONS = 128
/** RFC 7766 §6.2.3 asks for idle timeouts of the order of seconds. */
export const DEFAULT_TCP_IDLE_MS = 10_000
/** One warning per misbehaving source per window. */
export const MALFORMED_LOG_WINDOW_MS = 60_000
const MALFORMED_LOG_SOURCES = 1024
/** Kernel receive buffer asked for, so bursts queue rather than drop (the kernel may cap it). */
const UDP_RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024
const EPHEMERAL_BIND_ATTEMPTS = 8

export interface DnsServerOptions {
  zone: ZoneView
  logger: Logger
  metrics: Metrics
  /** IPv4 (or IPv6) address for the first UDP and TCP sockets; default 127.0.0.1. */
  host?: string
  /** A second address (e.g. "::1") served on the same port; its sockets are IPv6-only. */
  host6?: string
  /** Default 5353; 0 picks a free port, the same for every socket. */
  port?: number
  /** Split horizon: sources inside these prefixes are overlay clients. Default 10.42.0.0/16. */
  overlayPrefixes?: readonly string[]
  /** Our advertised EDNS0 UDP size and largest UDP response; default 1232. */
  udpPayloadSize?: number
  maxTcpConnections?: number
  tcpIdleMs?: number
}

export interface DnsServerAddress {
  transport: Transport
  address: string
  family: 4 | 6
  port: number
}

export interface DnsServer {
  /** Idempotent; rejects with DnsServerError naming the address when a socket cannot bind. */
  start(): Promise<void>
  /** Idempotent; closes every socket and connection. */
  stop(): Promise<void>
  /** The bound sockets; empty unless started. */
  addresses(): DnsServerAddress[]
  /** The bound port; undefined unless started. */
  readonly port: number | undefined
}

export class DnsServerError extends Error {
  override name = 'DnsServerError'
  /** The socket error's code (e.g. EADDRINUSE) when binding failed. */
  readonly code: string | undefined
  constructor (readonly field: string, readonly reason: string, options?: { cause?: unknown }) {
    super(`dns server ${field}: ${reason}`, options)
    this.code = (options?.cause as NodeJS.ErrnoException | undefined)?.code
  }
}

// ---------------------------------------------------------------------------------------------
// Client addresses and the overlay

interface OverlayMatcher { v4: Array<{ network: number, mask: number }>, v6: Array<{ bytes: Uint8Array, length: number }> }

function compileOverlay (prefixes: readonly string[]): OverlayMatcher {
  const matcher: OverlayMatcher = { v4: [], v6: [] }
  prefixes.forEach((text, index) => {
    let prefix
    try { prefix = parsePrefix(text) } catch (error) { throw new DnsServerError(`overlayPrefixes[${index}]`, (error as Error).message) }
    const bytes = parseAddress(prefix.address).bytes
    if (prefix.family === 4) {
      const mask = prefix.length === 0 ? 0 : (0xffffffff << (32 - prefix.length)) >>> 0
      matcher.v4.push({ network: ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0, mask })
    } else {
      matcher.v6.push({ bytes, length: prefix.length })
    }
  })
  return matcher
}

/** Dotted quad to a number, or -1; the hot path avoids the general parser. */
function ipv4Number (text: string): number {
  let value = 0
  let part = 0
  let digits = 0
  let dots = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x2e) {
      if (digits === 0 || ++dots > 3) return -1
      value = value * 256 + part
      part = 0
      digits = 0
    } else if (c >= 0x30 && c <= 0x39 && digits < 3) {
      part = part * 10 + c - 0x30
      digits++
      if (part > 255) return -1
    } else {
      return -1
    }
  }
  return dots === 3 && digits > 0 ? value * 256 + part : -1
}

function inIpv6Prefix (bytes: Uint8Array, prefix: { bytes: Uint8Array, length: number }): boolean {
  for (let bit = 0; bit < prefix.length; bit += 8) {
    const bits = Math.min(8, prefix.length - bit)
    const mask = (0xff << (8 - bits)) & 0xff
    if ((bytes[bit >> 3] & mask) !== (prefix.bytes[bit >> 3] & mask)) return false
  }
  return true
}

const MAPPED_PREFIX = '::ffff:'

/** The client as the answerer sees it; IPv4-mapped IPv6 sources (a dual-stack socket) are unwrapped. */
function clientSource (rawAddress: string, overlay: OverlayMatcher): DnsClientSource {
  const address = rawAddress.length > MAPPED_PREFIX.length && rawAddress.startsWith(MAPPED_PREFIX) && rawAddress.includes('.')
    ? rawAddress.slice(MAPPED_PREFIX.length)
    : rawAddress
  const v4 = ipv4Number(address)
  if (v4 >= 0) {
    let inside = false
    for (const prefix of overlay.v4) if (((v4 & prefix.mask) >>> 0) === prefix.network) { inside = true; break }
    return { address, family: 4, overlay: inside }
  }
  let inside = false
  if (overlay.v6.length > 0) {
    try {
      const bytes = parseAddress(address).bytes
      inside = bytes.byteLength === 16 && overlay.v6.some((prefix) => inIpv6Prefix(bytes, prefix))
    } catch { inside = false }
  }
  return { address, family: 6, overlay: inside }
}

// ---------------------------------------------------------------------------------------------
// Counters

const RCODE_NAMES: Record<number, string> = {
  [RCODE.NOERROR]: 'NOERROR', [RCODE.FORMERR]: 'FORMERR', [RCODE.SERVFAIL]: 'SERVFAIL', [RCODE.NXDOMAIN]: 'NXDOMAIN',
  [RCODE.NOTIMP]: 'NOTIMP', [RCODE.REFUSED]: 'REFUSED', [RCODE.BADVERS]: 'BADVERS'
}

interface DnsCounters {
  queries: Counter
  malformed: Counter
  truncated: Counter
  errors: Counter
  tcpConnections: Gauge
  tcpRejected: Counter
  tcpIdleClosed: Counter
}

function createCounters (metrics: Metrics): DnsCounters {
  return {
    queries: metrics.counter('dns_queries_total', 'DNS responses sent, by transport and rcode', ['transport', 'rcode']),
    malformed: metrics.counter('dns_malformed_total', 'DNS messages that did not decode, answered with FORMERR or dropped', ['transport', 'outcome']),
    truncated: metrics.counter('dns_truncated_total', 'DNS UDP responses truncated (TC) to fit the client', ['transport']),
    errors: metrics.counter('dns_errors_total', 'Internal DNS server errors (a bug, or a failed send)', ['where']),
    tcpConnections: metrics.gauge('dns_tcp_connections', 'Open DNS TCP connections'),
    tcpRejected: metrics.counter('dns_tcp_rejected_total', 'DNS TCP connections refused at the connection cap'),
    tcpIdleClosed: metrics.counter('dns_tcp_idle_closed_total', 'DNS TCP connections closed for silence or a frame unfinished after the idle timeout')
  }
}

/** Label objects made once per combination, so counting a query allocates nothing. */
class LabelCache {
  private readonly cache = new Map<string, Record<string, string>>()
  get (key: string, first: string, firstValue: string, second?: string, secondValue?: string): Record<string, string> {
    let value = this.cache.get(key)
    if (value === undefined) {
      value = second === undefined ? { [first]: firstValue } : { [first]: firstValue, [second]: secondValue ?? '' }
      this.cache.set(key, value)
    }
    return value
  }
}

function rcodeName (rcode: number): string { return RCODE_NAMES[rcode] ?? `RCODE${rcode}` }

// ---------------------------------------------------------------------------------------------
// One message, either transport

interface Handler {
  /** The response bytes, or undefined to send nothing. Never throws. */
  handle(bytes: Uint8Array, address: string, transport: Transport): Uint8Array | undefined
}

function createHandler (answerer: Answerer, overlay: OverlayMatcher, counters: DnsCounters, logger: Logger): Handler {
  const lastLogged = new Map<string, number>()
  const cache = new LabelCache()
  const udpQueryLabels: Array<Record<string, string>> = []
  const tcpQueryLabels: Array<Record<string, string>> = []
  const noteMalformed = (address: string, transport: Transport, error: DnsFormatError, answered: boolean): void => {
    const outcome = answered ? 'formerr' : 'dropped'
    counters.malformed.inc(cache.get(transport + outcome, 'transport', transport, 'outcome', outcome))
    const now = Date.now()
    const last = lastLogged.get(address)
    if (last !== undefined && now - last < MALFORMED_LOG_WINDOW_MS) return
    if (lastLogged.size >= MALFORMED_LOG_SOURCES) lastLogged.clear()
    lastLogged.set(address, now)
    logger.warn('dns.malformed', { source: address, transport, field: error.field, reason: error.reason, answered })
  }
  const countResponse = (transport: Transport, rcode: number, truncated: boolean): void => {
    const table = transport === 'udp' ? udpQueryLabels : tcpQueryLabels
    counters.queries.inc(table[rcode] ??= { transport, rcode: rcodeName(rcode) })
    if (truncated) counters.truncated.inc(cache.get(transport, 'transport', transport))
  }
  const answerQuery = (query: DnsQuery, address: string, transport: Transport): Uint8Array => {
    try {
      const response = answerer.answer(query, clientSource(address, overlay), transport)
      countResponse(transport, response.rcode, response.truncated)
      return response.bytes
    } catch (error) {
      counters.errors.inc(cache.get('answer', 'where', 'answer'))
      logger.error('dns.answer.failed', { name: query.question.name, type: query.question.type, error: (error as Error).message })
      countResponse(transport, RCODE.SERVFAIL, false)
      return answerer.serverFailure(query).bytes
    }
  }
  return {
    handle (bytes, address, transport) {
      let query: DnsQuery
      try {
        query = decodeQuery(bytes, transport === 'udp' ? MAX_UDP_QUERY_BYTES : MAX_TCP_MESSAGE_BYTES)
      } catch (error) {
        if (!(error instanceof DnsFormatError)) {
          counters.errors.inc(cache.get('decode', 'where', 'decode'))
          logger.error('dns.decode.failed', { source: address, error: String(error) })
          return undefined
        }
        const reply = answerer.reject(error)
        if (error.rcode !== RCODE.NOTIMP) noteMalformed(address, transport, error, reply !== undefined)
        if (reply !== undefined) countResponse(transport, reply.rcode, false)
        return reply?.bytes
      }
      return answerQuery(query, address, transport)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Sockets

interface Listeners {
  udp: UdpSocket[]
  tcp: TcpServer[]
  connections: Set<TcpSocket>
  port: number
}

function bindUdp (host: string, port: number, family: 4 | 6, onMessage: (socket: UdpSocket, message: Buffer, remote: RemoteInfo) => void, onError: (error: Error) => void): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type: family === 4 ? 'udp4' : 'udp6', ipv6Only: family === 6 })
    const onBindError = (error: Error): void => { socket.close(); reject(error) }
    socket.once('error', onBindError)
    socket.bind(port, host, () => {
      socket.off('error', onBindError)
      socket.on('error', onError)
      socket.on('message', (message, remote) => { onMessage(socket, message, remote) })
      try { socket.setRecvBufferSize(UDP_RECEIVE_BUFFER_BYTES) } catch { /* the kernel's cap applies */ }
      resolve(socket)
    })
  })
}

function bindTcp (host: string, port: number, family: 4 | 6, server: TcpServer): Promise<TcpServer> {
  return new Promise((resolve, reject) => {
    const onBindError = (error: Error): void => { reject(error) }
    server.once('error', onBindError)
    server.listen({ port, host, ipv6Only: family === 6, exclusive: true }, () => {
      server.off('error', onBindError)
      resolve(server)
    })
  })
}

function closeUdp (socket: UdpSocket): Promise<void> {
  return new Promise((resolve) => { try { socket.close(() => { resolve() }) } catch { resolve() } })
}

function closeTcp (server: TcpServer): Promise<void> {
  return new Promise((resolve) => { if (!server.listening) { resolve(); return } server.close(() => { resolve() }) })
}

function familyOf (host: string): 4 | 6 { return host.includes(':') ? 6 : 4 }

function checkOptions (options: DnsServerOptions): Required<Pick<DnsServerOptions, 'host' | 'port' | 'maxTcpConnections' | 'tcpIdleMs'>> {
  const host = options.host ?? '127.0.0.1'
  const port = options.port ?? DEFAULT_DNS_PORT
  const maxTcpConnections = options.maxTcpConnections ?? DEFAULT_MAX_TCP_CONNECTIONS
  const tcpIdleMs = options.tcpIdleMs ?? DEFAULT_TCP_IDLE_MS
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new DnsServerError('port', `must be an integer 0..65535, not ${port}`)
  if (!Number.isInteger(maxTcpConnections) || maxTcpConnections < 1) throw new DnsServerError('maxTcpConnections', `must be a positive integer, not ${maxTcpConnections}`)
  if (!Number.isFinite(tcpIdleMs) || tcpIdleMs < 1) throw new DnsServerError('tcpIdleMs', `must be a positive number of ms, not ${tcpIdleMs}`)
  for (const [field, value] of [['host', host], ['host6', options.host6]] as const) {
    if (value === undefined) continue
    try { parseAddress(value) } catch { throw new DnsServerError(field, `"${value}" is not an IP address`) }
  }
  return { host, port, maxTcpConnections, tcpIdleMs }
}

interface SocketHandlers {
  onUdpMessage: (socket: UdpSocket, message: Buffer, remote: RemoteInfo) => void
  onUdpError: (error: Error) => void
  onConnection: (state: Listeners, socket: TcpSocket) => void
  onTcpError: (error: Error) => void
}

async function bindAll (state: Listeners, hosts: readonly string[], handlers: SocketHandlers): Promise<void> {
  for (const address of hosts) {
    const family = familyOf(address)
    const udp = await bindUdp(address, state.port, family, handlers.onUdpMessage, handlers.onUdpError)
    state.udp.push(udp)
    if (state.port === 0) state.port = udp.address().port
    const server = createServer({ noDelay: true }, (socket) => { handlers.onConnection(state, socket) })
    state.tcp.push(await bindTcp(address, state.port, family, server))
    // Counted only once listening: a port taken for TCP (retried by openListeners) is no server error.
    server.on('error', handlers.onTcpError)
  }
}

async function closeListeners (state: Listeners): Promise<void> {
  for (const socket of state.connections) socket.destroy()
  await Promise.all([...state.udp.map(closeUdp), ...state.tcp.map(closeTcp)])
}

/** UDP and TCP on every host, one port. With port 0 the port UDP picks may be taken for TCP: retry. */
async function openListeners (hosts: readonly string[], port: number, handlers: SocketHandlers): Promise<Listeners> {
  for (let attempt = 1; ; attempt++) {
    const state: Listeners = { udp: [], tcp: [], connections: new Set(), port }
    try {
      await bindAll(state, hosts, handlers)
      return state
    } catch (error) {
      await closeListeners(state)
      const code = (error as NodeJS.ErrnoException).code
      if (port === 0 && code === 'EADDRINUSE' && attempt < EPHEMERAL_BIND_ATTEMPTS) continue
      throw new DnsServerError(`${hosts.join(',')}:${port}`, `cannot listen: ${(error as Error).message}`, { cause: error })
    }
  }
}

function boundAddresses (state: Listeners): DnsServerAddress[] {
  const bound: DnsServerAddress[] = []
  for (const socket of state.udp) { const a = socket.address(); bound.push({ transport: 'udp', address: a.address, family: a.family === 'IPv6' ? 6 : 4, port: a.port }) }
  for (const server of state.tcp) {
    const a = server.address()
    if (a !== null && typeof a === 'object') bound.push({ transport: 'tcp', address: a.address, family: a.family === 'IPv6' ? 6 : 4, port: a.port })
  }
  return bound
}

export function createDnsServer (options: DnsServerOptions): DnsServer {
  const { host, port, maxTcpConnections, tcpIdleMs } = checkOptions(options)
  const logger = options.logger.child({ component: 'dns-server' })
  const counters = createCounters(options.metrics)
  const answerer = createAnswerer(options.zone, options.udpPayloadSize === undefined ? {} : { udpPayloadSize: options.udpPayloadSize })
  const handler = createHandler(answerer, compileOverlay(options.overlayPrefixes ?? DEFAULT_OVERLAY_PREFIXES), counters, logger)
  const hosts = options.host6 === undefined ? [host] : [host, options.host6]
  const errorLabels = new LabelCache()
  const countError = (where: string): void => { counters.errors.inc(errorLabels.get(where, 'where', where)) }
  const handlers: SocketHandlers = {
    onUdpMessage (socket, message, remote) {
      try {
        const response = handler.handle(message, remote.address, 'udp')
        // No callback: Node then tries a synchronous send first (uv_udp_try_send), measurably
        // cheaper; a failed send surfaces as the socket's 'error' event, counted there.
        if (response !== undefined) socket.send(response, remote.port, remote.address)
      } catch (error) {
        countError('udp')
        logger.error('dns.udp.failed', { error: String(error) })
      }
    },
    onUdpError (error) { countError('udp.socket'); logger.warn('dns.udp.error', { error: error.message }) },
    onConnection (state, socket) {
      if (state.connections.size >= maxTcpConnections) { counters.tcpRejected.inc(); socket.destroy(); return }
      state.connections.add(socket)
      counters.tcpConnections.set(state.connections.size)
      serveTcpConnection(socket, { handler, tcpIdleMs, counters, countError })
      socket.once('close', () => { state.connections.delete(socket); counters.tcpConnections.set(state.connections.size) })
    },
    onTcpError (error) { countError('tcp.server'); logger.warn('dns.tcp.error', { error: error.message }) }
  }
  let listeners: Listeners | undefined
  let starting: Promise<void> | undefined
  let stopping: Promise<void> | undefined

  return {
    get port () { return listeners?.port },
    addresses: () => listeners === undefined ? [] : boundAddresses(listeners),
    async start () {
      if (stopping !== undefined) await stopping
      starting ??= openListeners(hosts, port, handlers).then(
        (state) => { listeners = state; logger.info('dns.started', { hosts, port: state.port, zone: answerer.apex }) },
        (error: unknown) => { starting = undefined; throw error }
      )
      await starting
    },
    async stop () {
      if (starting === undefined) return
      stopping ??= (async () => {
        try { await starting } catch { /* nothing was left open */ }
        const state = listeners
        listeners = undefined
        if (state !== undefined) await closeListeners(state)
        counters.tcpConnections.set(0)
        logger.info('dns.stopped', {})
      })().finally(() => { starting = undefined; stopping = undefined })
      await stopping
    }
  }
}

// ---------------------------------------------------------------------------------------------
// One TCP connection

interface TcpContext {
  handler: Handler
  tcpIdleMs: number
  counters: DnsCounters
  countError: (where: string) => void
}

/**
 * RFC 1035 §4.2.2 framing: each message is preceded by its length in two bytes. Any number of
 * queries per connection, answered in order; partial frames wait for the rest, but not longer than
 * tcpIdleMs from their first byte, so a client trickling a byte at a time cannot hold a connection
 * slot forever. Reading pauses while the kernel's send buffer is full, so a client that never reads
 * cannot grow our memory.
 */
function serveTcpConnection (socket: TcpSocket, context: TcpContext): void {
  const { handler, counters, tcpIdleMs } = context
  const address = socket.remoteAddress ?? ''
  let pending: Buffer | undefined
  let partialSinceMs: number | undefined
  const closeIdle = (): void => { counters.tcpIdleClosed.inc(); socket.destroy() }
  socket.setTimeout(tcpIdleMs)
  socket.on('timeout', closeIdle)
  socket.on('error', () => { /* a reset by the client; 'close' follows */ })
  socket.on('drain', () => { socket.resume() })
  socket.on('data', (chunk: Buffer) => {
    try {
      pending = pending === undefined || pending.byteLength === 0 ? chunk : Buffer.concat([pending, chunk])
      while (pending.byteLength >= 2) {
        const length = pending.readUInt16BE(0)
        if (pending.byteLength < 2 + length) break
        const message = pending.subarray(2, 2 + length)
        pending = pending.subarray(2 + length)
        partialSinceMs = undefined
        const response = handler.handle(message, address, 'tcp')
        if (response === undefined || socket.destroyed) continue
        const frame = Buffer.allocUnsafe(2 + response.byteLength)
        frame.writeUInt16BE(response.byteLength, 0)
        frame.set(response, 2)
        if (!socket.write(frame)) socket.pause()
      }
      if (pending.byteLength === 0) return
      partialSinceMs ??= Date.now()
      if (Date.now() - partialSinceMs > tcpIdleMs) closeIdle()
    } catch (error) {
      context.countError('tcp')
      socket.destroy()
    }
  })
}
