// Live inspection: reads running nodes' GET /v1/inspect (Server-Sent Events, one trace line per
// `data:`) into an InspectStore. On connect it also reads /v1/status (name, location) and
// /v1/actors (the supervision tree with each actor's state), so actors that have not changed since
// show their current state. Reconnects with capped back-off, a bounded number of times.
import type { InspectionEvent } from './ports.ts'
import type { SupervisionTree } from './supervisor.ts'
import { MAX_TRACE_LINE_BYTES, parseTraceRecord, type InspectStore, type NodeInfo } from './inspect-store.ts'

const MAX_RECONNECTS = 100
const MAX_BACKOFF_MS = 5000
const REQUEST_TIMEOUT_MS = 5000

export interface RelayInit {
  store: InspectStore
  urls: string[]
  log: (line: string) => void
  now?: () => number
}

/** The node's base URL: `http://h:p`, `http://h:p/` and `http://h:p/v1/inspect` all name the same node. */
export function nodeBaseUrl (text: string): URL {
  const url = new URL(text)
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`${text}: not an http(s) URL`)
  url.pathname = url.pathname.replace(/\/?(v1\/inspect)?\/?$/, '') + '/'
  return url
}

export class InspectRelay {
  private readonly controller = new AbortController()
  private readonly running: Array<Promise<void>> = []

  constructor (private readonly init: RelayInit) {}

  start (): void {
    if (this.running.length > 0) return
    for (const url of this.init.urls) this.running.push(this.follow(nodeBaseUrl(url)))
  }

  async stop (): Promise<void> {
    this.controller.abort()
    await Promise.allSettled(this.running)
  }

  private async follow (base: URL): Promise<void> {
    const { signal } = this.controller
    let failures = 0
    while (!signal.aborted && failures < MAX_RECONNECTS) {
      try {
        await this.stream(base, () => { failures = 0 })
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
    const response = await fetch(new URL('v1/inspect', base), { signal: this.controller.signal, headers: { accept: 'text/event-stream' } })
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

  /** Current state of every actor of the node, as synthetic snapshot records. */
  private async seed (base: URL): Promise<void> {
    const get = async <T>(path: string): Promise<T> => {
      const response = await fetch(new URL(path, base), { signal: AbortSignal.any([this.controller.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]) })
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
