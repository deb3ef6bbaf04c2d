// Live inspection: reads running nodes' GET /v1/inspect into an InspectStore, as Server-Sent Events
// (one trace line per `data:`) for http(s):// URLs or as WebSocket messages (one trace line each)
// for ws(s):// URLs; with a token, every request carries it as a bearer token. On connect it also
// reads /v1/status (name, peer id, location) and /v1/actors (the supervision tree with each actor's
// state), so actors that have not changed since show their current state. Reconnects with capped
// back-off, a bounded number of times.
import { WebSocket } from 'ws'
import type { InspectionEvent } from './ports.ts'
import type { SupervisionTree } from './supervisor.ts'
import { MAX_TRACE_LINE_BYTES, parseTraceRecord, type InspectStore, type NodeInfo } from './inspect-store.ts'

const MAX_RECONNECTS = 100
const MAX_BACKOFF_MS = 5000
const REQUEST_TIMEOUT_MS = 5000
/** Stream records held while /v1/status and /v1/actors are read; a busy node sends thousands a second. */
const MAX_WAITING_RECORDS = 100_000

export interface RelayInit {
  store: InspectStore
  urls: string[]
  /** Sent as `Authorization: Bearer <token>` (the nodes' statusApi.inspectToken). */
  token?: string
  log: (line: string) => void
  now?: () => number
}

/**
 * The node's base URL for its JSON views: `http://h:p`, `http://h:p/` and `http://h:p/v1/inspect`
 * all name the same node; `ws://h:p` names it too (the stream then goes over a WebSocket).
 */
export function nodeBaseUrl (text: string): URL {
  const url = new URL(text)
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol)) throw new TypeError(`${text}: not an http(s):// or ws(s):// URL`)
  if (url.protocol === 'ws:') url.protocol = 'http:'
  if (url.protocol === 'wss:') url.protocol = 'https:'
  url.pathname = url.pathname.replace(/\/?(v1\/inspect)?\/?$/, '') + '/'
  return url
}

const isWebSocketUrl = (text: string): boolean => /^wss?:/i.test(text)

export class InspectRelay {
  private readonly controller = new AbortController()
  private readonly running: Array<Promise<void>> = []

  constructor (private readonly init: RelayInit) {}

  start (): void {
    if (this.running.length > 0) return
    for (const url of this.init.urls) this.running.push(this.follow(nodeBaseUrl(url), isWebSocketUrl(url)))
  }

  async stop (): Promise<void> {
    this.controller.abort()
    await Promise.allSettled(this.running)
  }

  private get headers (): Record<string, string> {
    return this.init.token === undefined ? {} : { authorization: `Bearer ${this.init.token}` }
  }

  private async follow (base: URL, websocket: boolean): Promise<void> {
    const { signal } = this.controller
    let failures = 0
    while (!signal.aborted && failures < MAX_RECONNECTS) {
      try {
        if (websocket) await this.streamWebSocket(base, () => { failures = 0 })
        else await this.stream(base, () => { failures = 0 })
        this.init.log(`inspect: ${base.href} closed its stream; reconnecting`)
      } catch (error) {
        if (signal.aborted) return
        this.init.log(`inspect: ${base.href}: ${(error as Error).message}; reconnecting`)
      }
      failures++
      const delayMs = Math.min(MAX_BACKOFF_MS, 250 * 2 ** Math.min(failures, 5))
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delayMs)
        signal.addEventListener('abort', () => { clearTimeout(timer); resolve() }, { once: true })
      })
    }
    if (!signal.aborted) this.init.log(`inspect: ${base.href}: gave up after ${MAX_RECONNECTS} attempts`)
  }

  private async stream (base: URL, connected: () => void): Promise<void> {
    const { store } = this.init
    const response = await fetch(new URL('v1/inspect', base), { signal: this.controller.signal, headers: { accept: 'text/event-stream', ...this.headers } })
    if (!response.ok || response.body === null) throw new Error(`GET /v1/inspect: HTTP ${response.status}`)
    connected()
    await this.seed(base)
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
    let buffer = ''
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return
      buffer += value
      if (buffer.length > MAX_TRACE_LINE_BYTES * 4) buffer = buffer.slice(buffer.lastIndexOf('\n') + 1)
      let newline: number
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline)
        buffer = buffer.slice(newline + 1)
        if (!line.startsWith('data: ')) continue
        const record = parseTraceRecord(line.slice(6), store.intern)
        if (typeof record !== 'string') store.append(record)
      }
    }
  }

  /** The same stream over a WebSocket; records that arrive while seeding wait so they land after it. */
  private async streamWebSocket (base: URL, connected: () => void): Promise<void> {
    const { store } = this.init
    const url = new URL('v1/inspect', base)
    url.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:'
    const socket = new WebSocket(url, { headers: this.headers, maxPayload: MAX_TRACE_LINE_BYTES, handshakeTimeout: REQUEST_TIMEOUT_MS })
    const abort = (): void => { socket.terminate() }
    this.controller.signal.addEventListener('abort', abort, { once: true })
    let waiting: string[] | undefined = []
    const append = (line: string): void => {
      const record = parseTraceRecord(line, store.intern)
      if (typeof record !== 'string') store.append(record)
    }
    socket.on('message', (data, isBinary) => {
      if (isBinary) return
      const line = data.toString()
      if (waiting === undefined) append(line)
      else if (waiting.length < MAX_WAITING_RECORDS) waiting.push(line)
    })
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('open', resolve)
        socket.once('error', reject)
        socket.once('unexpected-response', (request, response) => {
          request.destroy()
          reject(new Error(`GET /v1/inspect (WebSocket): HTTP ${response.statusCode ?? '?'}`))
        })
      })
      socket.on('error', () => { socket.terminate() })
      connected()
      await this.seed(base)
      for (const line of waiting) append(line)
      waiting = undefined
      await closed
    } finally {
      this.controller.signal.removeEventListener('abort', abort)
      socket.terminate()
    }
  }

  /** Current state of every actor of the node, as synthetic snapshot records. */
  private async seed (base: URL): Promise<void> {
    const get = async <T>(path: string): Promise<T> => {
      const response = await fetch(new URL(path, base), { headers: this.headers, signal: AbortSignal.any([this.controller.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]) })
      if (!response.ok) throw new Error(`GET /${path}: HTTP ${response.status}`)
      return await response.json() as T
    }
    const status = await get<{ name: string, peerId?: string, location?: NodeInfo['location'] }>('v1/status')
    const info: NodeInfo = { name: status.name }
    if (typeof status.peerId === 'string') info.peerId = status.peerId
    if (status.location !== undefined) info.location = status.location
    this.init.store.setNodeInfo(info)
    const tree = await get<SupervisionTree>('v1/actors')
    const t = (this.init.now ?? Date.now)()
    const visit = (node: SupervisionTree, parent: string | undefined): void => {
      if (node.kind !== 'supervisor' && node.state !== undefined) {
        const record: InspectionEvent = { t, node: status.name, kind: 'actor.snapshot', systemId: node.id, actor: node.kind, state: node.state, event: 'inspect.connected' }
        if (parent !== undefined) record.parent = parent
        this.init.store.append(record)
      }
      for (const child of node.children ?? []) visit(child, node.id)
    }
    visit(tree, undefined)
  }
}
