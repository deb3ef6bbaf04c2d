// A neighbour that reached an origin and lost it must say so even when it then reaches nothing:
// reach reports replace each other, so without an empty report the node relaying through it would
// keep a path to a dead origin (and two such nodes relay to each other: a loop).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SimWorld } from '../../simulations/world.ts'

const PREFIX = '10.42.255.5/32'
const ORIGIN = 'n00000'
const NEAR = 'n00001'
const FAR = 'n00002'

test('a crashed origin reached only through a relay leaves the far node\'s table once the relay loses it, seed 4', async () => {
  const world = new SimWorld({
    seed: 4,
    nodes: 3,
    degree: 2,
    services: (index) => index === 0 ? [{ name: 'api', prefix: PREFIX, check: { kind: 'tcp', host: 'svc', port: 80 }, preference: 100 }] : []
  })
  // The far node cannot reach the origin itself (a cut link): it can only use the origin through
  // the near node, which reaches nothing else.
  await world.start()
  world.network.partition([FAR], [ORIGIN])
  await world.run(8000)
  const far = world.hosts.get(FAR)!
  const before = far.controlPlane.routes().find((route) => route.prefix === PREFIX)
  assert.is(before?.origin, ORIGIN, 'the far node routes to the origin')
  assert.equal(before?.nextHop, NEAR, 'through the near node')

  world.crash(ORIGIN)
  await world.run(4000)
  const after = far.controlPlane.routes().find((route) => route.prefix === PREFIX)
  assert.is.not(after?.origin, ORIGIN, `4 s after the crash the far node still routes to the dead origin via ${String(after?.nextHop)}`)
  await world.stop()
})

test('a node that loses its direct link to a live origin holds its relay paths down briefly, then uses the relay, seed 5', async () => {
  const world = new SimWorld({
    seed: 5,
    nodes: 3,
    degree: 2,
    services: (index) => index === 0 ? [{ name: 'api', prefix: PREFIX, check: { kind: 'tcp', host: 'svc', port: 80 }, preference: 100 }] : []
  })
  await world.start()
  await world.run(8000)
  const far = world.hosts.get(FAR)!
  assert.is(far.controlPlane.routes().find((route) => route.prefix === PREFIX)?.nextHop, ORIGIN, 'first the far node reaches the origin directly')
  world.network.partition([FAR], [ORIGIN])
  await world.run(6000)
  const after = far.controlPlane.routes().find((route) => route.prefix === PREFIX)
  assert.is(after?.origin, ORIGIN, 'the origin is alive: it stays the choice')
  assert.is(after?.nextHop, NEAR, 'through the near node, once the hold-down is over')
  await world.stop()
})

test.run()
