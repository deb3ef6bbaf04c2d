import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createActor, type Actor } from 'xstate'
import { defaultPeerSessionConfig, peerSessionMachine, sessionStateName, type PeerSessionConfig, type SessionListener, type SessionTransport } from '../../src/actors/peer-session.ts'
import { VirtualClock } from '../../src/runtime/clock.ts'
import { createRandom } from '../../src/runtime/random.ts'
import { encode, NotificationCode, decode } from '../../src/protocols/session-codec.ts'
import { createFramePair, type FramePair } from '../support/frame-pair.ts'
import type { FrameStream } from '../../src/runtime/ports.ts'

type Session = Actor<typeof peerSessionMachine>

interface Harness {
  clock: VirtualClock
  a: Session
  b: Session
  pairs: FramePair[]
  dials: number[]
}

/** Node "a" (smaller id, so it dials) and node "b"; every dial opens a new stream pair. */
function harness (options: { listener?: SessionListener, config?: Partial<PeerSessionConfig>, bConfig?: Partial<PeerSessionConfig>, bNetwork?: string, latencyMs?: number, refuseDials?: number } = {}): Harness {
  const clock = new VirtualClock()
  const random = createRandom(7)
  const pairs: FramePair[] = []
  const dials: number[] = []
  let refusals = options.refuseDials ?? 0
  let b: Session | undefined
  const transport: SessionTransport = {
    async openSession () {
      dials.push(clock.now())
      await Promise.resolve()
      if (refusals > 0) { refusals--; throw new Error('connection refused') }
      const pair = createFramePair(clock, { aId: 'a', bId: 'b', latencyMs: options.latencyMs ?? 10 })
      pairs.push(pair)
      b?.send({ type: 'session.incoming', stream: pair.b })
      return pair.a
    }
  }
  const unused: SessionTransport = { openSession: async () => { throw new Error('b never dials') } }
  const make = (local: string, peer: string, network: string, config: Partial<PeerSessionConfig>, t: SessionTransport, listener?: SessionListener): Session =>
    createActor(peerSessionMachine, {
      clock,
      input: { localNodeId: local, peerId: peer, networkId: network, config: { ...defaultPeerSessionConfig, ...config }, transport: t, clock, random: random.fork(local), ...(listener === undefined ? {} : { listener }) }
    })
  const a = make('a', 'b', 'net', options.config ?? {}, transport)
  b = make('b', 'a', options.bNetwork ?? 'net', options.bConfig ?? options.config ?? {}, unused, options.listener)
  a.start(); b.start()
  return { clock, a, b, pairs, dials }
}

const state = (session: Session): string => sessionStateName(session.getSnapshot().value)

/** Let promise callbacks (the dial) settle between virtual-time steps. */
async function advance (clock: VirtualClock, ms: number, stepMs = 5): Promise<void> {
  for (let elapsed = 0; elapsed < ms; elapsed += stepMs) {
    await Promise.resolve(); await Promise.resolve()
    clock.advance(Math.min(stepMs, ms - elapsed))
  }
  await Promise.resolve()
}

test('peer session: both sides reach established and measure RTT, latency 10 ms', async () => {
  const h = harness()
  h.a.send({ type: 'session.start' }); h.b.send({ type: 'session.start' })
  assert.is(state(h.b), 'active', 'the larger id waits for the dial')
  await advance(h.clock, 100)
  assert.is(state(h.a), 'established')
  assert.is(state(h.b), 'established')
  await advance(h.clock, 3000)
  const rtt = h.a.getSnapshot().context.rttMs
  assert.ok(rtt !== undefined && rtt >= 19 && rtt <= 21, `rtt ${rtt} should be ~20 ms`)
  assert.is(h.a.getSnapshot().context.holdTimeMs, 3000)
})

test('peer session: hold time negotiates to the smaller of both, 3000 vs 1500 ms', async () => {
  const h = harness({ config: { holdTimeMs: 3000 }, bConfig: { holdTimeMs: 1500 } })
  h.a.send({ type: 'session.start' }); h.b.send({ type: 'session.start' })
  await advance(h.clock, 100)
  assert.is(h.a.getSnapshot().context.holdTimeMs, 1500)
  assert.is(h.b.getSnapshot().context.holdTimeMs, 1500)
})

test('peer session: a silent peer is dropped when the hold timer expires, hold 3000 ms', async () => {
  const h = harness()
  h.a.send({ type: 'session.start' }); h.b.send({ type: 'session.start' })
  await advance(h.clock, 200)
  assert.is(state(h.a), 'established')
  const cutAt = h.clock.now()
  h.pairs[0]!.cut()
  h.b.stop()
  let leftAt: number | undefined
  for (let i = 0; i < 1000 && leftAt === undefined; i++) {
    await advance(h.clock, 10, 10)
    if (state(h.a) !== 'established') leftAt = h.clock.now()
  }
  assert.ok(leftAt !== undefined, 'session left established')
  const elapsed = leftAt - cutAt
  // The last keepalive arrived at most one keepalive interval (hold/3) before the cut.
  assert.ok(elapsed <= 3000 + 10 && elapsed >= 3000 - 1000 - 10, `left after ${elapsed} ms`)
  assert.match(h.a.getSnapshot().context.lastError ?? '', /hold timer expired/)
})

test('peer session: wrong network id is refused with an OPEN NOTIFICATION and no session', async () => {
  const h = harness({ bNetwork: 'other' })
  h.a.send({ type: 'session.start' }); h.b.send({ type: 'session.start' })
  await advance(h.clock, 100)
  assert.is.not(state(h.a), 'established')
  assert.is.not(state(h.b), 'established')
  assert.match(h.b.getSnapshot().context.lastError ?? '', /wrong network/)
  assert.match(h.a.getSnapshot().context.lastError ?? '', /wrong network/)
})

test('peer session: a malformed frame gets a header-error NOTIFICATION and is counted', async () => {
  const clock = new VirtualClock()
  const pair = createFramePair(clock, { aId: 'x', bId: 'b' })
  const session = createActor(peerSessionMachine, {
    clock,
    input: { localNodeId: 'b', peerId: 'x', networkId: 'net', config: defaultPeerSessionConfig, transport: { openSession: async () => { throw new Error('no') } }, clock, random: createRandom(1) }
  })
  session.start()
  session.send({ type: 'session.start' })
  const received: Uint8Array[] = []
  pair.a.onFrame((frame) => received.push(frame))
  session.send({ type: 'session.incoming', stream: pair.b })
  pair.a.send(new Uint8Array([0xff, 1, 2, 3]))
  await advance(clock, 50)
  assert.is(session.getSnapshot().context.invalidFrames, 1)
  assert.is(state(session), 'active')
  const frames = received.map(decode)
  assert.is(frames[0]?.type, 'open')
  const notification = frames.find((frame) => frame.type === 'notification')
  assert.ok(notification !== undefined && notification.type === 'notification' && notification.code === NotificationCode.messageHeaderError)
})

test('peer session: reconnect back-off doubles from min to max with jitter, 3 refused dials', async () => {
  const h = harness({ refuseDials: 3, config: { backoff: { minMs: 100, maxMs: 1000, jitter: 0.25 } } })
  h.a.send({ type: 'session.start' }); h.b.send({ type: 'session.start' })
  await advance(h.clock, 2000, 1)
  assert.is(h.dials.length, 4)
  const gaps = h.dials.slice(1).map((t, i) => t - h.dials[i]!)
  const expected = [100, 200, 400]
  gaps.forEach((gap, i) => assert.ok(gap >= expected[i]! * 0.75 - 1 && gap <= expected[i]! * 1.25 + 1, `gap ${i} = ${gap}`))
  assert.is(state(h.a), 'established')
  assert.is(h.a.getSnapshot().context.failures, 0, 'failures reset once established')
})

test('peer session: session.stop sends CEASE and both leave established', async () => {
  const h = harness()
  h.a.send({ type: 'session.start' }); h.b.send({ type: 'session.start' })
  await advance(h.clock, 100)
  h.a.send({ type: 'session.stop' })
  await advance(h.clock, 50)
  assert.is(state(h.a), 'idle')
  assert.is(state(h.b), 'active')
  assert.match(h.b.getSnapshot().context.lastError ?? '', /session stopped/)
})

test('peer session: a restarted peer that dials again replaces the dead stream', async () => {
  const h = harness()
  h.a.send({ type: 'session.start' }); h.b.send({ type: 'session.start' })
  await advance(h.clock, 100)
  const fresh = createFramePair(h.clock, { aId: 'a', bId: 'b' })
  // b is the passive side; a second incoming stream on b adopts it and closes the first.
  h.b.send({ type: 'session.incoming', stream: fresh.b })
  const opens: string[] = []
  fresh.a.onFrame((frame) => opens.push(decode(frame).type))
  await advance(h.clock, 50)
  assert.equal(opens[0], 'open')
  assert.ok((h.pairs[0]!.b as FrameStream).closed, 'old stream closed')
})

test('peer session: UPDATEs flow only while established; the listener hears up, updates and down', async () => {
  const heard: string[] = []
  const listener: SessionListener = {
    established: (peer) => heard.push(`up ${peer}`),
    down: (peer, reason) => heard.push(`down ${peer} ${reason}`),
    update: (peer, payload) => heard.push(`update ${peer} ${Array.from(payload).join(',')}`)
  }
  const h = harness({ listener })
  h.a.send({ type: 'session.send.update', payload: new Uint8Array([9]) })
  h.a.send({ type: 'session.start' }); h.b.send({ type: 'session.start' })
  await advance(h.clock, 100)
  h.a.send({ type: 'session.send.update', payload: new Uint8Array([1, 2]) })
  await advance(h.clock, 50)
  h.pairs[0]!.cut()
  await advance(h.clock, 3100)
  assert.equal(heard.slice(0, 2), ['up a', 'update a 1,2'], 'the update sent before establishment was dropped')
  assert.match(heard[2] ?? '', /^down a xstate\.after\.holdTime/)
})

test('session codec: OPEN, KEEPALIVE, UPDATE, NOTIFICATION round-trip', () => {
  const frames = [
    { type: 'open', version: 1, networkId: 'net', nodeId: '12D3', holdTimeMs: 3000, capabilities: ['routes', 'relay'] },
    { type: 'keepalive', sentAtMs: 1234.5, echoSentAtMs: 1000, echoHeldMs: 3 },
    { type: 'update', payload: new Uint8Array([1, 2, 3]) },
    { type: 'notification', code: 4, subcode: 0, message: 'hold timer expired' }
  ] as const
  for (const frame of frames) assert.equal(decode(encode(frame as never)), frame)
})

test.run()
