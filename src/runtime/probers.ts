// Prober port adapters. Peer probes (direct and indirect) run over the Overlay with the probe
// protocol, identically in both worlds; service checks are real sockets and HTTP on a real node
// and the world's service table in the simulator.
import { connect } from 'node:net'
import { decodeProbeFrame, encodeProbeFrame, PROBE_PROTOCOL, type ProbeFrame } from '../protocols/probe-codec.ts'
import type { Clock, FrameStream, Overlay, PeerId, Prober, ProbeResult, ProbeTarget, Random } from './ports.ts'

/** Longest a helper will spend on someone else's ping-req, whatever it asks for. */
const MAX_INDIRECT_TIMEOUT_MS = 10_000

export interface PeerProbes {
  probePeer(peer: PeerId, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult>
  probeVia(via: PeerId, target: PeerId, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult>
  stop(): void
}

const failure = (error: string): ProbeResult => ({ ok: false, latencyMs: 0, error })

/** Serves the probe protocol on `overlay` and probes other peers through it. */
export function createPeerProbes (components: { overlay: Overlay, clock: Clock, random: Random }): PeerProbes {
  const { overlay, clock, random } = components

  /** One request, one answer on a fresh stream, bounded by timeoutMs on the given clock. */
  const exchange = async (peer: PeerId, request: ProbeFrame, timeoutMs: number, signal?: AbortSignal): Promise<{ reply: ProbeFrame, elapsedMs: number } | { error: string }> => {
    let stream: FrameStream | undefined
    return await new Promise((resolve) => {
      let settled = false
      const finish = (result: { reply: ProbeFrame, elapsedMs: number } | { error: string }): void => {
        if (settled) return
        settled = true
        clock.clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        stream?.close()
        resolve(result)
      }
      const timer = clock.setTimeout(() => finish({ error: `timeout after ${timeoutMs} ms` }), timeoutMs)
      const onAbort = (): void => finish({ error: 'aborted' })
      signal?.addEventListener('abort', onAbort, { once: true })
      overlay.dial(peer, { signal }).then(async () => await overlay.openStream(peer, PROBE_PROTOCOL, { signal })).then((opened) => {
        stream = opened
        if (settled) { opened.close(); return }
        const sentAt = clock.now()
        opened.onFrame((bytes) => {
          try {
            const reply = decodeProbeFrame(bytes)
            if (reply.nonce === request.nonce) finish({ reply, elapsedMs: clock.now() - sentAt })
          } catch (error) { finish({ error: (error as Error).message }) }
        })
        opened.onClose((error) => finish({ error: `stream closed${error === undefined ? '' : `: ${error.message}`}` }))
        opened.send(encodeProbeFrame(request))
      }, (error: Error) => finish({ error: error.message }))
    })
  }

  const probePeer = async (peer: PeerId, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult> => {
    const outcome = await exchange(peer, { type: 'ping', nonce: random.nextUint32() }, timeoutMs, signal)
    if ('error' in outcome) return failure(outcome.error)
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

  return { probePeer, probeVia, stop: () => overlay.unhandleStream(PROBE_PROTOCOL) }
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
