// Fault primitives on a small SimWorld, applied as scenario fault events through FaultInjector:
// each test shows the fault doing what its name says and nothing more.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SimWorld } from '../../simulations/world.ts'
import { FaultInjector } from '../../simulations/faults.ts'
import type { FaultEvent } from '../../simulations/scenario-faults.ts'
import type { FrameStream, InspectionEvent } from '../../src/runtime/ports.ts'
import { DialError } from '../../src/runtime/sim-overlay.ts'

const PROTOCOL = '/test/fault/1.0.0'

/** A world of `nodes` nodes 20 ms apart, started, with a frame recorder on every node. */
async function createWorld (nodes: number, extra: Partial<ConstructorParameters<typeof SimWorld>[0]> = {}): Promise<{ world: SimWorld, received: Array<{ at: number, to: string, text: string }> }> {
  const world = new SimWorld({ seed: 11, nodes, degree: 2, latencyMs: 20, ...extra })
  const received: Array<{ at: number, to: string, text: string }> = []
  await world.start()
  for (const id of world.hosts.keys()) {
    world.network.overlay(id)!.handleStream(PROTOCOL, (stream) => {
      stream.onFrame((frame) => { received.push({ at: world.clock.now(), to: id, text: new TextDecoder().decode(frame) }) })
    })
  }
  return { world, received }
}

async function open (world: SimWorld, from: string, to: string): Promise<FrameStream> {
  const opening = world.network.overlay(from)!.openStream(to, PROTOCOL)
  await world.run(200)
  return await opening
}

const send = (stream: FrameStream, text: string): boolean => stream.send(new TextEncoder().encode(text))

test('faults: a one-way partition drops only its direction, and its end heals it', async () => {
  const { world, received } = await createWorld(3)
  const ab = await open(world, 'n00000', 'n00001')
  const ba = await open(world, 'n00001', 'n00000')
  const injector = new FaultInjector(world)
  const partition: FaultEvent = { at: 0, id: 0, origin: 'test', event: 'partition', scope: { from: ['n00000'], to: ['n00001'], oneWay: true } }
  injector.apply(partition)
  assert.is(world.network.isReachable('n00000', 'n00001'), false)
  assert.is(world.network.isReachable('n00001', 'n00000'), true)
  send(ab, 'a→b cut')
  send(ba, 'b→a through')
  await world.run(100)
  assert.equal(received.map((r) => r.text), ['b→a through'])
  injector.apply({ at: 0, id: 1, origin: 'test', event: 'faultEnd', ends: 0 })
  assert.is(injector.activeCount, 0)
  assert.is(world.network.isReachable('n00000', 'n00001'), true)
  send(ab, 'a→b healed')
  await world.run(100)
  assert.equal(received.map((r) => r.text), ['b→a through', 'a→b healed'])
  await world.stop()
})

test('faults: a CPU-stalled node processes nothing during the stall and catches up, in order, when it ends', async () => {
  const written: Array<{ at: number, event: InspectionEvent }> = []
  const { world, received } = await createWorld(4)
  world.bus.addSink({ write: (event) => { written.push({ at: world.clock.now(), event }) } })
  const stream = await open(world, 'n00000', 'n00002')
  const stalledAt = world.clock.now()
  new FaultInjector(world).apply({ at: stalledAt, id: 0, origin: 'test', event: 'cpuStall', nodes: ['n00002'], durationMs: 2000 })
  const timerFired: number[] = []
  world.network.nodeClock('n00002').setTimeout(() => { timerFired.push(world.clock.now()) }, 300)
  world.network.nodeClock('n00001').setTimeout(() => { timerFired.push(world.clock.now()) }, 300)
  for (let k = 0; k < 5; k++) {
    send(stream, `frame ${k}`)
    await world.run(100)
  }
  await world.run(1500 - 100)
  const during = written.filter((w) => w.event.node === 'n00002' && w.at > stalledAt && w.at < stalledAt + 2000)
  assert.is(during.length, 0, `the stalled node reported ${during.length} actor events during the stall`)
  assert.ok(written.some((w) => w.event.node === 'n00001' && w.at > stalledAt && w.at < stalledAt + 2000), 'the others went on')
  assert.equal(received, [], 'no frame processed during the stall')
  assert.equal(timerFired, [stalledAt + 300], 'the unstalled node\'s timer fired on time; the stalled one\'s waits')
  await world.run(200)
  assert.equal(received.map((r) => r.text), ['frame 0', 'frame 1', 'frame 2', 'frame 3', 'frame 4'])
  assert.ok(received.every((r) => r.at === stalledAt + 2000), `caught up at the end of the stall: ${received.map((r) => r.at).join(', ')}`)
  assert.equal(timerFired, [stalledAt + 300, stalledAt + 2000])
  assert.ok(written.some((w) => w.event.node === 'n00002' && w.at >= stalledAt + 2000), 'it reports again after the stall')
  await world.stop()
})

test('faults: clock skew shifts that node\'s Clock.now() only; its timers keep the shared order and sessions still establish', async () => {
  const { world } = await createWorld(5)
  new FaultInjector(world).apply({ at: 0, id: 0, origin: 'test', event: 'clockSkew', nodes: ['n00003'], offsetMs: -7000 })
  const now = world.clock.now()
  assert.is(world.network.nodeClock('n00003').now(), now - 7000)
  for (const id of ['n00000', 'n00001', 'n00002', 'n00004']) assert.is(world.network.nodeClock(id).now(), now)
  const order: string[] = []
  world.network.nodeClock('n00003').setTimeout(() => { order.push(`skewed@${world.clock.now()}`) }, 50)
  world.network.nodeClock('n00000').setTimeout(() => { order.push(`plain@${world.clock.now()}`) }, 50)
  world.network.nodeClock('n00003').setTimeout(() => { order.push(`skewed-late@${world.clock.now()}`) }, 60)
  await world.run(100)
  assert.equal(order, [`skewed@${now + 50}`, `plain@${now + 50}`, `skewed-late@${now + 60}`])
  await world.run(4000)
  for (const host of world.hosts.values()) {
    assert.ok(host.sessions().every((session) => session.established), `${host.config.name}: ${host.sessions().map((s) => s.state).join(', ')}`)
  }
  await world.stop()
})

test('faults: a loss spike drops lossy RPCs only on the links it names; a delay spike adds its delay to every frame on them', async () => {
  const { world, received } = await createWorld(3)
  const injector = new FaultInjector(world)
  const stream = await open(world, 'n00000', 'n00001')
  injector.apply({ at: 0, id: 0, origin: 'test', event: 'delay', extraMs: 150, jitterMs: 0, scope: { from: ['n00000'], to: ['n00001'], oneWay: true } })
  const sentAt = world.clock.now()
  send(stream, 'slow')
  await world.run(300)
  assert.is(received[0]!.at - sentAt, 170, 'latency 20 ms + 150 ms spike')
  injector.apply({ at: 0, id: 1, origin: 'test', event: 'faultEnd', ends: 0 })
  // Loss: gossip to and from n00002 is lost, n00001 still hears everything; streams are reliable.
  const heard = new Map<string, number>([['n00001', 0], ['n00002', 0]])
  for (const id of ['n00000', 'n00001', 'n00002']) world.network.overlay(id)!.subscribe('test/loss', () => { heard.set(id, (heard.get(id) ?? 0) + 1) })
  await world.run(2500)
  injector.apply({ at: 0, id: 2, origin: 'test', event: 'loss', rate: 1, scope: { from: ['n00002'], oneWay: false } })
  const lossy = await open(world, 'n00000', 'n00002')
  for (let k = 0; k < 10; k++) await world.network.overlay('n00000')!.publish('test/loss', new Uint8Array([k]))
  send(lossy, 'stream through loss')
  await world.run(3000)
  assert.is(heard.get('n00001'), 10)
  assert.is(heard.get('n00002'), 0)
  assert.ok(received.some((r) => r.to === 'n00002' && r.text === 'stream through loss'))
  injector.apply({ at: 0, id: 3, origin: 'test', event: 'faultEnd', ends: 2 })
  await world.network.overlay('n00000')!.publish('test/loss', new Uint8Array([99]))
  await world.run(1000)
  assert.is(heard.get('n00002'), 1, 'heard again once the spike ended')
  await world.stop()
})

test('faults: reordering lets later gossip RPCs overtake earlier ones; stream frames stay in order', async () => {
  const { world, received } = await createWorld(2)
  const network = world.network
  network.addLinkFault({ reorder: { rate: 1, windowMs: 200 } })
  const stream = await open(world, 'n00000', 'n00001')
  for (let k = 0; k < 20; k++) send(stream, `f${k}`)
  const arrivals: number[] = []
  world.network.overlay('n00001')!.subscribe('test/topic', (message) => { arrivals.push(new TextDecoder().decode(message.data).length > 0 ? Number(new TextDecoder().decode(message.data)) : -1) })
  world.network.overlay('n00000')!.subscribe('test/topic', () => {})
  await world.run(2500)
  for (let k = 0; k < 20; k++) {
    await world.network.overlay('n00000')!.publish('test/topic', new TextEncoder().encode(String(k)))
    await world.run(5)
  }
  await world.run(1000)
  assert.equal(received.map((r) => r.text), Array.from({ length: 20 }, (_, k) => `f${k}`))
  assert.is(arrivals.length, 20)
  assert.not.equal(arrivals, [...arrivals].sort((a, b) => a - b), `gossip arrived in order: ${arrivals.join(',')}`)
  await world.stop()
})

test('faults: a NATed node dials out but cannot be dialled; the random graph never joins two NATed nodes', async () => {
  const natted = new Set(['n00001', 'n00003', 'n00005', 'n00007'])
  const { world } = await createWorld(10, { degree: 4, nat: (_index, id) => natted.has(id) })
  for (const id of natted) {
    const peers = world.network.overlay(id)!.connectedPeers()
    assert.ok(peers.length >= 2, `${id} has ${peers.length} connections`)
    assert.ok(peers.every((peer) => !natted.has(peer)), `${id} connected to a NATed peer: ${peers.join(', ')}`)
  }
  const publicNode = world.network.overlay('n00008')!
  const natNode = world.network.overlay('n00003')!
  if (publicNode.connectedPeers().includes('n00003')) throw new Error('test needs n00008 and n00003 unconnected')
  const inbound = publicNode.dial('n00003').then(() => 'connected', (error: unknown) => error)
  await world.run(2500)
  const failure = await inbound
  assert.instance(failure, DialError)
  assert.is((failure as DialError).reason, 'unreachable')
  const outbound = natNode.dial('n00008').then(() => 'connected')
  await world.run(200)
  assert.is(await outbound, 'connected')
  // Over the connection the NATed node made, the public node can open a stream back.
  const back = await open(world, 'n00008', 'n00003')
  assert.ok(send(back, 'hello'))
  await world.stop()
})

test('faults: a restart with state kept keeps the node\'s key; wiped gives it a new one (a new identity)', async () => {
  const { world } = await createWorld(4)
  const message = new TextEncoder().encode('announcement')
  const oldSignature = world.hosts.get('n00001')!.components.signer.sign(message)
  for (const [state, same] of [['kept', true], ['wiped', false]] as const) {
    world.crashNode('n00001')
    await world.run(6000)
    const host = await world.restartNode('n00001', { state })
    assert.is(world.keys.verify('n00001', message, oldSignature), same, `${state}: the old signature ${same ? 'still' : 'no longer'} verifies`)
    assert.ok(world.keys.verify('n00001', message, host.components.signer.sign(message)))
    await world.run(500)
  }
  await world.stop()
})

test.run()
