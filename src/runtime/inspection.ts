// The inspection bus: every actor on a node reports what it did as plain JSON (InspectionEvent).
// Sinks consume it: memory (tests), JSONL file (traces for the debugger and replay), a running
// sha256 (determinism checks), a live stream (status API). Emitting with no sink costs one branch.
import { createHash } from 'node:crypto'
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs'
import type { EventObject, InspectionEvent as XstateInspectionEvent } from 'xstate'
import type { Clock, InspectionEvent, Inspector, Unsubscribe } from './ports.ts'

export interface InspectionSink {
  write(event: InspectionEvent): void
}

export class InspectionBus implements Inspector {
  private readonly sinks: InspectionSink[] = []

  get active (): boolean { return this.sinks.length > 0 }

  emit (event: InspectionEvent): void {
    for (const sink of this.sinks) sink.write(event)
  }

  addSink (sink: InspectionSink): Unsubscribe {
    this.sinks.push(sink)
    return () => {
      const index = this.sinks.indexOf(sink)
      if (index >= 0) this.sinks.splice(index, 1)
    }
  }
}

/**
 * One line of JSONL. Keys are written in a fixed order so the same run always produces the same
 * bytes (the simulator's trace hash depends on it).
 */
export function traceLine (event: InspectionEvent): string {
  const ordered: Record<string, unknown> = { t: event.t, node: event.node, kind: event.kind, systemId: event.systemId, actor: event.actor }
  if (event.parent !== undefined) ordered.parent = event.parent
  if (event.event !== undefined) ordered.event = event.event
  if (event.source !== undefined) ordered.source = event.source
  if (event.state !== undefined) ordered.state = event.state
  if (event.detail !== undefined) ordered.detail = event.detail
  return JSON.stringify(ordered)
}

export interface MemorySink extends InspectionSink {
  readonly events: InspectionEvent[]
  /** Events dropped because the limit was reached. */
  readonly dropped: number
}

export function createMemorySink (options: { limit?: number } = {}): MemorySink {
  const limit = options.limit ?? 1_000_000
  const events: InspectionEvent[] = []
  let dropped = 0
  return {
    events,
    get dropped () { return dropped },
    write (event) {
      if (events.length < limit) events.push(event)
      else dropped++
    }
  }
}

export interface HashSink extends InspectionSink {
  /** sha256 hex of the JSONL trace written so far, as if every line ended with "\n". */
  digest(): string
  readonly lines: number
}

export function createHashSink (): HashSink {
  const hash = createHash('sha256')
  let lines = 0
  return {
    get lines () { return lines },
    write (event) { hash.update(traceLine(event) + '\n'); lines++ },
    digest () { return hash.copy().digest('hex') }
  }
}

export interface FileSink extends InspectionSink {
  /** Flush buffered lines to the file and fsync. */
  flush(): void
  close(): void
}

/** JSONL trace file. Buffers lines and writes in blocks; synchronous so a trace is never reordered. */
export function createJsonlFileSink (path: string, options: { bufferBytes?: number } = {}): FileSink {
  const limit = options.bufferBytes ?? 64 * 1024
  const fd = openSync(path, 'w')
  let buffer: string[] = []
  let size = 0
  let open = true
  const flush = (): void => {
    if (!open || buffer.length === 0) return
    writeSync(fd, buffer.join(''))
    buffer = []
    size = 0
  }
  return {
    write (event) {
      if (!open) return
      const line = traceLine(event) + '\n'
      buffer.push(line)
      size += line.length
      if (size >= limit) flush()
    },
    flush () { flush(); if (open) fsyncSync(fd) },
    close () {
      if (!open) return
      flush()
      fsyncSync(fd)
      closeSync(fd)
      open = false
    }
  }
}

/**
 * What the debugger's sequence view needs of a received session frame: its type, and for a
 * KEEPALIVE the sender's clock when it left (the frame carries it for RTT). One field lookup.
 */
export function sessionFrameDetail (event: EventObject): Record<string, unknown> | undefined {
  if (event.type !== 'frame.received') return undefined
  const frame = (event as { frame?: { type?: unknown, sentAtMs?: unknown } }).frame
  if (frame === undefined || typeof frame.type !== 'string') return undefined
  return frame.type === 'keepalive' && typeof frame.sentAtMs === 'number' ? { frame: frame.type, sentAtMs: frame.sentAtMs } : { frame: frame.type }
}

export interface ActorInspectionMeta {
  node: string
  systemId: string
  actor: string
  parent?: string
  /** Written on the actor.started record, e.g. the node's peer id and location for the debugger's map. */
  startDetail?: Record<string, unknown>
  /**
   * A few fields of a received event worth keeping (a session frame's type, say), written as the
   * actor.event record's detail. Called only while a sink is attached; keep it to a field lookup.
   */
  describe?: (event: EventObject) => Record<string, unknown> | undefined
}

/**
 * Adapts xstate's inspection API for one root actor: reports the events the actor receives and
 * its state whenever the state value changes. Invoked helpers inside the actor are not reported;
 * their effects show up as the events they send back.
 */
export function xstateInspector (bus: Inspector & { readonly active?: boolean }, clock: Clock, meta: ActorInspectionMeta): (event: XstateInspectionEvent) => void {
  let rootSessionId: string | undefined
  let lastState: string | undefined
  const base = (kind: InspectionEvent['kind']): InspectionEvent => {
    const event: InspectionEvent = { t: clock.now(), node: meta.node, kind, systemId: meta.systemId, actor: meta.actor }
    if (meta.parent !== undefined) event.parent = meta.parent
    return event
  }
  return (inspection) => {
    // The root is remembered even with no sink attached: a live stream that attaches later (the
    // status API's /v1/inspect) must still see this actor's events.
    if (inspection.type === '@xstate.actor') {
      if (rootSessionId === undefined) {
        rootSessionId = inspection.actorRef.sessionId
        if (bus.active !== false) {
          const record = base('actor.started')
          if (meta.startDetail !== undefined) record.detail = meta.startDetail
          bus.emit(record)
        }
      }
      return
    }
    if (bus.active === false) return
    if (inspection.actorRef.sessionId !== rootSessionId) return
    if (inspection.type === '@xstate.event') {
      const record = base('actor.event')
      record.event = inspection.event.type
      const source = inspection.sourceRef as { systemId?: string } | undefined
      if (source?.systemId !== undefined && source.systemId !== meta.systemId) record.source = source.systemId
      const detail = meta.describe?.(inspection.event)
      if (detail !== undefined) record.detail = detail
      bus.emit(record)
    } else if (inspection.type === '@xstate.snapshot') {
      const snapshot = inspection.snapshot as { value?: unknown, status?: string }
      const state = JSON.stringify(snapshot.value ?? null)
      if (state === lastState && snapshot.status === 'active') return
      lastState = state
      const record = base(snapshot.status === 'active' ? 'actor.snapshot' : 'actor.stopped')
      record.state = snapshot.value
      record.event = inspection.event.type
      bus.emit(record)
    }
  }
}
