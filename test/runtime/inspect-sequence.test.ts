import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { InspectStore } from '../../src/runtime/inspect-store.ts'
import { sequenceAt } from '../../src/runtime/inspect-sequence.ts'
import type { InspectionEvent } from '../../src/runtime/ports.ts'

const started = (node: string, peerId: string): InspectionEvent =>
  ({ t: 0, node, kind: 'actor.started', systemId: 'heartbeat', actor: 'heartbeat', detail: { peerId, location: { lat: 1, lon: 2 } } })
const frame = (t: number, node: string, fromPeer: string, type: string, sentAtMs?: number): InspectionEvent =>
  ({ t, node, kind: 'actor.event', systemId: `peer-session:${fromPeer}`, actor: 'peer-session', event: 'frame.received', detail: sentAtMs === undefined ? { frame: type } : { frame: type, sentAtMs } })
const probe = (t: number, node: string, target: string, schedule: string, event: string): InspectionEvent =>
  ({ t, node, kind: 'actor.snapshot', systemId: `origin-probe:${target}`, actor: 'health-prober', event, state: { schedule, verdict: 'healthy' } })

function storeOf (records: InspectionEvent[]): InspectStore {
  const store = new InspectStore({ maxRecords: 10_000, mode: 'trace' })
  for (const record of records) store.append(record)
  return store
}

test('inspect sequence: peers named by the peer ids nodes announce; keepalive departures exact, others by the pair\'s keepalive delay', () => {
  const store = storeOf([
    started('fra', 'Qm-fra'), started('nyc', 'Qm-nyc'),
    frame(100, 'nyc', 'Qm-fra', 'open'),
    frame(140, 'fra', 'Qm-nyc', 'keepalive', 110),
    frame(200, 'nyc', 'Qm-fra', 'keepalive', 160),
    frame(300, 'nyc', 'Qm-fra', 'update'),
    frame(310, 'nyc', 'Qm-stranger', 'update')
  ])
  const view = sequenceAt(store, store.end - 1, { windowMs: 1000 })
  assert.equal(view.messages.map((m) => [m.from, m.to, m.type, m.tSent, m.tReceived, m.estimated]), [
    ['fra', 'nyc', 'open', 60, 100, true],
    ['nyc', 'fra', 'keepalive', 110, 140, false],
    ['fra', 'nyc', 'keepalive', 160, 200, false],
    ['fra', 'nyc', 'update', 260, 300, true],
    ['Qm-stranger', 'nyc', 'update', 310, 310, true]
  ])
  assert.equal(view.lanes, ['fra', 'nyc', 'Qm-stranger'])
})

test('inspect sequence: the window ends at the record and follows it; a node filter keeps its messages and puts its lane first', () => {
  const store = storeOf([
    started('a', 'a'), started('b', 'b'), started('c', 'c'),
    frame(1000, 'b', 'a', 'update'), frame(2000, 'c', 'b', 'update'), frame(3000, 'a', 'c', 'update'), frame(4000, 'b', 'c', 'update')
  ])
  const at = (t: number): number => store.indexAtTime(t)
  assert.equal(sequenceAt(store, at(3000), { windowMs: 1500 }).messages.map((m) => m.tReceived), [2000, 3000])
  assert.equal(sequenceAt(store, at(2000), { windowMs: 10_000 }).messages.map((m) => m.tReceived), [1000, 2000])
  const filtered = sequenceAt(store, store.end - 1, { windowMs: 10_000, node: 'c' })
  assert.equal(filtered.messages.map((m) => `${m.from}>${m.to}`), ['b>c', 'c>a', 'c>b'])
  assert.equal(filtered.lanes, ['c', 'a', 'b'])
  const capped = sequenceAt(store, store.end - 1, { windowMs: 10_000, maxMessages: 2 })
  assert.ok(capped.truncated)
  assert.equal(capped.messages.map((m) => m.tReceived), [3000, 4000], 'the newest kept')
})

test('inspect sequence: an answered origin probe is a round trip turned halfway; an unanswered one has no reply', () => {
  const store = storeOf([
    started('a', 'a'), started('b', 'b'),
    probe(1000, 'a', 'b', 'probing', 'xstate.after.probeInterval'),
    probe(1040, 'a', 'b', 'resting', 'xstate.done.actor.probe'),
    probe(2000, 'a', 'b', 'probing', 'xstate.after.probeInterval'),
    probe(2500, 'a', 'b', 'resting', 'xstate.after.probeDeadline')
  ])
  const view = sequenceAt(store, store.end - 1, { windowMs: 5000 })
  assert.equal(view.messages.map((m) => [m.from, m.to, m.type, m.tSent, m.tReceived]), [
    ['a', 'b', 'probe', 1000, 1020],
    ['b', 'a', 'probe reply', 1020, 1040],
    ['a', 'b', 'probe (no answer)', 2000, 2250]
  ])
})

test.run()
