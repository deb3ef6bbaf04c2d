// NAT traversal in the simulated network (sim-nat.ts): dials to NATed nodes go through a relay and
// are upgraded to direct connections as DCUtR does, or left relayed. Virtual time only.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { VirtualClock } from '../../src/runtime/clock.ts'
import type { FrameStream } from '../../src/runtime/ports.ts'
import { createRandom } from '../../src/runtime/random.ts'
import { type SimNetworkOptions, SimNetwork } from '../../src/runtime/sim-network.ts'
import { chooseRelay, isPunchable, resolveHolePunch, type NatType } from '../../src/runtime/sim-nat.ts'
import type { SimOverlay } from '../../src/runtime/sim-overlay.ts'

const LATENCY_MS = 10

interface World { clock: VirtualClock, network: SimNetwork, nodes: Map<string, SimOverlay> }

/** Started nodes a, b (NATed, of the given types) and a public relay r connected to both. */
function world (seed: number, options: Partial<SimNetworkOptions>, types: { a?: NatType | 'public', b?: NatType | 'public' } = {}): World {
  const clock = new VirtualClock()
  const network = new SimNetwork({ clock, random: createRandom(seed), latencyMs: () => LATENCY_MS, ...options })
  const nodes = new Map(['a', 'b', 'r'].map((id) => [id, network.createOverlay(id)]))
  for (const node of nodes.values()) void node.start()
  for (const id of ['a', 'b'] as const) {
    const type = types[id] ?? 'endpoint-independent'
    if (type !== 'public') network.setNat(id, true, type)
  }
  network.connectNow('a', 'r')
  network.connectNow('b', 'r')
  return { clock, network, nodes }
}

const flush = (): Promise<void> => new Promise((resolve) => { setImmediate(resolve) })

/** Settle `promise` on virtual time (1 ms steps, bounded); resolves to its error or 'ok' with the time. */
async function outcome (clock: VirtualClock, promise: Promise<unknown>, limitMs = 30_000): Promise<{ result: string, atMs: number }> {
  let result: string | undefined
  promise.then(() => { result = 'ok' }, (error: Error) => { result = error.message })
  for (let elapsed = 0; elapsed < limitMs && result === undefined; elapsed++) {
    await flush()
    if (result === undefined) clock.advance(1)
  }
  return { result: result ?? 'pending', atMs: clock.now() }
}

// One step of a punch: a relayed round trip (a → r → b → r → a) plus a direct one (a → b → a).
const STEP_MS = 6 * LATENCY_MS
// The direct handshake that finds the target silent behind its NAT.
const HANDSHAKE_MS = 2 * LATENCY_MS

test('NAT without holePunch: two NATed nodes sharing a relay never connect (the old model)', async () => {
  const w = world(1, {})
  const { result, atMs } = await outcome(w.clock, w.nodes.get('a')!.dial('b'))
  assert.match(result, /unreachable/)
  assert.is(atMs, w.network.connectTimeoutMs)
  assert.equal(w.network.holePunchStats(), { attempts: 0, punched: 0, reversals: 0, failedPairs: 0, noRelay: 0 })
})

test('hole punch: two endpoint-independent NATs connect after one synchronised connect through r, and the connection carries traffic both ways', async () => {
  const w = world(1, { holePunch: { punchSuccess: 1 } })
  const { result, atMs } = await outcome(w.clock, w.nodes.get('a')!.dial('b'))
  assert.is(result, 'ok')
  assert.is(atMs, HANDSHAKE_MS + STEP_MS)
  assert.equal(w.network.holePunchStats(), { attempts: 1, punched: 1, reversals: 0, failedPairs: 0, noRelay: 0 })
  // b opens a stream to a over the punched connection: no dial needed, frames flow both ways.
  let server: FrameStream | undefined
  w.nodes.get('a')!.handleStream('/echo/1', (stream) => { server = stream; stream.onFrame((frame) => stream.send(frame)) })
  const opened = w.nodes.get('b')!.openStream('a', '/echo/1')
  await outcome(w.clock, opened)
  const client = await opened
  const got: string[] = []
  client.onFrame((frame) => got.push(new TextDecoder().decode(frame)))
  client.send(new TextEncoder().encode('ping'))
  for (let i = 0; i < 100 && got.length === 0; i++) { w.clock.advance(1); await flush() }
  assert.ok(server !== undefined)
  assert.equal(got, ['ping'])
  assert.ok(w.nodes.get('a')!.connectedPeers().includes('b'))
})

test('hole punch: both NATs symmetric fails all 3 attempts; the pair stays relayed (no new punches) until one side restarts', async () => {
  const w = world(1, { holePunch: { punchSuccess: 1 } }, { a: 'symmetric', b: 'symmetric' })
  const first = await outcome(w.clock, w.nodes.get('a')!.dial('b'))
  assert.match(first.result, /hole punch through r failed 3 times/)
  assert.is(first.atMs, HANDSHAKE_MS + 3 * STEP_MS)
  assert.equal(w.network.holePunchStats(), { attempts: 3, punched: 0, reversals: 0, failedPairs: 1, noRelay: 0 })
  const again = await outcome(w.clock, w.nodes.get('b')!.dial('a'))
  assert.match(again.result, /unreachable/)
  assert.is(w.network.holePunchStats().attempts, 3)
  w.network.crash('b')
  w.network.restart('b')
  assert.is(w.network.holePunchStats().failedPairs, 0)
})

test('hole punch: one symmetric side is still punchable; a public dialer connects by reversal even to a symmetric NAT', async () => {
  const mixed = world(1, { holePunch: { punchSuccess: 1 } }, { a: 'endpoint-independent', b: 'symmetric' })
  assert.is((await outcome(mixed.clock, mixed.nodes.get('a')!.dial('b'))).result, 'ok')
  const reversal = world(1, { holePunch: { punchSuccess: 0 } }, { a: 'public', b: 'symmetric' })
  const { result, atMs } = await outcome(reversal.clock, reversal.nodes.get('a')!.dial('b'))
  assert.is(result, 'ok')
  assert.is(atMs, HANDSHAKE_MS + STEP_MS)
  assert.equal(reversal.network.holePunchStats(), { attempts: 0, punched: 0, reversals: 1, failedPairs: 0, noRelay: 0 })
})

test('hole punch: without a relay (the target\'s only peer is NATed too) the dial times out', async () => {
  const clock = new VirtualClock()
  const network = new SimNetwork({ clock, random: createRandom(1), latencyMs: () => LATENCY_MS, holePunch: { punchSuccess: 1 } })
  const a = network.createOverlay('a')
  for (const node of [a, network.createOverlay('b')]) void node.start()
  network.setNat('a', true, 'endpoint-independent')
  network.setNat('b', true, 'endpoint-independent')
  const { result, atMs } = await outcome(clock, a.dial('b'))
  assert.match(result, /unreachable/)
  assert.is(atMs, network.connectTimeoutMs)
  assert.is(network.holePunchStats().noRelay, 1)
})

test('hole punch: a punchable pair at punchSuccess 0.5 is decided by the seed; same seed, same outcome and timing', async () => {
  const runs: string[] = []
  for (const seed of [1, 1, 2, 3, 4, 5, 6]) {
    const w = world(seed, { holePunch: { punchSuccess: 0.5 } })
    const { result, atMs } = await outcome(w.clock, w.nodes.get('a')!.dial('b'))
    runs.push(`${result === 'ok' ? 'ok' : 'failed'}@${atMs}`)
  }
  assert.is(runs[0], runs[1])
  // Six seeds at p = 0.5 per attempt: attempts end at different steps (first, second, third, or all failed).
  assert.ok(new Set(runs.slice(1)).size >= 2, runs.join(' '))
})

test('NAT types: drawn per node from the seed with symmetricShare (0.25 of 2,000 nodes), the same for the same seed', () => {
  const draw = (seed: number): string[] => {
    const network = new SimNetwork({ clock: new VirtualClock(), random: createRandom(seed), holePunch: { symmetricShare: 0.25 } })
    return Array.from({ length: 2000 }, (_, i) => {
      network.createOverlay(`n${i}`)
      network.setNat(`n${i}`, true)
      return network.natType(`n${i}`)!
    })
  }
  const first = draw(7)
  assert.equal(draw(7), first)
  const symmetric = first.filter((type) => type === 'symmetric').length / first.length
  assert.ok(symmetric > 0.22 && symmetric < 0.28, `share ${symmetric}`)
})

test('hole punch options: bad values are rejected naming the field', () => {
  assert.throws(() => resolveHolePunch({ punchSuccess: 1.5 }), /holePunch.punchSuccess/)
  assert.throws(() => resolveHolePunch({ symmetricShare: -0.1 }), /holePunch.symmetricShare/)
  assert.throws(() => resolveHolePunch({ attempts: 0 }), /holePunch.attempts/)
  assert.equal(resolveHolePunch({}), { symmetricShare: 0.25, punchSuccess: 0.9, attempts: 3 })
})

test('sim-nat: punchability table and relay choice (shortest relayed path, ties to the lowest id)', () => {
  const table: Array<[NatType, NatType, boolean]> = [
    ['endpoint-independent', 'endpoint-independent', true],
    ['endpoint-independent', 'symmetric', true],
    ['symmetric', 'endpoint-independent', true],
    ['symmetric', 'symmetric', false]
  ]
  for (const [a, b, expected] of table) assert.is(isPunchable(a, b), expected, `${a} × ${b}`)
  const latency = (from: string, to: string): number => ({ 'a r1': 5, 'r1 b': 5, 'a r2': 1, 'r2 b': 2, 'a r3': 2, 'r3 b': 1 } as Record<string, number>)[`${from} ${to}`] ?? 100
  assert.is(chooseRelay('a', 'b', ['r1', 'r3', 'r2', 'a'], () => true, latency), 'r2')
  assert.is(chooseRelay('a', 'b', ['r1', 'r3', 'r2'], (id) => id !== 'r2', latency), 'r3')
  assert.is(chooseRelay('a', 'b', ['a', 'b'], () => true, latency), undefined)
})

test.run()
