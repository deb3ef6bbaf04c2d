// Proxy load feedback through the control plane: the connections a node's proxies hold open to its
// own service become the load it announces (in 0.1 steps), and at capacity the service is announced
// degraded, so another node moves to a healthy origin; below capacity it comes back.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SimWorld } from '../../simulations/world.ts'
import type { RouteCandidate } from '../../src/protocols/routes.ts'

const PREFIX = '10.42.255.7/32'
const NEAR = 'n00000'
const FAR = 'n00001'
const CLIENT = 'n00002'

test('proxy load: open connections become announced load; at capacity the origin is degraded and the client node moves to the other origin, seed 8', async () => {
  // The client node sits next to NEAR (1 ms) and far from FAR (40 ms): it prefers NEAR.
  const latency: Record<string, number> = { [`${NEAR} ${CLIENT}`]: 1, [`${FAR} ${CLIENT}`]: 40, [`${NEAR} ${FAR}`]: 40 }
  const world = new SimWorld({
    seed: 8,
    nodes: 3,
    degree: 2,
    latency: (a, b) => latency[`${a} ${b}`] ?? latency[`${b} ${a}`] ?? 20,
    services: (index) => index < 2 ? [{ name: 'api', prefix: PREFIX, check: { kind: 'tcp', host: 'svc', port: 80 }, preference: 100 }] : []
  })
  await world.start()
  await world.run(8000)
  const client = world.hosts.get(CLIENT)!
  const near = world.hosts.get(NEAR)!
  const route = () => client.controlPlane.routes().find((entry) => entry.prefix === PREFIX)!
  const seen = (origin: string): RouteCandidate => route().candidates.find((candidate) => candidate.origin === origin)!
  assert.is(route().origin, NEAR)
  assert.is(seen(NEAR).attributes.load, 0)

  assert.ok(near.controlPlane.setServiceConnections('api', 4, 10))
  assert.not.ok(near.controlPlane.setServiceConnections('nothing-here', 4, 10))
  await world.run(1000)
  assert.is(seen(NEAR).attributes.load, 0.4, 'the load is re-announced at once, not at the next refresh')
  assert.is(seen(NEAR).attributes.health, 'healthy')
  assert.is(route().origin, NEAR)

  near.controlPlane.setServiceConnections('api', 10, 10)
  await world.run(1000)
  assert.equal([seen(NEAR).attributes.health, seen(NEAR).attributes.load], ['degraded', 1])
  assert.is(route().origin, FAR, 'a healthy origin wins over an overloaded one')
  const view = near.controlPlane.serviceHealth().find((service) => service.service === 'api')!
  assert.equal([view.verdict, view.load, view.overloaded], ['healthy', 1, true])

  near.controlPlane.setServiceConnections('api', 2, 10)
  await world.run(1000)
  assert.equal([seen(NEAR).attributes.health, seen(NEAR).attributes.load], ['healthy', 0.2])
  assert.is(route().origin, NEAR)
  await world.stop()
})

test.run()
