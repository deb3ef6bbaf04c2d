// Reachability of every state of every actor, proved on the machine definitions themselves with
// xstate/graph: a breadth-first walk of (state, event) pairs from the initial state, where the
// events offered in a state are exactly those its transitions listen for (getNextTransitions),
// including delayed ones (`xstate.after.<delay>.<state id>`) and invoked actors' completions
// (`xstate.done.actor.<id>`), with payloads supplied where a guard or action reads them. Nothing
// runs during the walk: actions and invoked actors are not executed, and delays are just events.
// Transient states (left at once by an `always` transition) never rest in a snapshot, so they are
// found in the microsteps of every explored edge.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { getMicrosteps, getNextTransitions, type AnyMachineSnapshot, type AnyStateMachine, type AnyStateNode, type EventObject } from 'xstate'
import { getAdjacencyMap, getShortestPaths, type TraversalOptions } from 'xstate/graph'
import { defaultHealthProberPolicy, healthProberMachine } from '../../src/actors/health-prober.ts'
import { defaultPrefixAnnouncerPolicy, prefixAnnouncerMachine } from '../../src/actors/prefix-announcer.ts'
import { defaultPeerSessionConfig, peerSessionMachine } from '../../src/actors/peer-session.ts'
import { SESSION_PROTOCOL_VERSION } from '../../src/protocols/session-codec.ts'
import { VirtualClock } from '../../src/runtime/clock.ts'
import { createRandom } from '../../src/runtime/random.ts'
import type { FrameStream, Prober } from '../../src/runtime/ports.ts'

/** Every state node id below the root, in document order. */
function stateIds (machine: AnyStateMachine): string[] {
  const ids: string[] = []
  const walk = (node: AnyStateNode): void => {
    for (const child of Object.values(node.states) as AnyStateNode[]) { ids.push(child.id); walk(child) }
  }
  walk(machine.root)
  return ids
}

const matches = (descriptor: string, type: string): boolean =>
  descriptor === type || (descriptor.endsWith('.*') && type.startsWith(descriptor.slice(0, -1)))

/** The events a snapshot's transitions listen for: supplied variants where given, else bare `{ type }`. */
function eventsFor (supplied: EventObject[]) {
  return (snapshot: AnyMachineSnapshot): EventObject[] => {
    const descriptors = [...new Set(getNextTransitions(snapshot).map((t) => t.eventType as string))].filter((type) => type !== '')
    return descriptors.flatMap((descriptor) => {
      const variants = supplied.filter((event) => matches(descriptor, event.type))
      return variants.length > 0 ? variants : descriptor.includes('*') ? [] : [{ type: descriptor }]
    })
  }
}

interface Reachability {
  /** Shortest path (event types) to every resting state, keyed by the serialized state. */
  paths: Array<{ nodes: string[], events: string[], value: unknown }>
  reached: Set<string>
}

function explore (machine: AnyStateMachine, options: { input: unknown, events: EventObject[], serializeState: (snapshot: AnyMachineSnapshot) => string }): Reachability {
  const traversal = {
    input: options.input,
    events: eventsFor(options.events),
    serializeState: options.serializeState,
    limit: 100_000
  } as unknown as TraversalOptions<AnyMachineSnapshot, EventObject, unknown>
  const shortest = getShortestPaths(machine, traversal)
  const reached = new Set<string>()
  const paths = shortest.map((path) => {
    const nodes = (path.state as AnyMachineSnapshot)._nodes.map((node) => node.id)
    nodes.forEach((id) => reached.add(id))
    // The first step is the machine's own start (xstate.init), not an event anyone sends.
    const events = path.steps.map((step) => step.event.type).filter((type) => type !== 'xstate.init')
    return { nodes, events, value: (path.state as AnyMachineSnapshot).value }
  })
  // Transient states: visit every edge's microsteps.
  const adjacency = getAdjacencyMap(machine, traversal)
  for (const { state, transitions } of Object.values(adjacency)) {
    for (const { event } of Object.values(transitions) as Array<{ event: EventObject }>) {
      for (const [snapshot] of getMicrosteps(machine, state as AnyMachineSnapshot, event)) {
        (snapshot as AnyMachineSnapshot)._nodes.forEach((node) => reached.add(node.id))
      }
    }
  }
  return { paths, reached }
}

function assertAllReached (machine: AnyStateMachine, reachability: Reachability): void {
  const missing = stateIds(machine).filter((id) => !reachability.reached.has(id))
  assert.equal(missing, [], `unreachable states of ${machine.id}: ${missing.join(', ')}`)
}

/** The shortest path to the first resting state whose active nodes include `id`. */
function shortestTo (reachability: Reachability, id: string): string[] {
  const candidates = reachability.paths.filter((path) => path.nodes.includes(id))
  assert.ok(candidates.length > 0, `no resting path to ${id}`)
  return candidates.reduce((best, path) => path.events.length < best.events.length ? path : best).events
}

const idleProber: Prober = {
  probe: async () => await new Promise(() => {}),
  probeVia: async () => await new Promise(() => {})
}

test('graph: every state of health-prober is reachable (peer target, indirect k 2, degradedLatencyMs 100)', () => {
  const clock = new VirtualClock()
  const policy = { ...defaultHealthProberPolicy, degradedLatencyMs: 100, indirect: { k: 2, via: () => ['h1', 'h2'] } }
  const reachability = explore(healthProberMachine, {
    input: { target: { kind: 'peer', peerId: 'p' }, prober: idleProber, clock, random: createRandom(1), policy },
    events: [
      { type: 'xstate.done.actor.probe', output: { ok: true, latencyMs: 5 } },
      { type: 'xstate.done.actor.probe', output: { ok: false, latencyMs: 1, error: 'refused' } },
      { type: 'xstate.done.actor.indirectProbe', output: { asked: ['h1', 'h2'], reachedBy: ['h2'] } },
      { type: 'xstate.done.actor.indirectProbe', output: { asked: ['h1', 'h2'], reachedBy: [] } },
      { type: 'health.probe.succeeded', latencyMs: 5 },
      { type: 'health.probe.succeeded', latencyMs: 500 },
      { type: 'health.probe.failed', error: 'refused' },
      { type: 'health.cadence.set', intervalMs: 5000 }
    ] as unknown as EventObject[],
    serializeState: (snapshot) => {
      const { verdict, consecutiveOk, consecutiveFail } = snapshot.context
      return JSON.stringify([snapshot.value, verdict, Math.min(consecutiveOk, policy.rise), Math.min(consecutiveFail, policy.fall)])
    }
  })
  assertAllReached(healthProberMachine, reachability)
  // Sanity of the walk: healthy takes rise (3) results, suspicion fall (3). A probe's completion
  // (xstate.done.actor.probe) raises its result, so it counts as one.
  const results = (events: string[]): number => events.filter((type) => type.startsWith('health.probe.') || type === 'xstate.done.actor.probe').length
  const toHealthy = shortestTo(reachability, 'health-prober.verdict.healthy')
  assert.is(results(toHealthy), 3, toHealthy.join(' → '))
  const toSuspect = shortestTo(reachability, 'health-prober.verdict.degraded.suspect')
  assert.is(results(toSuspect), 3, toSuspect.join(' → '))
  const toFailed = shortestTo(reachability, 'health-prober.verdict.failed')
  assert.ok(toFailed.includes('xstate.done.actor.indirectProbe'), `a peer fails only through an indirect round: ${toFailed.join(' → ')}`)
})

test('graph: every state of prefix-announcer is reachable, suppressed only after 7 flaps', () => {
  const clock = new VirtualClock()
  const policy = defaultPrefixAnnouncerPolicy
  const reachability = explore(prefixAnnouncerMachine, {
    input: {
      prefix: '10.42.255.1/32', service: 'api', attributes: { preference: 100, load: 0, ttlMs: 30_000 },
      announce: () => {}, withdraw: () => {}, clock, random: createRandom(1), policy
    },
    events: [],
    // The clock stands still during the walk, so the penalty only grows, up to its ceiling.
    serializeState: (snapshot) => JSON.stringify([snapshot.value, snapshot.context.serviceHealth, snapshot.context.damping.penalty, snapshot.status])
  })
  assertAllReached(prefixAnnouncerMachine, reachability)
  const toSuppressed = shortestTo(reachability, 'prefix-announcer.suppressed')
  assert.is(toSuppressed.filter((type) => type === 'service.failed').length, 7, toSuppressed.join(' → '))
  const toDrained = shortestTo(reachability, 'prefix-announcer.drained')
  assert.equal(toDrained, ['announcer.drain'])
  const toDraining = shortestTo(reachability, 'prefix-announcer.draining')
  assert.equal(toDraining, ['service.healthy', 'xstate.after.announceDelay.prefix-announcer.announcing', 'announcer.drain'])
})

test('graph: every state of peer-session is reachable, transient closing/closed included', () => {
  const stream: FrameStream = {
    remotePeer: 'b', protocol: '/form-anycast/session/1.0.0', closed: false,
    send: () => true, onFrame: () => {}, onClose: () => {}, close: () => {}
  }
  const frame = (f: object): EventObject => ({ type: 'frame.received', frame: f } as EventObject)
  const reachability = explore(peerSessionMachine, {
    input: {
      localNodeId: 'a', peerId: 'b', networkId: 'net', config: defaultPeerSessionConfig,
      transport: { openSession: async () => stream }, clock: new VirtualClock(), random: createRandom(1)
    },
    events: [
      { type: 'session.incoming', stream } as EventObject,
      frame({ type: 'open', version: SESSION_PROTOCOL_VERSION, networkId: 'net', nodeId: 'b', holdTimeMs: 3000, capabilities: [] }),
      frame({ type: 'open', version: SESSION_PROTOCOL_VERSION, networkId: 'other', nodeId: 'b', holdTimeMs: 3000, capabilities: [] }),
      frame({ type: 'keepalive', sentAtMs: 1, echoSentAtMs: 0, echoHeldMs: 0 }),
      frame({ type: 'update', payload: new Uint8Array([1]) }),
      frame({ type: 'notification', code: 6, subcode: 0, message: 'cease' }),
      { type: 'frame.invalid', reason: 'bad length' } as EventObject,
      { type: 'stream.closed', reason: 'reset' } as EventObject
    ],
    // Counters (frames, failures) grow without bound; the state value is what is being covered.
    serializeState: (snapshot) => JSON.stringify(snapshot.value)
  })
  assertAllReached(peerSessionMachine, reachability)
  const toEstablished = shortestTo(reachability, 'peer-session.opened.established')
  // start, the stream (dialled or incoming), the peer's OPEN, its KEEPALIVE.
  assert.is(toEstablished.length, 4, toEstablished.join(' → '))
  assert.is(toEstablished[0], 'session.start')
  assert.ok(toEstablished[1]!.startsWith('xstate.done.actor.') || toEstablished[1] === 'session.incoming', toEstablished.join(' → '))
})

test('graph: an unreachable state would be reported (a machine with an orphan state)', async () => {
  const { setup } = await import('xstate')
  const orphan = setup({}).createMachine({ id: 'orphan', initial: 'a', states: { a: { on: { go: 'b' } }, b: {}, c: {} } })
  const reachability = explore(orphan, { input: undefined, events: [], serializeState: (snapshot) => JSON.stringify(snapshot.value) })
  assert.equal(stateIds(orphan).filter((id) => !reachability.reached.has(id)), ['orphan.c'])
})

test.run()
