import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createActor, setup } from 'xstate'
import { VirtualClock } from '../../src/runtime/clock.ts'
import { InspectionBus, createHashSink, createJsonlFileSink, createMemorySink, traceLine, xstateInspector } from '../../src/runtime/inspection.ts'

const toggle = setup({ delays: { flipDelay: 100 } }).createMachine({
  initial: 'off',
  states: {
    off: { on: { flip: 'on' } },
    on: { after: { flipDelay: 'off' }, on: { ping: {} } }
  }
})

function inspectedToggle (bus: InspectionBus, clock: VirtualClock) {
  return createActor(toggle, { clock, inspect: xstateInspector(bus, clock, { node: 'n1', systemId: 'toggle:1', actor: 'toggle', parent: 'root' }) })
}

test('inspection: an actor reports start, received events and state changes with virtual time', () => {
  const clock = new VirtualClock(1000)
  const bus = new InspectionBus()
  const sink = createMemorySink()
  bus.addSink(sink)
  const actor = inspectedToggle(bus, clock).start()
  actor.send({ type: 'flip' })
  actor.send({ type: 'ping' })
  clock.advance(100)
  const summary = sink.events.map((e) => `${e.t} ${e.kind} ${e.event ?? ''} ${e.state === undefined ? '' : JSON.stringify(e.state)}`.trim())
  assert.equal(summary, [
    '1000 actor.started',
    '1000 actor.event xstate.init',
    '1000 actor.snapshot xstate.init "off"',
    '1000 actor.event flip',
    '1000 actor.snapshot flip "on"',
    '1000 actor.event ping',
    '1100 actor.event xstate.after.flipDelay.(machine).on',
    '1100 actor.snapshot xstate.after.flipDelay.(machine).on "off"'
  ])
  assert.ok(sink.events.every((e) => e.node === 'n1' && e.systemId === 'toggle:1' && e.actor === 'toggle' && e.parent === 'root'))
  actor.stop()
})

test('inspection: a sink attached after the actor started (a live stream) still receives its events and states', () => {
  const clock = new VirtualClock(1000)
  const bus = new InspectionBus()
  const actor = inspectedToggle(bus, clock).start()
  const sink = createMemorySink()
  bus.addSink(sink)
  actor.send({ type: 'flip' })
  assert.equal(sink.events.map((event) => [event.kind, event.event, event.state]), [
    ['actor.event', 'flip', undefined],
    ['actor.snapshot', 'flip', 'on']
  ])
  actor.stop()
})

test('inspection: JSONL file sink and hash sink agree byte for byte', () => {
  const dir = mkdtempSync(join(tmpdir(), 'form-anycast-trace-'))
  try {
    const clock = new VirtualClock()
    const bus = new InspectionBus()
    const file = createJsonlFileSink(join(dir, 'trace.jsonl'), { bufferBytes: 64 })
    const hash = createHashSink()
    bus.addSink(file); bus.addSink(hash)
    const actor = inspectedToggle(bus, clock).start()
    for (let i = 0; i < 20; i++) { actor.send({ type: 'flip' }); clock.advance(150) }
    actor.stop()
    file.close()
    const text = readFileSync(join(dir, 'trace.jsonl'), 'utf8')
    assert.is(createHash('sha256').update(text).digest('hex'), hash.digest())
    const lines = text.trim().split('\n')
    assert.is(lines.length, hash.lines)
    for (const line of lines) assert.type(JSON.parse(line).t, 'number')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('inspection: traceLine writes keys in a fixed order whatever the input order', () => {
  const a = traceLine({ state: 'x', t: 1, actor: 'a', kind: 'actor.snapshot', node: 'n', systemId: 's', event: 'e' })
  const b = traceLine({ t: 1, node: 'n', kind: 'actor.snapshot', systemId: 's', actor: 'a', event: 'e', state: 'x' })
  assert.is(a, b)
  assert.is(a, '{"t":1,"node":"n","kind":"actor.snapshot","systemId":"s","actor":"a","event":"e","state":"x"}')
})

test('inspection: memory sink stops at its limit and counts what it dropped', () => {
  const sink = createMemorySink({ limit: 2 })
  for (let i = 0; i < 5; i++) sink.write({ t: i, node: 'n', kind: 'actor.event', systemId: 's', actor: 'a' })
  assert.is(sink.events.length, 2)
  assert.is(sink.dropped, 3)
})

test.run()
