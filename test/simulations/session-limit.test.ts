// A node holds at most maxSessions sessions: a peer that everyone connects to (an origin that
// everyone probes, a bootstrap node) would otherwise hold one session per node in the network.
// Peers past the limit are refused with a NOTIFICATION (Cease, Connection Rejected), counted, and
// still reachable over gossip.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SimWorld } from '../../simulations/world.ts'
import type { MemoryMetrics } from '../../src/runtime/metrics.ts'

const PREFIX = '10.42.255.7/32'

test('a hub connected to every node holds maxSessions sessions, refuses the rest with a Cease, and every node still routes, seed 9', async () => {
  const world = new SimWorld({
    seed: 9,
    nodes: 10,
    degree: 2,
    maxSessions: 4,
    services: (index) => index === 9 ? [{ name: 'api', prefix: PREFIX, check: { kind: 'tcp', host: 'svc', port: 80 }, preference: 100 }] : []
  })
  await world.start()
  for (const host of world.hosts.values()) {
    if (host.config.name !== 'n00009') world.network.connectNow('n00009', host.config.name)
  }
  await world.run(8000)

  const hub = world.hosts.get('n00009')!
  const sessions = hub.sessions()
  assert.ok(sessions.length <= 4, `hub holds ${sessions.length} sessions, at most 4`)
  assert.ok(sessions.filter((s) => s.established).length >= 2, 'the sessions it holds come up')
  const refused = (hub.components.metrics as MemoryMetrics).value('sessions_refused_total')
  assert.ok(refused >= 5, `the other connected peers were refused (${refused})`)

  // A refused peer that dialled (the lower id dials) heard why.
  const rejected = [...world.hosts.values()].flatMap((host) => host.sessions().filter((s) => s.peerId === 'n00009' && !s.established))
  assert.ok(rejected.length > 0, 'some peer still tries a session with the hub')
  for (const session of rejected) assert.match(String(session.lastError), /cease|limit|rejected/i)

  for (const host of world.hosts.values()) {
    if (host.config.name === 'n00009') continue
    assert.is(host.controlPlane.routes().find((route) => route.prefix === PREFIX)?.origin, 'n00009', `${host.config.name} routes to the origin`)
    assert.ok(host.running)
  }
  await world.stop()
})

test.run()
