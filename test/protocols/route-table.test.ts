import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fc from 'fast-check'
import { AnnouncementError } from '../../src/protocols/announcement-codec.ts'
import { RouteTable, fnv1a64, type ApplyResult } from '../../src/protocols/route-table.ts'
import type { HealthState, ReachReport, RouteAnnouncement, SignedAnnouncement } from '../../src/protocols/routes.ts'

const P1 = '10.42.255.1/32'
const P2 = '10.42.255.2/32'
const P3 = '2001:db8::/48'
const TTL = 30_000

interface Spec { prefix?: string, service?: string, origin: string, seq: number, withdrawn?: boolean, health?: HealthState, preference?: number, load?: number, ttlMs?: number }

function ann ({ prefix = P1, service = 'api', origin, seq, withdrawn = false, health = 'healthy', preference = 100, load = 0, ttlMs = TTL }: Spec): SignedAnnouncement {
  const announcement: RouteAnnouncement = { prefix, service, origin, seq, withdrawn, attributes: { health, preference, load, ttlMs } }
  return { announcement, signature: new Uint8Array([seq & 0xff]) }
}

function report (from: string, seq: number, entries: Record<string, number>, relaying: string[] = [], relayPending: string[] = []): ReachReport {
  const out: ReachReport = { from, seq, entries: Object.entries(entries).map(([origin, rttMs]) => ({ origin, rttMs })) }
  if (relaying.length > 0) out.relaying = relaying
  if (relayPending.length > 0) out.relayPending = relayPending
  return out
}

function table (): RouteTable {
  return new RouteTable({ self: 'me' })
}

// --- supersede / stale / duplicate / withdraw -------------------------------------------------------

const A = (seq: number, extra: Partial<Spec> = {}): Spec => ({ origin: 'a', seq, ...extra })

const applyRows: Array<[name: string, before: Spec[], incoming: Spec, expected: ApplyResult, liveAfter: number | undefined]> = [
  ['first announcement is accepted', [], A(5), { accepted: true, changedPrefix: P1 }, 5],
  ['newer seq supersedes', [A(5)], A(6, { preference: 200 }), { accepted: true, changedPrefix: P1 }, 6],
  ['newer seq with identical content is a refresh: accepted, nothing changed', [A(5)], A(6), { accepted: true }, 6],
  ['equal seq is a duplicate', [A(5)], A(5, { preference: 200 }), { accepted: false, reason: 'duplicate' }, 5],
  ['older seq is stale', [A(5)], A(4), { accepted: false, reason: 'stale' }, 5],
  ['withdrawal of a live candidate removes it', [A(5)], A(6, { withdrawn: true }), { accepted: true, changedPrefix: P1 }, undefined],
  ['older announcement replayed after a withdrawal is stale', [A(5), A(6, { withdrawn: true })], A(5), { accepted: false, reason: 'stale' }, undefined],
  ['replay of the withdrawal itself is a duplicate', [A(5), A(6, { withdrawn: true })], A(6, { withdrawn: true }), { accepted: false, reason: 'duplicate' }, undefined],
  ['re-announcement with a newer seq after a withdrawal is accepted', [A(5), A(6, { withdrawn: true })], A(7), { accepted: true, changedPrefix: P1 }, 7],
  ['withdrawal of an unknown candidate', [], A(3, { withdrawn: true }), { accepted: false, reason: 'withdrawn-unknown' }, undefined],
  ['the unknown withdrawal\'s seq is remembered: an older announcement arriving late is stale', [A(3, { withdrawn: true })], A(2), { accepted: false, reason: 'stale' }, undefined],
  ['a newer withdrawal of an already withdrawn candidate', [A(5), A(6, { withdrawn: true })], A(8, { withdrawn: true }), { accepted: false, reason: 'withdrawn-unknown' }, undefined],
  ['health change is a change', [A(5)], A(6, { health: 'degraded' }), { accepted: true, changedPrefix: P1 }, 6],
  ['load change is a change', [A(5)], A(6, { load: 0.5 }), { accepted: true, changedPrefix: P1 }, 6],
  ['service change is a change', [A(5)], A(6, { service: 'web' }), { accepted: true, changedPrefix: P1 }, 6]
]

for (const [name, before, incoming, expected, liveAfter] of applyRows) {
  test(`route-table: ${name}`, () => {
    const routes = table()
    before.forEach((spec, index) => routes.applyAnnouncement(ann(spec), index))
    assert.equal(routes.applyAnnouncement(ann(incoming), 100), expected)
    const entry = routes.entry(P1)
    assert.equal(entry.candidates.map((c) => c.seq), liveAfter === undefined ? [] : [liveAfter])
    assert.is(entry.origin, undefined, 'no path to a yet: the candidate is not usable')
  })
}

test('route-table: another origin\'s seq is independent, and each (prefix, origin) is its own sequence', () => {
  const routes = table()
  assert.ok(routes.applyAnnouncement(ann({ origin: 'a', seq: 10 }), 0).accepted)
  assert.ok(routes.applyAnnouncement(ann({ origin: 'b', seq: 1 }), 0).accepted)
  assert.ok(routes.applyAnnouncement(ann({ origin: 'a', seq: 1, prefix: P2 }), 0).accepted)
  assert.equal(routes.entry(P1).candidates.map((c) => c.origin), ['a', 'b'])
})

test('route-table: an invalid announcement throws AnnouncementError (callers decode first)', () => {
  assert.throws(() => table().applyAnnouncement(ann({ origin: 'a', seq: 1, prefix: '10.0.0.1/8' }), 0), (error: unknown) => error instanceof AnnouncementError && error.field === 'prefix')
})

// --- expiry ---------------------------------------------------------------------------------------

test('route-table: an announcement lapses exactly ttl after receipt; duplicates do not refresh it; the seq outlives it', () => {
  const routes = table()
  routes.applyAnnouncement(ann({ origin: 'a', seq: 5 }), 1_000)
  routes.applyAnnouncement(ann({ origin: 'b', seq: 1, ttlMs: 90_000 }), 1_000)
  assert.equal(routes.applyAnnouncement(ann({ origin: 'a', seq: 5 }), 20_000), { accepted: false, reason: 'duplicate' })
  assert.equal(routes.expire(1_000 + TTL - 1), [])
  assert.equal(routes.expire(1_000 + TTL), [P1])
  assert.equal(routes.entry(P1).candidates.map((c) => c.origin), ['b'])
  assert.equal(routes.expire(1_000 + TTL), [], 'reported once')
  // Tombstone: a replay of the lapsed announcement is still a duplicate, an older one still stale.
  assert.equal(routes.applyAnnouncement(ann({ origin: 'a', seq: 5 }), 40_000), { accepted: false, reason: 'duplicate' })
  assert.equal(routes.applyAnnouncement(ann({ origin: 'a', seq: 4 }), 40_000), { accepted: false, reason: 'stale' })
  assert.is(routes.stats().tombstones, 1)
  // Forgotten one ttl after it lapsed (2 × ttl after receipt).
  assert.equal(routes.expire(1_000 + 2 * TTL), [])
  assert.is(routes.stats().tombstones, 0)
  assert.equal(routes.expire(91_000), [P1])
  assert.is(routes.stats().tombstones, 1)
  assert.equal(routes.expire(181_000), [])
  assert.equal(routes.stats(), { prefixes: 0, liveAnnouncements: 0, tombstones: 0, neighbours: 0, droppedTableFull: 0, droppedReachReports: 0 })
  assert.equal(routes.entries(), [])
})

test('route-table: a newer seq refreshes the receipt time; expiry is reported per prefix, sorted', () => {
  const routes = table()
  routes.applyAnnouncement(ann({ origin: 'a', seq: 1, prefix: P2 }), 0)
  routes.applyAnnouncement(ann({ origin: 'a', seq: 1, prefix: P1 }), 0)
  routes.applyAnnouncement(ann({ origin: 'b', seq: 1, prefix: P1 }), 0)
  routes.applyAnnouncement(ann({ origin: 'a', seq: 2, prefix: P3 }), 0)
  assert.equal(routes.applyAnnouncement(ann({ origin: 'a', seq: 3, prefix: P3 }), TTL / 3), { accepted: true })
  assert.equal(routes.expire(TTL), [P1, P2])
  assert.equal(routes.entries().map((e) => e.prefix), [P3])
  assert.equal(routes.expire(TTL / 3 + TTL), [P3])
})

test('route-table: a withdrawal tombstone is forgotten after the withdrawal\'s ttl, then an old replay is accepted again', () => {
  const routes = table()
  routes.applyAnnouncement(ann({ origin: 'a', seq: 5 }), 0)
  routes.applyAnnouncement(ann({ origin: 'a', seq: 6, withdrawn: true, ttlMs: 5_000 }), 1_000)
  assert.equal(routes.expire(5_999), [])
  assert.equal(routes.applyAnnouncement(ann({ origin: 'a', seq: 5 }), 5_999), { accepted: false, reason: 'stale' })
  assert.equal(routes.expire(6_000), [])
  assert.equal(routes.applyAnnouncement(ann({ origin: 'a', seq: 5 }), 6_000), { accepted: true, changedPrefix: P1 })
})

// --- reachability: direct, relay, loops, neighbour drop -----------------------------------------------

function twoOrigins (): RouteTable {
  const routes = table()
  routes.applyAnnouncement(ann({ origin: 'a', seq: 1 }), 0)
  routes.applyAnnouncement(ann({ origin: 'b', seq: 1 }), 0)
  routes.applyAnnouncement(ann({ origin: 'b', seq: 1, prefix: P2 }), 0)
  return routes
}

test('route-table: direct reach makes a candidate usable; the nearest origin wins; changed sets name the origin\'s prefixes only', () => {
  const routes = twoOrigins()
  assert.is(routes.entry(P1).reason, 'no-usable-origin')
  assert.equal(routes.setDirectReach('a', 40), [P1])
  assert.equal(routes.setDirectReach('b', 20), [P1, P2])
  let entry = routes.entry(P1)
  assert.equal([entry.origin, entry.nextHop, entry.costMs, entry.reason], ['b', 'b', 20, 'cost'])
  assert.equal(routes.setDirectReach('b', 20), [], 'same measurement, nothing changed')
  assert.equal(routes.setDirectReach('c', 5), [], 'an origin that announces nothing changes nothing')
  assert.equal(routes.setDirectReach('b', undefined), [P1, P2])
  entry = routes.entry(P1)
  assert.equal([entry.origin, entry.reason], ['a', 'only-candidate'])
  assert.throws(() => routes.setDirectReach('a', Number.NaN), RangeError)
  assert.throws(() => routes.setDirectReach('a', -1), RangeError)
})

test('route-table: a relay path through a neighbour reaches an origin this node cannot reach; cost adds both legs', () => {
  const routes = twoOrigins()
  assert.equal(routes.applyReachReport('r', 10, report('r', 1, { a: 25 })), [P1])
  const entry = routes.entry(P1)
  assert.equal([entry.origin, entry.nextHop, entry.costMs], ['a', 'r', 35])
  assert.equal(entry.candidates[0]!.path, { hops: ['r', 'a'], costMs: 35 })
  // A direct path that is cheaper wins; a dearer one does not.
  assert.equal(routes.setDirectReach('a', 50), [])
  assert.equal(routes.setDirectReach('a', 30), [P1])
  assert.equal(routes.entry(P1).nextHop, 'a')
  // The cheapest of several relays, deterministic on a tie (lowest relay id).
  routes.setDirectReach('a', undefined)
  routes.applyReachReport('q', 5, report('q', 1, { a: 30 }))
  assert.equal(routes.entry(P1).candidates[0]!.path, { hops: ['q', 'a'], costMs: 35 })
})

test('route-table: a relay path must beat the direct path by the incumbent margin (10 %, at least 0.5 ms), so RTT noise does not move the path', () => {
  const routes = twoOrigins()
  routes.setDirectReach('a', 21)
  routes.applyReachReport('r', 1, report('r', 1, { a: 19 }))
  assert.equal(routes.entry(P1).candidates[0]!.path, { hops: ['a'], costMs: 21 }, '20 ms through r is not 2.1 ms better')
  assert.equal(routes.applyReachReport('r', 1, report('r', 2, { a: 17.8 })), [P1])
  assert.equal(routes.entry(P1).candidates[0]!.path, { hops: ['r', 'a'], costMs: 18.8 }, '18.8 ms is')
  // Sub-millisecond links: the margin is at least 0.5 ms.
  routes.setDirectReach('a', 0.6)
  routes.applyReachReport('r', 0.1, report('r', 3, { a: 0.1 }))
  assert.equal(routes.entry(P1).nextHop, 'a', '0.2 ms through r does not beat 0.6 ms direct by 0.5 ms')
})

test('route-table: a demoted direct path yields to any relay path, however dearer, and is still used when no relay is left', () => {
  const routes = twoOrigins()
  routes.setDirectReach('a', 10)
  routes.applyReachReport('r', 10, report('r', 1, { a: 25 }))
  assert.equal(routes.entry(P1).candidates[0]!.path, { hops: ['a'], costMs: 10 }, 'direct is cheaper')
  assert.equal(routes.setDirectDemoted('a', true), [P1])
  assert.ok(routes.isDirectDemoted('a'))
  assert.equal(routes.entry(P1).candidates[0]!.path, { hops: ['r', 'a'], costMs: 35 }, 'demoted: the relay carries it')
  assert.equal(routes.setDirectDemoted('a', true), [], 'idempotent')
  // The only relay goes: the demoted direct path is better than none.
  assert.equal(routes.dropNeighbour('r'), [P1])
  assert.equal(routes.entry(P1).candidates[0]!.path, { hops: ['a'], costMs: 10 })
  routes.applyReachReport('r', 10, report('r', 2, { a: 25 }))
  assert.equal(routes.setDirectDemoted('a', false), [P1])
  assert.equal(routes.entry(P1).nextHop, 'a')
})

test('route-table: a neighbour relaying a prefix itself is no relay for that prefix, and still one for the origin\'s others', () => {
  const routes = twoOrigins()
  routes.applyAnnouncement(ann({ prefix: P2, origin: 'a', seq: 1 }), 0)
  assert.equal(routes.applyReachReport('r', 10, report('r', 1, { a: 25 }, [P1])), [P2], 'only P2 gains a path')
  assert.is(routes.entry(P1).origin, undefined, 'r would hand P1 to a relay of its own: no path')
  assert.equal([routes.entry(P2).origin, routes.entry(P2).nextHop], ['a', 'r'])
  assert.equal(routes.pathTo('a'), { hops: ['r', 'a'], costMs: 35 }, 'pathTo (status, probe tiers) ignores the flag')
  // Its next report no longer relays P1: r is a relay for P1 again.
  assert.equal(routes.applyReachReport('r', 10, report('r', 2, { a: 25 })), [P1])
  assert.equal(routes.entry(P1).nextHop, 'r')
})

test('route-table: a neighbour about to relay a prefix stays a relay for it only to nodes whose id sorts after its own', () => {
  // 'k' < 'me' < 'r': k's wish to relay leaves us its dependant; r's does not.
  const routes = new RouteTable({ self: 'me' })
  routes.applyAnnouncement(ann({ origin: 'a', seq: 1 }), 0)
  routes.applyReachReport('k', 10, report('k', 1, { a: 25 }, [], [P1]))
  assert.equal([routes.entry(P1).origin, routes.entry(P1).nextHop, routes.entry(P1).costMs], ['a', 'k', 35], 'k is about to relay P1: still ours (k < me)')
  routes.applyReachReport('r', 5, report('r', 1, { a: 25 }, [], [P1]))
  assert.equal(routes.entry(P1).nextHop, 'k', 'r is cheaper but about to relay P1, and r > me: not a relay for us')
  assert.equal(routes.applyReachReport('r', 5, report('r', 2, { a: 25 })), [P1], 'r no longer about to relay')
  assert.equal(routes.entry(P1).nextHop, 'r')
  // k opens (relaying): no relay for P1 any more, for anyone.
  routes.applyReachReport('r', 5, report('r', 3, { a: 25 }, [P1]))
  assert.equal(routes.applyReachReport('k', 10, report('k', 2, { a: 25 }, [P1])), [P1])
  assert.is(routes.entry(P1).origin, undefined, 'both relay P1 themselves: no path')
})

test('route-table: with gateRelays a prefix uses relay paths only once opened; wantsRelay says what it would do', () => {
  const routes = new RouteTable({ self: 'me', gateRelays: true })
  routes.applyAnnouncement(ann({ origin: 'a', seq: 1 }), 0)
  routes.applyAnnouncement(ann({ origin: 'b', seq: 1 }), 0)
  routes.setDirectReach('b', 40)
  routes.applyReachReport('r', 2, report('r', 1, { a: 10 }))
  assert.equal([routes.entry(P1).origin, routes.entry(P1).nextHop], ['b', 'b'], 'gate closed: direct paths only')
  assert.ok(routes.wantsRelay(P1), 'open, it would relay to a through r')
  assert.not.ok(routes.relaysOpenFor(P1))
  assert.equal(routes.setRelaysOpen(P1, true), [P1])
  assert.equal(routes.setRelaysOpen(P1, true), [], 'idempotent')
  assert.equal([routes.entry(P1).origin, routes.entry(P1).nextHop], ['a', 'r'])
  // A cheaper direct path: no relay wanted any more.
  routes.setDirectReach('a', 5)
  assert.not.ok(routes.wantsRelay(P1))
  assert.equal(routes.setRelaysOpen(P1, false), [], 'the direct path already won: closing moves nothing')
  assert.equal(routes.entry(P1).nextHop, 'a')
  // Closed again while a relay is the best path: the route falls back to what is direct.
  routes.setDirectReach('a', undefined)
  routes.setRelaysOpen(P1, true)
  assert.equal(routes.entry(P1).nextHop, 'r')
  assert.equal(routes.setRelaysOpen(P1, false), [P1])
  assert.equal([routes.entry(P1).origin, routes.entry(P1).nextHop], ['b', 'b'])
  assert.not.ok(routes.wantsRelay(P2), 'an unknown prefix wants nothing')
  assert.not.ok(new RouteTable({ self: 'a' }).wantsRelay(P1))
})

test('route-table: two nodes that each demoted their direct path cannot relay a prefix through each other once both flag it', () => {
  // x and y both reach origin o directly, and both demoted that path (Formation's rule): each
  // prefers any relay, and each reports reaching o. Without the relaying flag they loop.
  const make = (self: string): RouteTable => {
    const routes = new RouteTable({ self, gateRelays: true })
    routes.applyAnnouncement(ann({ origin: 'o', seq: 1 }), 0)
    routes.setDirectReach('o', 20)
    routes.setDirectDemoted('o', true)
    return routes
  }
  const x = make('x')
  const y = make('y')
  x.applyReachReport('y', 1, report('y', 1, { o: 20 }))
  y.applyReachReport('x', 1, report('x', 1, { o: 20 }))
  assert.ok(x.wantsRelay(P1) && y.wantsRelay(P1), 'each would relay through the other')
  x.setRelaysOpen(P1, true)
  y.setRelaysOpen(P1, true)
  assert.equal([x.entry(P1).nextHop, y.entry(P1).nextHop], ['y', 'x'], 'opened without flags: a loop')
  // With the flag each one's report carries, neither is a relay for the other.
  x.applyReachReport('y', 1, report('y', 2, { o: 20 }, [P1]))
  y.applyReachReport('x', 1, report('x', 2, { o: 20 }, [P1]))
  assert.equal([x.entry(P1).nextHop, y.entry(P1).nextHop], ['o', 'o'], 'both fall back to the demoted direct path')
  assert.not.ok(x.wantsRelay(P1) || y.wantsRelay(P1))
})

test('route-table: paths through this node are loops and are never used', () => {
  const routes = table()
  routes.applyAnnouncement(ann({ origin: 'a', seq: 1 }), 0)
  routes.applyAnnouncement(ann({ origin: 'me', seq: 1, prefix: P2 }), 0)
  // A neighbour that reaches this node: not a path to anything of ours via it.
  assert.equal(routes.applyReachReport('r', 10, report('r', 1, { me: 5 })), [])
  assert.equal(routes.entry(P2).candidates[0]!.path, { hops: ['me'], costMs: 0 }, 'own prefix is local')
  // A report claiming to come from this node is ignored and counted.
  assert.equal(routes.applyReachReport('me', 0, report('me', 1, { a: 1 })), [])
  // A neighbour reporting itself adds no relay path.
  assert.equal(routes.applyReachReport('a', 10, report('a', 1, { a: 0 })), [])
  assert.is(routes.entry(P1).origin, undefined)
  for (const entry of routes.entries()) for (const c of entry.candidates) assert.not.ok(c.path?.hops.slice(0, -1).includes('me') ?? false)
  assert.is(routes.stats().droppedReachReports, 1)
})

test('route-table: a report whose sender is not the neighbour is ignored and counted', () => {
  const routes = twoOrigins()
  assert.equal(routes.applyReachReport('r', 10, report('x', 1, { a: 1 })), [])
  assert.is(routes.stats().droppedReachReports, 1)
  assert.is(routes.stats().neighbours, 0)
})

test('route-table: dropping a neighbour removes every relay path through it at once', () => {
  const routes = twoOrigins()
  routes.applyReachReport('r', 10, report('r', 1, { a: 25, b: 5 }))
  routes.applyReachReport('q', 50, report('q', 1, { a: 1 }))
  assert.equal(routes.entry(P1).origin, 'b')
  assert.equal(routes.dropNeighbour('r'), [P1, P2])
  assert.is(routes.entry(P2).origin, undefined)
  assert.equal([routes.entry(P1).origin, routes.entry(P1).nextHop, routes.entry(P1).costMs], ['a', 'q', 51])
  assert.equal(routes.dropNeighbour('r'), [], 'idempotent')
  // undefined neighbour RTT is the same as a drop.
  assert.equal(routes.applyReachReport('q', undefined, report('q', 2, { a: 1 })), [P1])
  assert.is(routes.entry(P1).origin, undefined)
  assert.is(routes.stats().neighbours, 0)
})

test('route-table: reach reports replace by seq; an older or equal seq only updates the RTT to the neighbour', () => {
  const routes = twoOrigins()
  routes.applyReachReport('r', 10, report('r', 5, { a: 25 }))
  assert.equal(routes.applyReachReport('r', 10, report('r', 6, { a: 25, b: 5 })), [P1, P2])
  assert.equal(routes.applyReachReport('r', 10, report('r', 7, { b: 5 })), [P1], 'a dropped from the report')
  assert.is(routes.entry(P1).origin, 'b')
  assert.equal(routes.applyReachReport('r', 20, report('r', 3, { a: 1 })), [P1, P2], 'old report: only the RTT changes')
  assert.equal(routes.entry(P2).costMs, 25)
  assert.equal(routes.entry(P1).candidates.find((c) => c.origin === 'a')!.path, undefined)
  assert.equal(routes.setNeighbourRtt('r', 20), [])
  assert.equal(routes.setNeighbourRtt('r', 1), [P1, P2])
  assert.equal(routes.entry(P2).costMs, 6)
  assert.equal(routes.setNeighbourRtt('unknown', 1), [])
  // A new session after a drop starts again from any seq.
  routes.dropNeighbour('r')
  assert.equal(routes.applyReachReport('r', 10, report('r', 1, { a: 2 })), [P1])
})

test('route-table: reach for an origin with no announcements yet is kept and used when it announces', () => {
  const routes = table()
  assert.equal(routes.applyReachReport('r', 10, report('r', 1, { c: 5 })), [])
  routes.applyAnnouncement(ann({ origin: 'c', seq: 1 }), 0)
  assert.equal([routes.entry(P1).origin, routes.entry(P1).nextHop, routes.entry(P1).costMs], ['c', 'r', 15])
})

test('route-table: invalidateOrigin removes the origin everywhere; replays stay out; its next seq comes back', () => {
  const routes = twoOrigins()
  routes.setDirectReach('a', 10)
  routes.setDirectReach('b', 5)
  assert.equal(routes.invalidateOrigin('b'), [P1, P2])
  assert.equal(routes.invalidateOrigin('b'), [])
  assert.is(routes.entry(P1).origin, 'a')
  assert.equal(routes.entries().map((e) => e.prefix), [P1])
  assert.equal(routes.applyAnnouncement(ann({ origin: 'b', seq: 1 }), 10), { accepted: false, reason: 'duplicate' })
  assert.equal(routes.applyAnnouncement(ann({ origin: 'b', seq: 2 }), 10), { accepted: true, changedPrefix: P1 })
  assert.is(routes.entry(P1).origin, 'b', 'direct reach was kept')
  assert.equal(routes.snapshotAnnouncements().map((s) => `${s.announcement.prefix} ${s.announcement.origin}`), [`${P1} a`, `${P1} b`], 'the invalidated P2 is not re-sent')
})

test('route-table: this node\'s own announcement routes locally at cost 0 and wins unless outranked', () => {
  const routes = table()
  routes.applyAnnouncement(ann({ origin: 'a', seq: 1 }), 0)
  routes.applyAnnouncement(ann({ origin: 'me', seq: 1 }), 0)
  routes.setDirectReach('a', 1)
  assert.equal([routes.entry(P1).origin, routes.entry(P1).nextHop, routes.entry(P1).costMs], ['me', 'me', 0])
  routes.applyAnnouncement(ann({ origin: 'me', seq: 2, health: 'degraded' }), 0)
  assert.equal([routes.entry(P1).origin, routes.entry(P1).reason], ['a', 'health'])
})

// --- reading: entries, service, snapshot, digest, bounds ---------------------------------------------

test('route-table: entries are sorted by prefix and carry the chosen origin\'s service', () => {
  const routes = table()
  routes.applyAnnouncement(ann({ origin: 'b', seq: 1, prefix: P3, service: 'web' }), 0)
  routes.applyAnnouncement(ann({ origin: 'a', seq: 1, prefix: P2, service: 'api' }), 0)
  routes.applyAnnouncement(ann({ origin: 'c', seq: 1, prefix: P2, service: 'api-v2' }), 0)
  routes.setDirectReach('c', 5)
  assert.equal(routes.entries().map((e) => [e.prefix, e.service, e.origin]), [[P2, 'api-v2', 'c'], [P3, 'web', undefined]])
  assert.equal(routes.entry('192.0.2.0/24'), { prefix: '192.0.2.0/24', service: '', origin: undefined, nextHop: undefined, costMs: undefined, reason: 'no-usable-origin', candidates: [] })
  routes.applyAnnouncement(ann({ origin: 'b', seq: 2, prefix: P3, service: 'web', withdrawn: true }), 0)
  assert.is(routes.entry(P3).service, '', 'no live candidate, no service')
})

test('route-table: snapshot holds live announcements and signed withdrawals, sorted by (prefix, origin)', () => {
  const routes = table()
  const withdrawal = ann({ origin: 'z', seq: 2, withdrawn: true })
  routes.applyAnnouncement(ann({ origin: 'b', seq: 1, prefix: P2 }), 0)
  routes.applyAnnouncement(ann({ origin: 'z', seq: 1 }), 0)
  routes.applyAnnouncement(withdrawal, 0)
  routes.applyAnnouncement(ann({ origin: 'a', seq: 3 }), 0)
  const snapshot = routes.snapshotAnnouncements()
  assert.equal(snapshot.map((s) => [s.announcement.prefix, s.announcement.origin, s.announcement.seq]), [[P1, 'a', 3], [P1, 'z', 2], [P2, 'b', 1]])
  assert.is(snapshot[1], withdrawal)
  assert.is(routes.announcement(P1, 'z'), withdrawal)
  // A neighbour fed the snapshot ends with the same live table.
  const neighbour = new RouteTable({ self: 'n' })
  for (const s of snapshot) neighbour.applyAnnouncement(s, 0)
  assert.is(neighbour.digest(), routes.digest())
})

test('route-table: digest is FNV-1a 64 over sorted live (prefix, origin, seq); order-independent, ignores tombstones', () => {
  const encoder = new TextEncoder()
  assert.is(fnv1a64(encoder.encode('')), 'cbf29ce484222325')
  assert.is(fnv1a64(encoder.encode('a')), 'af63dc4c8601ec8c')
  assert.is(fnv1a64(encoder.encode('foobar')), '85944171f73967e8')
  const one = table()
  const two = new RouteTable({ self: 'other' })
  const items = [ann({ origin: 'a', seq: 1 }), ann({ origin: 'b', seq: 7, prefix: P3 }), ann({ origin: 'c', seq: 2, prefix: P2 })]
  items.forEach((s) => one.applyAnnouncement(s, 0))
  ;[...items].reverse().forEach((s) => two.applyAnnouncement(s, 5))
  two.applyAnnouncement(ann({ origin: 'd', seq: 1, withdrawn: true }), 5)
  assert.is(one.digest(), two.digest())
  assert.match(one.digest(), /^3:[0-9a-f]{16}$/)
  assert.is(one.digest(), `3:${fnv1a64(encoder.encode(`${P1} a 1\n${P2} c 2\n${P3} b 7\n`))}`)
  two.applyAnnouncement(ann({ origin: 'a', seq: 2 }), 5)
  assert.is.not(one.digest(), two.digest())
  assert.is(table().digest(), `0:${fnv1a64(new Uint8Array(0))}`)
})

test('route-table: bounds — a full table drops new prefixes and new origins and counts them; known ones still update', () => {
  const routes = new RouteTable({ self: 'me', maxPrefixes: 2, maxOriginsPerPrefix: 2 })
  routes.applyAnnouncement(ann({ origin: 'a', seq: 1, prefix: P1 }), 0)
  routes.applyAnnouncement(ann({ origin: 'a', seq: 1, prefix: P2 }), 0)
  assert.equal(routes.applyAnnouncement(ann({ origin: 'a', seq: 1, prefix: P3 }), 0), { accepted: false, reason: 'table-full' })
  routes.applyAnnouncement(ann({ origin: 'b', seq: 1, prefix: P1 }), 0)
  assert.equal(routes.applyAnnouncement(ann({ origin: 'c', seq: 1, prefix: P1 }), 0), { accepted: false, reason: 'table-full' })
  assert.equal(routes.applyAnnouncement(ann({ origin: 'b', seq: 2, prefix: P1, preference: 7 }), 0), { accepted: true, changedPrefix: P1 })
  assert.is(routes.stats().droppedTableFull, 2)
  // Room comes back once records are forgotten.
  routes.expire(2 * TTL)
  assert.equal(routes.applyAnnouncement(ann({ origin: 'a', seq: 1, prefix: P3 }), 2 * TTL).accepted, true)
})

test('route-table: bounds — reports from more neighbours than the bound are dropped and counted', () => {
  const routes = new RouteTable({ self: 'me', maxNeighbours: 1 })
  routes.applyReachReport('r', 1, report('r', 1, {}))
  assert.equal(routes.applyReachReport('q', 1, report('q', 1, { a: 1 })), [])
  assert.equal([routes.stats().neighbours, routes.stats().droppedReachReports], [1, 1])
})

// --- properties ---------------------------------------------------------------------------------------

const opArb = fc.record({
  prefix: fc.constantFrom(P1, P2, P3),
  origin: fc.constantFrom('a', 'b', 'c', 'me'),
  seq: fc.integer({ min: 0, max: 6 }),
  withdrawn: fc.boolean(),
  health: fc.constantFrom<HealthState>('healthy', 'degraded', 'failed'),
  preference: fc.constantFrom(100, 200)
}, { noNullPrototype: true })

/** Content determined by (prefix, origin, seq), as signed announcements are: one seq, one content. */
function canonicalOps (ops: Array<Spec & { prefix: string }>): SignedAnnouncement[] {
  const bySeq = new Map<string, Spec>()
  for (const op of ops) if (!bySeq.has(`${op.prefix} ${op.origin} ${op.seq}`)) bySeq.set(`${op.prefix} ${op.origin} ${op.seq}`, op)
  return ops.map((op) => ann(bySeq.get(`${op.prefix} ${op.origin} ${op.seq}`)!))
}

test('route-table: property — any arrival order of the same announcements gives the same entries, snapshot and digest', () => {
  fc.assert(fc.property(fc.array(opArb, { maxLength: 30 }).map(canonicalOps).chain((list) => fc.tuple(fc.constant(list), fc.shuffledSubarray(list, { minLength: list.length, maxLength: list.length }))), ([list, shuffled]) => {
    const one = table()
    const two = table()
    for (const routes of [one, two]) {
      routes.setDirectReach('a', 10)
      routes.applyReachReport('r', 5, report('r', 1, { b: 3, c: 30 }))
    }
    list.forEach((s) => one.applyAnnouncement(s, 0))
    shuffled.forEach((s) => two.applyAnnouncement(s, 0))
    assert.equal(two.entries(), one.entries())
    assert.equal(two.snapshotAnnouncements(), one.snapshotAnnouncements())
    assert.is(two.digest(), one.digest())
  }), { seed: 31, numRuns: 500 })
})

test('route-table: property — changed sets are complete: a prefix not reported changed has the same entry as before', () => {
  const step = fc.oneof(
    opArb.map((op) => ({ kind: 'announce' as const, op })),
    fc.record({ kind: fc.constant('direct' as const), origin: fc.constantFrom('a', 'b', 'c'), rttMs: fc.option(fc.constantFrom(1, 10, 40), { nil: undefined }) }),
    fc.record({ kind: fc.constant('reach' as const), neighbour: fc.constantFrom('r', 'q'), rttMs: fc.option(fc.constantFrom(1, 20), { nil: undefined }), seq: fc.nat(5), entries: fc.dictionary(fc.constantFrom('a', 'b', 'c', 'me', 'r', 'q'), fc.constantFrom(0, 5, 50)) }),
    fc.record({ kind: fc.constant('invalidate' as const), origin: fc.constantFrom('a', 'b', 'c') }),
    fc.record({ kind: fc.constant('expire' as const), advanceMs: fc.constantFrom(1_000, 15_000, 31_000) }),
    fc.record({ kind: fc.constant('flagged' as const), neighbour: fc.constantFrom('r', 'q'), rttMs: fc.constantFrom(1, 20), seq: fc.nat(5), entries: fc.dictionary(fc.constantFrom('a', 'b', 'c'), fc.constantFrom(0, 5, 50)), relaying: fc.subarray([P1, P2, P3], { minLength: 1 }) }),
    fc.record({ kind: fc.constant('open' as const), prefix: fc.constantFrom(P1, P2, P3), open: fc.boolean() })
  )
  fc.assert(fc.property(fc.boolean(), fc.array(step, { maxLength: 40 }), (gateRelays, steps) => {
    const routes = new RouteTable({ self: 'me', gateRelays })
    let nowMs = 0
    const seen = new Set<string>()
    for (const s of steps) {
      const before = new Map([P1, P2, P3].map((prefix) => [prefix, JSON.stringify(routes.entry(prefix))]))
      let changed: string[]
      if (s.kind === 'announce') {
        const key = `${s.op.prefix} ${s.op.origin} ${s.op.seq}`
        if (seen.has(key)) continue // one content per seq, as with real signatures
        seen.add(key)
        const result = routes.applyAnnouncement(ann(s.op), nowMs)
        changed = result.changedPrefix === undefined ? [] : [result.changedPrefix]
      } else if (s.kind === 'direct') changed = routes.setDirectReach(s.origin, s.rttMs)
      else if (s.kind === 'reach') changed = routes.applyReachReport(s.neighbour, s.rttMs, report(s.neighbour, s.seq, s.entries))
      else if (s.kind === 'flagged') changed = routes.applyReachReport(s.neighbour, s.rttMs, report(s.neighbour, s.seq, s.entries, s.relaying))
      else if (s.kind === 'open') changed = routes.setRelaysOpen(s.prefix, s.open)
      else if (s.kind === 'invalidate') changed = routes.invalidateOrigin(s.origin)
      else changed = routes.expire(nowMs += s.advanceMs)
      assert.equal(changed, [...changed].sort(), 'sorted')
      for (const [prefix, json] of before) {
        if (changed.includes(prefix)) continue
        const after = routes.entry(prefix)
        // Only the candidates' seq may move without a report (a pure refresh).
        const strip = (text: string): string => text.replace(/"seq":\d+/g, '')
        assert.is(strip(JSON.stringify(after)), strip(json), `${prefix} changed without being reported after ${JSON.stringify(s)}`)
      }
    }
  }), { seed: 32, numRuns: 800 })
})

test('route-table: property — pathTo (cached) equals the best path recomputed from the reach state after any mutations', () => {
  const step = fc.oneof(
    fc.record({ kind: fc.constant('direct' as const), origin: fc.constantFrom('a', 'b', 'c'), rttMs: fc.option(fc.constantFrom(1, 10, 21, 40), { nil: undefined }) }),
    fc.record({ kind: fc.constant('reach' as const), neighbour: fc.constantFrom('r', 'q'), rttMs: fc.option(fc.constantFrom(1, 20, 35), { nil: undefined }), seq: fc.nat(5), entries: fc.dictionary(fc.constantFrom('a', 'b', 'c', 'me', 'r', 'q'), fc.constantFrom(0, 5, 20, 50)) }),
    fc.record({ kind: fc.constant('rtt' as const), neighbour: fc.constantFrom('r', 'q'), rttMs: fc.constantFrom(1, 20, 35) }),
    fc.record({ kind: fc.constant('drop' as const), neighbour: fc.constantFrom('r', 'q') }),
    fc.record({ kind: fc.constant('read' as const), origin: fc.constantFrom('a', 'b', 'c') }),
    fc.record({ kind: fc.constant('hold' as const), origin: fc.constantFrom('a', 'b', 'c'), held: fc.boolean() })
  )
  fc.assert(fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
    const routes = table()
    for (const origin of ['a', 'b', 'c']) routes.applyAnnouncement(ann({ origin, seq: 1 }), 0)
    const direct = new Map<string, number>()
    const neighbours = new Map<string, { rttMs: number, seq: number, entries: Record<string, number> }>()
    const held = new Set<string>()
    const model = (origin: string): string => {
      const relays: Array<{ hops: string[], costMs: number }> = []
      for (const [relay, reach] of held.has(origin) ? [] : neighbours) {
        if (reach.entries[origin] !== undefined && origin !== relay) relays.push({ hops: [relay, origin], costMs: reach.rttMs + reach.entries[origin] })
      }
      relays.sort((x, y) => x.costMs - y.costMs || (x.hops.join() < y.hops.join() ? -1 : 1))
      const relayed = relays[0]
      const directCost = direct.get(origin)
      if (directCost === undefined) return JSON.stringify(relayed)
      // A relay carries traffic only when cheaper than the direct path by the incumbent margin.
      const wins = relayed !== undefined && relayed.costMs + Math.max(directCost * 0.1, 0.5) < directCost
      return JSON.stringify(wins ? relayed : { hops: [origin], costMs: directCost })
    }
    for (const s of steps) {
      if (s.kind === 'direct') {
        routes.setDirectReach(s.origin, s.rttMs)
        if (s.rttMs === undefined) direct.delete(s.origin); else direct.set(s.origin, s.rttMs)
      } else if (s.kind === 'reach') {
        routes.applyReachReport(s.neighbour, s.rttMs, report(s.neighbour, s.seq, s.entries))
        const known = neighbours.get(s.neighbour)
        if (s.rttMs === undefined) neighbours.delete(s.neighbour)
        else if (known === undefined || s.seq > known.seq) neighbours.set(s.neighbour, { rttMs: s.rttMs, seq: s.seq, entries: s.entries })
        else known.rttMs = s.rttMs
      } else if (s.kind === 'rtt') {
        routes.setNeighbourRtt(s.neighbour, s.rttMs)
        const known = neighbours.get(s.neighbour)
        if (known !== undefined) known.rttMs = s.rttMs
      } else if (s.kind === 'drop') {
        routes.dropNeighbour(s.neighbour)
        neighbours.delete(s.neighbour)
      } else if (s.kind === 'hold') {
        routes.setRelaysHeldDown(s.origin, s.held)
        if (s.held) held.add(s.origin); else held.delete(s.origin)
      } else {
        assert.is(JSON.stringify(routes.pathTo(s.origin)), model(s.origin), `pathTo(${s.origin}) mid-sequence`)
      }
    }
    for (const origin of ['a', 'b', 'c']) assert.is(JSON.stringify(routes.pathTo(origin)), model(origin), `pathTo(${origin})`)
  }), { seed: 33, numRuns: 500 })
})

test('route-table: property — pathFor (cached) equals the path recomputed from reach state, relaying flags and the gate', () => {
  const step = fc.oneof(
    fc.record({ kind: fc.constant('direct' as const), origin: fc.constantFrom('a', 'b'), rttMs: fc.option(fc.constantFrom(1, 10, 21, 40), { nil: undefined }) }),
    // 'k' sorts before 'me' and 'r' after: about to relay, k stays our relay and r does not.
    fc.record({ kind: fc.constant('reach' as const), neighbour: fc.constantFrom('r', 'k'), rttMs: fc.option(fc.constantFrom(1, 20), { nil: undefined }), seq: fc.nat(5), entries: fc.dictionary(fc.constantFrom('a', 'b', 'r', 'k'), fc.constantFrom(0, 5, 20, 50)), relaying: fc.subarray([P1, P2]), pending: fc.subarray([P1, P2]) }),
    fc.record({ kind: fc.constant('open' as const), prefix: fc.constantFrom(P1, P2), open: fc.boolean() }),
    fc.record({ kind: fc.constant('demote' as const), origin: fc.constantFrom('a', 'b'), demoted: fc.boolean() }),
    fc.record({ kind: fc.constant('read' as const), origin: fc.constantFrom('a', 'b'), prefix: fc.constantFrom(P1, P2) })
  )
  fc.assert(fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
    const routes = new RouteTable({ self: 'me', gateRelays: true })
    for (const origin of ['a', 'b']) for (const prefix of [P1, P2]) routes.applyAnnouncement(ann({ prefix, origin, seq: 1 }), 0)
    const direct = new Map<string, number>()
    const neighbours = new Map<string, { rttMs: number, seq: number, entries: Record<string, number>, relaying: string[], pending: string[] }>()
    const open = new Set<string>()
    const demoted = new Set<string>()
    const model = (origin: string, prefix: string): string => {
      const best = (paths: Array<{ hops: string[], costMs: number }>): { hops: string[], costMs: number } | undefined =>
        [...paths].sort((x, y) => x.costMs - y.costMs || x.hops.length - y.hops.length || (x.hops.join() < y.hops.join() ? -1 : 1))[0]
      const directPath = direct.has(origin) ? { hops: [origin], costMs: direct.get(origin) as number } : undefined
      const relays: Array<{ hops: string[], costMs: number }> = []
      for (const [relay, reach] of open.has(prefix) ? neighbours : []) {
        const refuses = reach.relaying.includes(prefix) || (reach.pending.includes(prefix) && relay > 'me')
        if (reach.entries[origin] !== undefined && origin !== relay && !refuses) relays.push({ hops: [relay, origin], costMs: reach.rttMs + reach.entries[origin] })
      }
      const relayed = best(relays)
      if (relayed === undefined || directPath === undefined) return JSON.stringify(relayed ?? directPath)
      // Demoted: any relay; else a relay must be cheaper than the direct path by the incumbent
      // margin, and by 2 ms at least.
      const wins = demoted.has(origin) || relayed.costMs + Math.max(directPath.costMs * 0.1, 2) < directPath.costMs
      return JSON.stringify(wins ? relayed : directPath)
    }
    for (const s of steps) {
      if (s.kind === 'direct') {
        routes.setDirectReach(s.origin, s.rttMs)
        if (s.rttMs === undefined) direct.delete(s.origin); else direct.set(s.origin, s.rttMs)
      } else if (s.kind === 'reach') {
        // A prefix is relayed or about to be, never both.
        const pending = s.pending.filter((prefix) => !s.relaying.includes(prefix))
        routes.applyReachReport(s.neighbour, s.rttMs, report(s.neighbour, s.seq, s.entries, s.relaying, pending))
        const known = neighbours.get(s.neighbour)
        if (s.rttMs === undefined) neighbours.delete(s.neighbour)
        else if (known === undefined || s.seq > known.seq) neighbours.set(s.neighbour, { rttMs: s.rttMs, seq: s.seq, entries: s.entries, relaying: s.relaying, pending })
        else known.rttMs = s.rttMs
      } else if (s.kind === 'open') {
        routes.setRelaysOpen(s.prefix, s.open)
        if (s.open) open.add(s.prefix); else open.delete(s.prefix)
      } else if (s.kind === 'demote') {
        routes.setDirectDemoted(s.origin, s.demoted)
        if (s.demoted) demoted.add(s.origin); else demoted.delete(s.origin)
      } else {
        assert.is(JSON.stringify(routes.pathFor(s.origin, s.prefix)), model(s.origin, s.prefix), `pathFor(${s.origin}, ${s.prefix}) mid-sequence`)
      }
    }
    for (const origin of ['a', 'b']) for (const prefix of [P1, P2]) assert.is(JSON.stringify(routes.pathFor(origin, prefix)), model(origin, prefix), `pathFor(${origin}, ${prefix})`)
  }), { seed: 34, numRuns: 500 })
})

test('heldOrigins lists origins with a live announcement or a withdrawal; usableOrigins, per prefix, the live ones not failed', () => {
  const t = table()
  t.applyAnnouncement(ann({ origin: 'a', seq: 1 }), 0)
  t.applyAnnouncement(ann({ origin: 'b', seq: 1, health: 'failed' }), 0)
  t.applyAnnouncement(ann({ origin: 'c', seq: 1 }), 0)
  t.applyAnnouncement(ann({ origin: 'c', seq: 2, withdrawn: true }), 0)
  t.applyAnnouncement(ann({ prefix: P2, origin: 'd', seq: 1, health: 'degraded' }), 0)
  t.applyAnnouncement(ann({ prefix: P2, origin: 'a', seq: 1 }), 0)
  assert.equal([...t.heldOrigins()].sort(), ['a', 'b', 'c', 'd'])
  assert.equal([...t.usableOrigins()].map((origins) => origins.sort()), [['a'], ['a', 'd']])
  // Lapsed announcements are neither held nor usable.
  t.expire(TTL + 1)
  assert.equal([...t.heldOrigins()], [])
  assert.equal([...t.usableOrigins()], [])
})

test.run()
