// End to end with 5 real node processes on 127.0.0.1 (`form-anycast up`): the service `web` at
// 10.42.255.2/32 is served by fra, nyc and sin (`api` by all five). Marking the origin that sao
// uses down moves sao's route within 3 s; SIGKILLing an origin moves every survivor off it within
// 5 s; restoring the service and restarting the killed node bring their routes back.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getJson, pollUntil, startCli } from '../support/processes.ts'
import type { RouteEntry } from '../../src/protocols/routes.ts'
import { DEMO_PARTIAL_SERVICE } from '../../src/runtime/up.ts'

interface ReadyNode { name: string, api: string, peerId: string, pid: number }

const routeOf = async (node: ReadyNode): Promise<RouteEntry | undefined> =>
  (await getJson<{ routes: RouteEntry[] }>(`${node.api}/v1/routes`)).routes.find((route) => route.prefix === DEMO_PARTIAL_SERVICE.prefix)

test('e2e failover: service down, origin SIGKILL and restore on 5 real nodes', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'form-anycast-failover-'))
  const up = startCli(['up', '--nodes', '5', '--data-dir', dataDir, '--api-port-base', '0', '--log-level', 'error'])
  let restarted: ReturnType<typeof startCli> | undefined
  try {
    await up.waitForLine(/^all 5 nodes ready/, 40_000)
    const nodes: ReadyNode[] = up.lines.flatMap((line) => {
      const match = /^node (\S+): status API (\S+) peer (\S+) pid (\d+)$/.exec(line)
      return match === null ? [] : [{ name: match[1]!, api: match[2]!, peerId: match[3]!, pid: Number(match[4]) }]
    })
    const byPeer = new Map(nodes.map((node) => [node.peerId, node]))
    const byName = new Map(nodes.map((node) => [node.name, node]))
    const originNames = ['fra', 'nyc', 'sin']
    const originIds = new Set(originNames.map((name) => byName.get(name)!.peerId))

    // Every node has a route to one of the three origins, all three candidates healthy.
    await pollUntil(async () => {
      for (const node of nodes) {
        const route = await routeOf(node)
        if (route?.origin === undefined || !originIds.has(route.origin)) return false
        if (route.candidates.filter((c) => c.attributes.health === 'healthy' && c.path !== undefined).length !== 3) return false
      }
      return true
    }, { timeoutMs: 30_000, label: 'every node routes web to a healthy origin' })

    const x = byName.get('sao')!
    const used = byPeer.get((await routeOf(x))!.origin!)!
    const down = await fetch(`${used.api}/v1/services/${DEMO_PARTIAL_SERVICE.name}/down`, { method: 'POST' })
    assert.is(down.status, 200)
    const moved = await pollUntil(async () => {
      const route = await routeOf(x)
      return route?.origin !== undefined && route.origin !== used.peerId
    }, { timeoutMs: 3000, intervalMs: 50, label: `sao moves off ${used.name} after its service is marked down` })
    console.log(`  sao used ${used.name}; moved ${moved} ms after the service was marked down`)

    // SIGKILL another origin; every survivor stops routing to it.
    const victim = byName.get(originNames.find((name) => name !== used.name)!)!
    process.kill(victim.pid, 'SIGKILL')
    const survivors = nodes.filter((node) => node !== victim)
    const dropped = await pollUntil(async () => {
      for (const node of survivors) {
        const route = await routeOf(node)
        if (route === undefined || route.origin === victim.peerId) return false
      }
      return true
    }, { timeoutMs: 5000, intervalMs: 50, label: `every survivor moves off ${victim.name}` })
    console.log(`  ${victim.name} SIGKILLed; all survivors off it after ${dropped} ms`)

    // Restore: the marked-down service comes back, the killed node restarts with its old identity.
    assert.is((await fetch(`${used.api}/v1/services/${DEMO_PARTIAL_SERVICE.name}/up`, { method: 'POST' })).status, 200)
    restarted = startCli(['node', '--config', join(dataDir, victim.name, 'node.json')])
    const again = await restarted.waitForLine(/^node \S+ ready: status API (\S+) peer (\S+)/, 20_000)
    assert.is(again[2], victim.peerId, 'the restarted node keeps its peer id')
    await pollUntil(async () => {
      const route = await routeOf(x)
      const healthy = route?.candidates.filter((c) => c.attributes.health === 'healthy' && c.path !== undefined).map((c) => c.origin) ?? []
      return healthy.includes(used.peerId) && healthy.includes(victim.peerId)
    }, { timeoutMs: 15_000, label: 'both restored origins are usable candidates at sao again' })
    assert.is((await routeOf(used))?.origin, used.peerId, `${used.name} routes to itself again`)
  } finally {
    restarted?.kill('SIGKILL')
    up.kill('SIGTERM')
    await up.exited(20_000).catch(() => up.kill('SIGKILL'))
    rmSync(dataDir, { recursive: true, force: true })
  }
})

test.run()
