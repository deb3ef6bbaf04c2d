// The one compliance suite for the `Overlay` port (ports.ts), run against every implementation:
// the simulated overlay (overlay-sim.test.ts) and the libp2p adapter. If an actor could tell the two
// apart through the port, one of them fails here.
//
// Bounds are generous (10–15 s) so libp2p on a loaded 2-core machine passes; the simulated world
// advances virtual time, so it runs in milliseconds.
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import type { FrameStream, Overlay, OverlayMessage, PeerEvent } from '../../src/runtime/ports.ts'
import { MAX_MESSAGE_BYTES } from '../../src/runtime/ports.ts'

export interface OverlayTestWorld {
  name: string
  /**
   * n started overlays, each connected to every other (or at least a connected graph via
   * bootstrap/dial), all ready: connections up. With `{ connected: false }`: started, not connected,
   * but each node can `dial(peerId)` every other (addresses known to its peer store).
   */
  createNodes(n: number, options?: { connected?: boolean }): Promise<Overlay[]>
  /** bounded wait: advance virtual time (sim) or poll real time (libp2p) until predicate is true; throws with `label` on timeout */
  waitFor(predicate: () => boolean, options: { timeoutMs: number, label: string }): Promise<void>
  /** sleep: virtual advance or real delay */
  sleep(ms: number): Promise<void>
  /** abrupt death of a node (sim: crash; libp2p: stop the node without graceful close if possible, else stop) */
  crash(node: Overlay): Promise<void>
  close(): Promise<void>
  /** Bound within which a peer notices a crashed or stopped remote (peer.disconnected). Default 30 s. */
  disconnectTimeoutMs?: number
}

/** How long subscriptions get to reach peers and meshes to form (gossipsub heartbeat is 1 s). */
const SETTLE_MS = 2500
const WAIT = { timeoutMs: 15_000 }
/** After the last expected delivery, how long to wait for deliveries that must not happen. */
const QUIET_MS = 1500

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const bytes = (text: string): Uint8Array => encoder.encode(text)
const text = (data: Uint8Array): string => decoder.decode(data)

/** Every message a node's subscription received, in order. */
function inbox (node: Overlay, topic: string): { messages: OverlayMessage[], texts: () => string[], unsubscribe: () => void } {
  const messages: OverlayMessage[] = []
  const unsubscribe = node.subscribe(topic, (message) => { messages.push(message) })
  return { messages, texts: () => messages.map((m) => text(m.data)), unsubscribe }
}

function peerEvents (node: Overlay): PeerEvent[] {
  const events: PeerEvent[] = []
  node.onPeerEvent((event) => { events.push(event) })
  return events
}

function frames (stream: FrameStream): string[] {
  const received: string[] = []
  stream.onFrame((frame) => { received.push(text(frame)) })
  return received
}

async function rejection (promise: Promise<unknown>, label: string): Promise<Error> {
  try {
    await promise
  } catch (error) {
    assert.instance(error, Error, `${label}: should reject with an Error`)
    return error as Error
  }
  throw new assert.Assertion({ message: `${label}: should have rejected`, operator: 'rejects', generated: true, actual: 'resolved', expects: 'rejection' })
}

/** A handler that accepts every stream on `protocol` and hands it to the test. */
function acceptStreams (node: Overlay, protocol: string): FrameStream[] {
  const accepted: FrameStream[] = []
  node.handleStream(protocol, (stream) => { accepted.push(stream) })
  return accepted
}

/**
 * Registers the uvu suite `overlay compliance: <name>` and runs it. Every case makes its own world
 * and closes it, even on failure. `name` defaults to 'world'; pass the same name as world.name.
 */
export function overlayCompliance (makeWorld: () => Promise<OverlayTestWorld>, name = 'world'): void {
  const cases: Array<[string, (world: OverlayTestWorld) => Promise<void>]> = []
  const it = (title: string, body: (world: OverlayTestWorld) => Promise<void>): void => { cases.push([title, body]) }

  it('publish reaches every subscriber once, not non-subscribers nor the publisher; from is the author', async (world) => {
    const [publisher, subA, subB, bystander] = await world.createNodes(4) as [Overlay, Overlay, Overlay, Overlay]
    const own = inbox(publisher, 'news')
    const a = inbox(subA, 'news')
    const b = inbox(subB, 'news')
    const other = inbox(bystander, 'other-topic')
    await world.sleep(SETTLE_MS)
    await publisher.publish('news', bytes('hello'))
    await world.waitFor(() => a.messages.length > 0 && b.messages.length > 0, { ...WAIT, label: 'both subscribers receive' })
    await world.sleep(QUIET_MS)
    assert.equal(a.texts(), ['hello'], 'subscriber A: exactly one copy')
    assert.equal(b.texts(), ['hello'], 'subscriber B: exactly one copy')
    assert.is(a.messages[0]!.from, publisher.peerId, 'from is the author')
    assert.is(b.messages[0]!.topic, 'news')
    assert.equal(other.messages, [], 'a subscriber of another topic receives nothing')
    assert.equal(own.messages, [], 'the publisher does not receive its own message')
  })

  it('publish with no subscriber anywhere resolves', async (world) => {
    const [node] = await world.createNodes(2) as [Overlay]
    await node.publish('nobody-listens', bytes('x'))
  })

  it('author is preserved through forwarding: from of a message relayed by others', async (world) => {
    const nodes = await world.createNodes(5)
    const inboxes = nodes.map((node) => inbox(node, 'relay'))
    await world.sleep(SETTLE_MS)
    await nodes[4]!.publish('relay', bytes('m'))
    await world.waitFor(() => inboxes.slice(0, 4).every((i) => i.messages.length > 0), { ...WAIT, label: 'all four receive' })
    for (const i of inboxes.slice(0, 4)) assert.is(i.messages[0]!.from, nodes[4]!.peerId)
  })

  it('validator reject and ignore stop delivery on that node; removing it restores delivery', async (world) => {
    const [publisher, open, rejecting, ignoring] = await world.createNodes(4) as [Overlay, Overlay, Overlay, Overlay]
    const seenByValidator: OverlayMessage[] = []
    rejecting.setValidator('v', (message) => { seenByValidator.push(message); return 'reject' })
    ignoring.setValidator('v', () => 'ignore')
    const o = inbox(open, 'v')
    const r = inbox(rejecting, 'v')
    const i = inbox(ignoring, 'v')
    await world.sleep(SETTLE_MS)
    await publisher.publish('v', bytes('first'))
    await world.waitFor(() => o.messages.length > 0 && seenByValidator.length > 0, { ...WAIT, label: 'accepting node receives, validator runs' })
    await world.sleep(QUIET_MS)
    assert.equal(r.messages, [], 'rejected: not delivered')
    assert.equal(i.messages, [], 'ignored: not delivered')
    assert.is(seenByValidator[0]!.from, publisher.peerId, 'validator sees the author')
    assert.is(text(seenByValidator[0]!.data), 'first')
    rejecting.setValidator('v', undefined)
    await publisher.publish('v', bytes('second'))
    await world.waitFor(() => r.messages.length > 0, { ...WAIT, label: 'delivered once the validator is removed' })
    assert.equal(r.texts(), ['second'])
  })

  it('unsubscribe stops delivery to that handler only; idempotent', async (world) => {
    const [publisher, node] = await world.createNodes(2) as [Overlay, Overlay]
    const first = inbox(node, 't')
    const second = inbox(node, 't')
    await world.sleep(SETTLE_MS)
    await publisher.publish('t', bytes('1'))
    await world.waitFor(() => first.messages.length === 1 && second.messages.length === 1, { ...WAIT, label: 'both handlers get message 1' })
    first.unsubscribe()
    first.unsubscribe()
    await publisher.publish('t', bytes('2'))
    await world.waitFor(() => second.messages.length === 2, { ...WAIT, label: 'remaining handler gets message 2' })
    second.unsubscribe()
    await world.sleep(SETTLE_MS)
    await publisher.publish('t', bytes('3'))
    await world.sleep(QUIET_MS)
    assert.equal(first.texts(), ['1'])
    assert.equal(second.texts(), ['1', '2'])
  })

  it('oversized publish rejects with a size error; MAX_MESSAGE_BYTES - 1024 is fine', async (world) => {
    const [publisher, node] = await world.createNodes(2) as [Overlay, Overlay]
    const box = inbox(node, 'big')
    await world.sleep(SETTLE_MS)
    const error = await rejection(publisher.publish('big', new Uint8Array(MAX_MESSAGE_BYTES + 1)), 'oversized publish')
    assert.is(error.name, 'MessageTooLargeError')
    assert.match(error.message, /large|size|bytes|exceed/i, 'the error says the message is too big')
    await publisher.publish('big', new Uint8Array(MAX_MESSAGE_BYTES - 1024).fill(7))
    await world.waitFor(() => box.messages.length > 0, { ...WAIT, label: 'large message delivered' })
    assert.is(box.messages[0]!.data.byteLength, MAX_MESSAGE_BYTES - 1024)
    assert.is(box.messages.length, 1, 'the oversized message was not sent')
  })

  it('streams: frames in order both ways; remotePeer and protocol on both ends', async (world) => {
    const [client, server] = await world.createNodes(2) as [Overlay, Overlay]
    const serverGot: string[] = []
    let serverStream: FrameStream | undefined
    server.handleStream('/test/echo/1', (stream) => {
      serverStream = stream
      stream.onFrame((frame) => { serverGot.push(text(frame)); stream.send(bytes(`echo ${text(frame)}`)) })
    })
    const stream = await client.openStream(server.peerId, '/test/echo/1')
    const clientGot = frames(stream)
    const sent = Array.from({ length: 50 }, (_, k) => `frame ${k}`)
    for (const frame of sent) assert.ok(stream.send(bytes(frame)), 'send on an open stream returns true')
    await world.waitFor(() => clientGot.length === sent.length, { ...WAIT, label: 'all echoes back' })
    assert.equal(serverGot, sent, 'client → server in order')
    assert.equal(clientGot, sent.map((f) => `echo ${f}`), 'server → client in order')
    assert.is(stream.remotePeer, server.peerId)
    assert.is(stream.protocol, '/test/echo/1')
    assert.is(serverStream!.remotePeer, client.peerId)
    assert.is(serverStream!.protocol, '/test/echo/1')
    assert.is(stream.closed, false)
  })

  it('streams: frames that arrive before onFrame are buffered and replayed in order', async (world) => {
    const [client, server] = await world.createNodes(2) as [Overlay, Overlay]
    const accepted = acceptStreams(server, '/test/buffer/1')
    const stream = await client.openStream(server.peerId, '/test/buffer/1')
    const sent = ['a', 'b', 'c', 'd', 'e']
    for (const frame of sent) stream.send(bytes(frame))
    await world.waitFor(() => accepted.length === 1, { ...WAIT, label: 'server accepts' })
    await world.sleep(QUIET_MS)
    const got = frames(accepted[0]!)
    await world.waitFor(() => got.length === sent.length, { ...WAIT, label: 'buffered frames replayed' })
    assert.equal(got, sent)
  })

  it('streams: close on one side fires onClose once on both; send after close returns false', async (world) => {
    const [client, server] = await world.createNodes(2) as [Overlay, Overlay]
    const accepted = acceptStreams(server, '/test/close/1')
    const stream = await client.openStream(server.peerId, '/test/close/1')
    await world.waitFor(() => accepted.length === 1, { ...WAIT, label: 'server accepts' })
    const remote = accepted[0]!
    let remoteCloses = 0
    let localCloses = 0
    remote.onClose(() => { remoteCloses++ })
    stream.onClose(() => { localCloses++ })
    stream.close()
    assert.is(stream.closed, true)
    assert.is(stream.send(bytes('late')), false, 'send after local close')
    await world.waitFor(() => remoteCloses > 0, { ...WAIT, label: 'remote onClose fires' })
    await world.waitFor(() => remote.closed, { ...WAIT, label: 'remote end reports closed' })
    assert.is(remote.send(bytes('late')), false, 'send after remote close')
    stream.close()
    await world.sleep(QUIET_MS)
    assert.is(remoteCloses, 1, 'remote onClose exactly once')
    assert.ok(localCloses <= 1, 'local onClose at most once')
  })

  it('streams: server-side close reaches the client', async (world) => {
    const [client, server] = await world.createNodes(2) as [Overlay, Overlay]
    server.handleStream('/test/close-server/1', (stream) => {
      stream.onFrame(() => { stream.send(bytes('bye')); stream.close() })
    })
    const stream = await client.openStream(server.peerId, '/test/close-server/1')
    const got = frames(stream)
    let closed = false
    stream.onClose(() => { closed = true })
    stream.send(bytes('hi'))
    await world.waitFor(() => closed, { ...WAIT, label: 'client sees the server close' })
    assert.equal(got, ['bye'], 'data sent before close arrives before the close')
    assert.is(stream.send(bytes('x')), false)
  })

  it('openStream to an unhandled protocol rejects with an error naming the protocol', async (world) => {
    const [client, server] = await world.createNodes(2) as [Overlay, Overlay]
    const error = await rejection(client.openStream(server.peerId, '/test/nobody/1'), 'unhandled protocol')
    assert.is(error.name, 'UnsupportedProtocolError')
    assert.ok(error.message.includes('/test/nobody/1'), `error names the protocol: ${error.message}`)
    server.handleStream('/test/later/1', () => {})
    server.unhandleStream('/test/later/1')
    const later = await rejection(client.openStream(server.peerId, '/test/later/1'), 'unhandled after unhandleStream')
    assert.is(later.name, 'UnsupportedProtocolError')
  })

  it('connectedPeers lists every peer; rttMs is defined and > 0 for peers, undefined for strangers', async (world) => {
    const nodes = await world.createNodes(3)
    for (const node of nodes) {
      const others = nodes.filter((n) => n !== node).map((n) => n.peerId)
      await world.waitFor(() => others.every((peer) => node.connectedPeers().includes(peer)), { ...WAIT, label: `${node.peerId} connected to all` })
      for (const peer of others) {
        await world.waitFor(() => (node.rttMs(peer) ?? 0) > 0, { ...WAIT, label: `rtt to ${peer}` })
        const rtt = node.rttMs(peer)!
        assert.ok(Number.isFinite(rtt) && rtt > 0, `rtt ${rtt}`)
      }
      assert.is(node.rttMs('not-a-peer'), undefined)
    }
  })

  it('dial fires peer.connected on both sides; dial is idempotent', async (world) => {
    const [a, b] = await world.createNodes(2, { connected: false }) as [Overlay, Overlay]
    assert.not.ok(a.connectedPeers().includes(b.peerId), 'world honours { connected: false }')
    const eventsA = peerEvents(a)
    const eventsB = peerEvents(b)
    await a.dial(b.peerId)
    await a.dial(b.peerId)
    await world.waitFor(() => eventsA.some((e) => e.type === 'peer.connected' && e.peerId === b.peerId), { ...WAIT, label: 'a sees b connect' })
    await world.waitFor(() => eventsB.some((e) => e.type === 'peer.connected' && e.peerId === a.peerId), { ...WAIT, label: 'b sees a connect' })
    assert.ok(a.connectedPeers().includes(b.peerId))
    await world.waitFor(() => b.connectedPeers().includes(a.peerId), { ...WAIT, label: 'b lists a' })
  })

  it('remote stops gracefully: peer.disconnected, and open streams close without an error', async (world) => {
    const [a, b] = await world.createNodes(2) as [Overlay, Overlay]
    acceptStreams(b, '/test/remote-stop/1')
    const stream = await a.openStream(b.peerId, '/test/remote-stop/1')
    const closes: Array<Error | undefined> = []
    stream.onClose((error) => { closes.push(error) })
    const events = peerEvents(a)
    await b.stop()
    await world.waitFor(() => events.some((e) => e.type === 'peer.disconnected' && e.peerId === b.peerId),
      { timeoutMs: world.disconnectTimeoutMs ?? 30_000, label: 'a sees b disconnect after stop' })
    await world.waitFor(() => closes.length > 0, { ...WAIT, label: 'stream closes after remote stop' })
    assert.not.ok(a.connectedPeers().includes(b.peerId))
    assert.equal(closes, [undefined], 'a clean close: no error')
  })

  it('remote crashes: peer.disconnected within the world bound, open streams close with an error', async (world) => {
    const [a, , c] = await world.createNodes(3) as [Overlay, Overlay, Overlay]
    acceptStreams(c, '/test/remote-crash/1')
    const stream = await a.openStream(c.peerId, '/test/remote-crash/1')
    const closes: Array<Error | undefined> = []
    stream.onClose((error) => { closes.push(error) })
    const events = peerEvents(a)
    await world.crash(c)
    const bound = { timeoutMs: world.disconnectTimeoutMs ?? 30_000 }
    await world.waitFor(() => events.some((e) => e.type === 'peer.disconnected' && e.peerId === c.peerId), { ...bound, label: 'a sees c disconnect after crash' })
    await world.waitFor(() => closes.length > 0, { ...bound, label: 'stream closes after remote crash' })
    assert.not.ok(a.connectedPeers().includes(c.peerId))
    assert.is(closes.length, 1, 'onClose once')
    assert.instance(closes[0], Error, 'a lost connection is abnormal')
  })

  it('a stopped overlay refuses publish and openStream with OverlayNotRunningError', async (world) => {
    const [a, b] = await world.createNodes(2) as [Overlay, Overlay]
    acceptStreams(b, '/test/refuse/1')
    await a.stop()
    const publishError = await rejection(a.publish('t', bytes('x')), 'publish after stop')
    assert.is(publishError.name, 'OverlayNotRunningError')
    const openError = await rejection(a.openStream(b.peerId, '/test/refuse/1'), 'openStream after stop')
    assert.is(openError.name, 'OverlayNotRunningError')
  })

  it('stats counters increase after publishing and receiving', async (world) => {
    const [publisher, node] = await world.createNodes(2) as [Overlay, Overlay]
    const box = inbox(node, 's')
    await world.sleep(SETTLE_MS)
    const sentBefore = publisher.stats()
    const receivedBefore = node.stats()
    await publisher.publish('s', new Uint8Array(1000))
    await world.waitFor(() => box.messages.length > 0, { ...WAIT, label: 'delivered' })
    const sentAfter = publisher.stats()
    const receivedAfter = node.stats()
    assert.ok(sentAfter.messagesSent > sentBefore.messagesSent, 'messagesSent grows')
    assert.ok(sentAfter.bytesSent >= sentBefore.bytesSent + 1000, 'bytesSent grows by at least the payload')
    assert.ok(receivedAfter.messagesReceived > receivedBefore.messagesReceived, 'messagesReceived grows')
    assert.ok(receivedAfter.bytesReceived >= receivedBefore.bytesReceived + 1000, 'bytesReceived grows by at least the payload')
  })

  it('start and stop are idempotent; stop closes connections and streams', async (world) => {
    const [a, b] = await world.createNodes(2) as [Overlay, Overlay]
    acceptStreams(b, '/test/stop/1')
    await a.start()
    assert.ok(a.connectedPeers().includes(b.peerId), 'a second start keeps connections')
    const stream = await a.openStream(b.peerId, '/test/stop/1')
    let closed = false
    stream.onClose(() => { closed = true })
    await a.stop()
    await a.stop()
    assert.equal(a.connectedPeers(), [], 'no connections after stop')
    await world.waitFor(() => closed && stream.closed, { ...WAIT, label: 'stop closes the stream' })
    await world.waitFor(() => !b.connectedPeers().includes(a.peerId), { timeoutMs: world.disconnectTimeoutMs ?? 30_000, label: 'b drops a' })
  })

  const test = suite(`overlay compliance: ${name}`)
  for (const [title, body] of cases) {
    test(title, async () => {
      const world = await makeWorld()
      try {
        await body(world)
      } finally {
        await world.close()
      }
    })
  }
  test.run()
}
