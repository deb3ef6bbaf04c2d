// Prober port adapters. Peer probes (direct and indirect) run over the Overlay with the probe
// protocol, identically in both worlds; service checks are real sockets and HTTP on a real node
// and the world's service table in the simulator.
import { connect } from 'node:net'
import { decodeProbeFrame, encodeProbeFrame, PROBE_PROTOCOL, type ProbeFrame } from '../protocols/probe-codec.ts'
import type { Clock, FrameStream, Overlay, PeerId, Prober, ProbeResult, ProbeTarget, Random } from './ports.ts'

/** Longest a helper will spend on someone else's ping-req, whatever it asks for. */
const MAX_INDIRECT_TIMEOUT_MS = 10_000
/** Dialling a peer and opening its probe stream; a failure to open fails the probe waiting on it. */
const STREAM_OPEN_TIMEOUT_MS = 3_000
/** Unanswered probes in a row after which a probe stream is presumed dead and reopened. */
const STALE_AFTER_TIMEOUTS = 2

/** `promise`, or a rejection as soon as `signal` aborts (the promise itself runs on). */
async function withAbort<T> (promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) throw new Error('aborted')
  return await new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new Error('aborted'))
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then((value) => { signal.removeEventListener('abort', onAbort); resolve(value) }, (error: unknown) => { signal.removeEventListener('abort', onAbort); reject(error as Error) })
  })
}

export interface PeerProbes {
  probePeer(peer: PeerId, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult>
  probeVia(via: PeerId, target: PeerId, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult>
  stop(): void
}

const failure = (error: string): ProbeResult => ({ ok: false, latencyMs: 0, error })

/** Serves the probe protocol on `overlay` and probes other peers through it. */
export function createPeerProbes (components: { overlay: Overlay, clock: Clock, random: Random }): PeerProbes {
  const { overlay, clock, random } = components

  // One probe stream per peer, kept open and shared by every probe to it (requests and answers
  // matched by nonce), so a probe costs one round trip, as a SWIM ping over UDP does. Opening the
  // stream (dial, protocol negotiation: a round trip or two more) is bounded separately and not
  // charged to the probe's timeout; otherwise no origin more than timeout/2 away could ever answer
  // in time. A stream that closes, or misses STALE_AFTER_TIMEOUTS answers in a row, is replaced.
  interface ProbeChannel { stream: FrameStream, pending: Map<number, (reply: ProbeFrame) => void>, timeouts: number }
  const channels = new Map<PeerId, ProbeChannel>()
  const opening = new Map<PeerId, Promise<ProbeChannel>>()

  const drop = (peer: PeerId, channel: ProbeChannel): void => {
    if (channels.get(peer) === channel) channels.delete(peer)
    channel.pending.clear()
    channel.stream.close()
  }

  const channelTo = async (peer: PeerId, signal?: AbortSignal): Promise<ProbeChannel> => {
    const open = channels.get(peer)
    if (open !== undefined && !open.stream.closed) return open
    let pending = opening.get(peer)
    if (pending === undefined) {
      const controller = new AbortController()
      const timer = clock.setTimeout(() => controller.abort(), STREAM_OPEN_TIMEOUT_MS)
      pending = overlay.dial(peer, { signal: controller.signal })
        .then(async () => await overlay.openStream(peer, PROBE_PROTOCOL, { signal: controller.signal }))
        .then((stream) => {
          const channel: ProbeChannel = { stream, pending: new Map(), timeouts: 0 }
          stream.onFrame((bytes) => {
            let reply: ProbeFrame
            try { reply = decodeProbeFrame(bytes) } catch { drop(peer, channel); return }
            const resolve = channel.pending.get(reply.nonce)
            if (resolve === undefined) return // a late answer to a probe that timed out
            channel.pending.delete(reply.nonce)
            channel.timeouts = 0
            resolve(reply)
          })
          stream.onClose(() => drop(peer, channel))
          channels.set(peer, channel)
          return channel
        })
        .finally(() => { clock.clearTimeout(timer); opening.delete(peer) })
      opening.set(peer, pending)
    }
    if (signal === undefined) return await pending
    return await withAbort(pending, signal)
  }

  /** One request, one answer on the peer's probe stream; the answer bounded by timeoutMs on the given clock. */
  const exchange = async (peer: PeerId, request: ProbeFrame, timeoutMs: number, signal?: AbortSignal): Promise<{ reply: ProbeFrame, elapsedMs: number } | { error: string, inconclusive?: true }> => {
    // The stream may take longer than one probe to open (a far peer: dial and negotiation cost
    // round trips): this probe is then inconclusive, not failed, the opening goes on, and the next
    // probe finds the stream ready. An opening that fails fails the probe waiting on it.
    let channel: ProbeChannel
    const openTimer = new AbortController()
    const openTimeout = clock.setTimeout(() => openTimer.abort(), timeoutMs)
    try {
      channel = await channelTo(peer, signal === undefined ? openTimer.signal : AbortSignal.any([signal, openTimer.signal]))
    } catch (error) {
      if (openTimer.signal.aborted && signal?.aborted !== true) return { error: `the probe stream was still opening after ${timeoutMs} ms`, inconclusive: true }
      return { error: (error as Error).message }
    } finally {
      clock.clearTimeout(openTimeout)
    }
    return await new Promise((resolve) => {
      let settled = false
      const finish = (result: { reply: ProbeFrame, elapsedMs: number } | { error: string }): void => {
        if (settled) return
        settled = true
        clock.clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        channel.pending.delete(request.nonce)
        resolve(result)
      }
      const sentAt = clock.now()
      const timer = clock.setTimeout(() => {
        if (++channel.timeouts >= STALE_AFTER_TIMEOUTS) drop(peer, channel)
        finish({ error: `timeout after ${timeoutMs} ms` })
      }, timeoutMs)
      const onAbort = (): void => finish({ error: 'aborted' })
      signal?.addEventListener('abort', onAbort, { once: true })
      channel.pending.set(request.nonce, (reply) => finish({ reply, elapsedMs: clock.now() - sentAt }))
      if (channel.stream.closed || !channel.stream.send(encodeProbeFrame(request))) finish({ error: 'stream closed' })
    })
  }

  const probePeer = async (peer: PeerId, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult> => {
    const outcome = await exchange(peer, { type: 'ping', nonce: random.nextUint32() }, timeoutMs, signal)
    if ('error' in outcome) return outcome.inconclusive === true ? { ...failure(outcome.error), inconclusive: true } : failure(outcome.error)
    return outcome.reply.type === 'pong' ? { ok: true, latencyMs: outcome.elapsedMs } : failure(`unexpected ${outcome.reply.type}`)
  }

  const probeVia = async (via: PeerId, target: PeerId, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult> => {
    // The helper gets most of the budget; the rest covers our round trip to it.
    const outcome = await exchange(via, { type: 'ping-req', nonce: random.nextUint32(), target, timeoutMs: Math.round(timeoutMs * 0.8) }, timeoutMs, signal)
    if ('error' in outcome) return failure(`via ${via}: ${outcome.error}`)
    const reply = outcome.reply
    if (reply.type !== 'ping-req-ack') return failure(`unexpected ${reply.type}`)
    return reply.ok ? { ok: true, latencyMs: reply.latencyMs } : failure(`${via} could not reach ${target}`)
  }

  overlay.handleStream(PROBE_PROTOCOL, (stream) => {
    stream.onFrame((bytes) => {
      let frame: ProbeFrame
      try { frame = decodeProbeFrame(bytes) } catch { stream.close(); return }
      if (frame.type === 'ping') {
        stream.send(encodeProbeFrame({ type: 'pong', nonce: frame.nonce }))
      } else if (frame.type === 'ping-req') {
        const nonce = frame.nonce
        probePeer(frame.target, Math.min(frame.timeoutMs, MAX_INDIRECT_TIMEOUT_MS)).then((result) => {
          stream.send(encodeProbeFrame({ type: 'ping-req-ack', nonce, ok: result.ok, latencyMs: result.latencyMs }))
        }, () => stream.close())
      } else {
        stream.close()
      }
    })
  })

  return {
    probePeer,
    probeVia,
    stop: () => {
      overlay.unhandleStream(PROBE_PROTOCOL)
      for (const [peer, channel] of channels) drop(peer, channel)
    }
  }
}

async function probeTcp (host: string, port: number, timeoutMs: number, clock: Clock): Promise<ProbeResult> {
  const started = clock.now()
  return await new Promise((resolve) => {
    const socket = connect({ host, port, timeout: timeoutMs })
    const done = (result: ProbeResult): void => { socket.destroy(); resolve(result) }
    socket.once('connect', () => done({ ok: true, latencyMs: clock.now() - started }))
    socket.once('timeout', () => done(failure(`tcp ${host}:${port}: timeout after ${timeoutMs} ms`)))
    socket.once('error', (error) => done(failure(`tcp ${host}:${port}: ${error.message}`)))
  })
}

async function probeHttp (url: string, expectStatus: number | undefined, timeoutMs: number, clock: Clock, signal?: AbortSignal): Promise<ProbeResult> {
  const started = clock.now()
  try {
    const timeout = AbortSignal.timeout(timeoutMs)
    const response = await fetch(url, { signal: signal === undefined ? timeout : AbortSignal.any([timeout, signal]), redirect: 'manual' })
    await response.body?.cancel()
    const wanted = expectStatus === undefined ? response.status >= 200 && response.status < 400 : response.status === expectStatus
    return wanted ? { ok: true, latencyMs: clock.now() - started } : failure(`http ${url}: status ${response.status}`)
  } catch (error) {
    return failure(`http ${url}: ${(error as Error).name === 'TimeoutError' ? `timeout after ${timeoutMs} ms` : (error as Error).message}`)
  }
}

/** The real node's prober: sockets and HTTP for services, the overlay for peers. */
export function createNetProber (peers: PeerProbes, clock: Clock): Prober {
  return {
    probe: async (target: ProbeTarget, options) => {
      switch (target.kind) {
        case 'tcp': return await probeTcp(target.host, target.port, options.timeoutMs, clock)
        case 'http': return await probeHttp(target.url, target.expectStatus, options.timeoutMs, clock, options.signal)
        case 'peer': return await peers.probePeer(target.peerId, options.timeoutMs, options.signal)
      }
    },
    probeVia: async (via, target, options) => await peers.probeVia(via, target, options.timeoutMs, options.signal)
  }
}

/** What the simulated world says about a service check: up or not, and how long it takes. */
export type ServiceOracle = (target: Exclude<ProbeTarget, { kind: 'peer' }>) => { up: boolean, latencyMs: number }

/** The simulator's prober: service checks answered by the world after their latency on the clock. */
export function createSimProber (peers: PeerProbes, clock: Clock, oracle: ServiceOracle): Prober {
  return {
    probe: async (target, options) => {
      if (target.kind === 'peer') return await peers.probePeer(target.peerId, options.timeoutMs, options.signal)
      // A down service refuses at once, as a dead process's port does; a slow one times out.
      const { up, latencyMs } = oracle(target)
      await new Promise<void>((resolve) => clock.setTimeout(resolve, Math.min(latencyMs, options.timeoutMs)))
      if (!up) return failure('service down: connection refused')
      return latencyMs <= options.timeoutMs ? { ok: true, latencyMs } : failure(`timeout after ${options.timeoutMs} ms`)
    },
    probeVia: async (via, target, options) => await peers.probeVia(via, target, options.timeoutMs, options.signal)
  }
}
