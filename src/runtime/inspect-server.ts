// `form-anycast inspect`: the debugger's HTTP server on loopback. It serves the UI (plain ES modules
// from src/inspect-ui/, elkjs from the package's own node_modules: nothing from the internet) and a
// small JSON API over an InspectStore; the browser asks for the state at a record index, so a
// trace of millions of records never crosses the wire whole.
import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { ACTOR_KINDS, chartOf } from './chart-export.ts'
import type { EventFilter, InspectStore } from './inspect-store.ts'
import { MAX_SEQUENCE_WINDOW_MS, sequenceAt } from './inspect-sequence.ts'

const UI_DIR = new URL('../inspect-ui/', import.meta.url)
const UI_FILES: Record<string, { file: string, type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/chart-view.js': { file: 'chart-view.js', type: 'text/javascript; charset=utf-8' },
  '/sequence-view.js': { file: 'sequence-view.js', type: 'text/javascript; charset=utf-8' },
  '/map-view.js': { file: 'map-view.js', type: 'text/javascript; charset=utf-8' },
  '/svg.js': { file: 'svg.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' }
}
const ELK_PATH = createRequire(import.meta.url).resolve('elkjs/lib/elk.bundled.js')
const MAX_EVENTS = 1000

export interface InspectServerInit {
  store: InspectStore
  host: string
  port: number
  /** Shown in the UI: the trace file or the connected URLs. */
  source: string
}

export class InspectServer {
  private server: Server | undefined

  constructor (private readonly init: InspectServerInit) {}

  get url (): string {
    const address = this.server?.address() as AddressInfo | null | undefined
    if (address === undefined || address === null) throw new Error('inspect server is not listening')
    return `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`
  }

  async start (): Promise<void> {
    if (this.server !== undefined) return
    const server = createServer((request, response) => { this.handle(request, response) })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.init.port, this.init.host, () => resolve())
    })
    this.server = server
  }

  async stop (): Promise<void> {
    const server = this.server
    if (server === undefined) return
    this.server = undefined
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  private handle (request: IncomingMessage, response: ServerResponse): void {
    const url = new URL(request.url ?? '/', 'http://localhost')
    if (request.method !== 'GET' && request.method !== 'HEAD') { send(response, 405, { error: 'the debugger only reads' }); return }
    const asset = UI_FILES[url.pathname]
    if (asset !== undefined) { sendFile(response, fileURLToPath(new URL(asset.file, UI_DIR)), asset.type); return }
    if (url.pathname === '/vendor/elk.bundled.js') { sendFile(response, ELK_PATH, 'text/javascript; charset=utf-8'); return }
    try {
      const body = this.api(url)
      if (body === undefined) send(response, 404, { error: `no such path ${url.pathname}` })
      else send(response, 200, body)
    } catch (error) {
      if (error instanceof QueryError) send(response, 400, { error: error.message })
      else send(response, 500, { error: (error as Error).message })
    }
  }

  private api (url: URL): unknown {
    const { store } = this.init
    const query = url.searchParams
    const at = (): number => {
      const value = query.get('at')
      if (value === null) return store.end - 1
      const index = Number(value)
      if (!Number.isInteger(index)) throw new QueryError(`at: must be a record index, got ${JSON.stringify(value)}`)
      return Math.max(store.first, Math.min(index, store.end - 1))
    }
    switch (url.pathname) {
      case '/api/meta': {
        const first = store.record(store.first)
        const last = store.record(store.end - 1)
        return {
          mode: store.options.mode,
          source: this.init.source,
          first: store.first,
          end: store.end,
          tFirst: first?.t ?? 0,
          tLast: last?.t ?? 0,
          actors: store.actorCount,
          nodes: store.nodeList(),
          kinds: store.actorKinds()
        }
      }
      case '/api/index': {
        const t = Number(query.get('t'))
        if (!Number.isFinite(t)) throw new QueryError('t: must be a time in ms')
        return { at: store.indexAtTime(t) }
      }
      case '/api/node': {
        const name = required(query, 'name')
        const index = at()
        return { node: name, at: index, record: store.record(index), actors: store.nodeAt(name, index) }
      }
      case '/api/actor': {
        const index = at()
        const view = store.actorAt(required(query, 'node'), required(query, 'id'), index)
        if (view === undefined) throw new QueryError(`no actor ${JSON.stringify(query.get('id'))} on node ${JSON.stringify(query.get('node'))}`)
        return { at: index, record: store.record(index), actor: view }
      }
      case '/api/events': {
        const filter: EventFilter = {}
        for (const field of ['node', 'actor', 'type'] as const) {
          const value = query.get(field)
          if (value !== null && value !== '') filter[field] = value
        }
        const limit = Math.min(MAX_EVENTS, Math.max(1, Number(query.get('limit') ?? 200) || 200))
        return { at: at(), events: store.eventsAt(at(), filter, limit) }
      }
      case '/api/sequence': {
        const windowMs = Number(query.get('windowMs') ?? 2000)
        if (!Number.isFinite(windowMs) || windowMs <= 0 || windowMs > MAX_SEQUENCE_WINDOW_MS) throw new QueryError(`windowMs: must be a duration in ms from 1 to ${MAX_SEQUENCE_WINDOW_MS}`)
        const node = query.get('node')
        return sequenceAt(store, at(), { windowMs, ...(node === null || node === '' ? {} : { node }) })
      }
      default: {
        const chart = /^\/api\/chart\/([a-z-]+)$/.exec(url.pathname)
        if (chart === null) return undefined
        if (!ACTOR_KINDS.includes(chart[1]!)) throw new QueryError(`no chart for actor kind ${JSON.stringify(chart[1])}`)
        return chartOf(chart[1]!)
      }
    }
  }
}

class QueryError extends Error { override name = 'QueryError' }

function required (query: URLSearchParams, name: string): string {
  const value = query.get(name)
  if (value === null || value === '') throw new QueryError(`${name}: required`)
  return value
}

function send (response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' })
  response.end(JSON.stringify(body))
}

function sendFile (response: ServerResponse, path: string, type: string): void {
  let body: Buffer
  try { body = readFileSync(path) } catch (error) { send(response, 500, { error: (error as Error).message }); return }
  response.writeHead(200, { 'content-type': type, 'cache-control': 'no-cache' })
  response.end(body)
}
