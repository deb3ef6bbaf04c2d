// End to end, real processes (`form-anycast up --nodes 2`: fra and nyc both serve `web` at
// 10.42.255.2/32): fra binds its unicast overlay address and its anycast lease, registers a
// service, and is SIGKILLed the moment the registration is acknowledged. The record is on disk
// (read back from fra's LevelDB before anything restarts); restarted with the same config, fra has
// the same peer id, the same unicast address, the same services collection, and nyc takes it as a
// usable origin of `web` again. A second process on fra's data directory is refused (exit 2).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getJson, pollUntil, startCli, type CliProcess } from '../support/processes.ts'
import type { RouteEntry } from '../../src/protocols/routes.ts'
import type { LeasesAnswer } from '../../src/runtime/status-command.ts'
import { DEMO_PARTIAL_SERVICE } from '../../src/runtime/up.ts'
import { LevelStore } from '../../src/runtime/level-store.ts'
import { stateDirectory } from '../../src/runtime/node-process.ts'
import { decodeSignedOp } from '../../src/protocols/state-codec.ts'

interface ReadyNode { name: string, api: string, peerId: string, pid: number }
interface StateAnswer { digest: string, collections: Record<string, { digest: string, live: number, tombstones: number }> }

const WEB_ADDRESS = DEMO_PARTIAL_SERVICE.prefix.split('/')[0]!

/** fra's own leases once its unicast address and its `web` anycast lease are bound. */
async function boundLeases (api: string): Promise<LeasesAnswer | undefined> {
  const answer = await getJson<LeasesAnswer>(`${api}/v1/leases`)
  const own = answer.leases.filter((lease) => lease.holder === answer.nodeId && lease.live && lease.state === 'bound')
  const unicast = own.some((lease) => lease.kind === 'unicast' && lease.address === answer.unicast)
  const web = own.some((lease) => lease.kind === 'anycast' && lease.address === WEB_ADDRESS)
  return unicast && web ? answer : undefined
}

async function usableWebOrigins (api: string): Promise<string[]> {
  const route = (await getJson<{ routes: RouteEntry[] }>(`${api}/v1/routes`)).routes.find((entry) => entry.prefix === DEMO_PARTIAL_SERVICE.prefix)
  return route?.candidates.filter((candidate) => candidate.attributes.health === 'healthy' && candidate.path !== undefined).map((candidate) => candidate.origin) ?? []
}

test('e2e lease restart: SIGKILL right after an acknowledged lease and registration; restart keeps key, address, state, announcements', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'form-anycast-lease-restart-'))
  const up = startCli(['up', '--nodes', '2', '--data-dir', dir, '--api-port-base', '0', '--dns-port', '0', '--log-level', 'error'])
  const extra: CliProcess[] = []
  const started = Date.now()
  try {
    await up.waitForLine(/^all 2 nodes ready/, 20_000)
    const nodes: ReadyNode[] = up.lines.flatMap((line) => {
      const match = /^node (\S+): status API (\S+) peer (\S+) pid (\d+)$/.exec(line)
      return match === null ? [] : [{ name: match[1]!, api: match[2]!, peerId: match[3]!, pid: Number(match[4]) }]
    })
    const fra = nodes.find((node) => node.name === 'fra')!
    const nyc = nodes.find((node) => node.name === 'nyc')!
    const configPath = join(dir, 'fra', 'node.json')

    // One data directory, one process: LevelDB's lock refuses a second one, naming dataDir.
    const second = startCli(['node', '--config', configPath])
    extra.push(second)
    assert.is(await second.exited(15_000), 2, 'a second process on the same data directory exits 2')
    assert.ok(second.lines.some((line) => /dataDir: the state store .* is locked: another form-anycast node runs with this data directory/.test(line)), second.lines.join('\n'))

    let before: LeasesAnswer | undefined
    await pollUntil(async () => (before = await boundLeases(fra.api)) !== undefined, { timeoutMs: 12_000, intervalMs: 50, label: 'fra binds its unicast address and its web lease' })
    await pollUntil(async () => (await usableWebOrigins(nyc.api)).includes(fra.peerId), { timeoutMs: 8000, intervalMs: 50, label: 'nyc takes fra as an origin of web' })
    const registered = await fetch(`${fra.api}/v1/services`, { method: 'POST', body: JSON.stringify({ name: 'shop' }) })
    assert.is(registered.status, 201)
    const shop = await registered.json() as { anycast: string[] }
    const stateBefore = await getJson<StateAnswer>(`${fra.api}/v1/state`)
    process.kill(fra.pid, 'SIGKILL')
    await up.waitForLine(/^node fra exited \(SIGKILL\)/, 5000)

    // What the acknowledgement promised is on fra's disk, before any neighbour could restore it.
    const store = new LevelStore({ directory: stateDirectory(join(dir, 'fra')) })
    await store.open()
    try {
      const record = await store.get('op/services/shop')
      assert.ok(record !== undefined, 'the acknowledged registration is in fra\'s LevelDB')
      assert.equal(decodeSignedOp(record).op.value, { anycast: shop.anycast })
      assert.ok(await store.get(`op/leases/unicast/${before!.unicast!}`) !== undefined, 'and its unicast lease')
    } finally {
      await store.close()
    }
    // nyc notices fra is gone, so the route that comes back below is the restarted process's.
    await pollUntil(async () => !(await usableWebOrigins(nyc.api)).includes(fra.peerId), { timeoutMs: 6000, intervalMs: 50, label: 'nyc drops fra after the SIGKILL' })

    const restarted = startCli(['node', '--config', configPath])
    extra.push(restarted)
    const again = await restarted.waitForLine(/^node fra ready: status API (\S+) peer (\S+)/, 15_000)
    const restartedAt = Date.now()
    assert.is(again[2], fra.peerId, 'the node key survived: same peer id')
    const stateAfter = await getJson<StateAnswer>(`${again[1]}/v1/state`)
    assert.is(stateAfter.collections.services!.digest, stateBefore.collections.services!.digest, 'the services collection it wrote is intact')
    assert.is(stateAfter.collections.services!.live, 1)
    let after: LeasesAnswer | undefined
    await pollUntil(async () => (after = await boundLeases(again[1]!)) !== undefined, { timeoutMs: 10_000, intervalMs: 50, label: 'restarted fra binds its leases again' })
    assert.is(after!.unicast, before!.unicast, 'the same unicast overlay address')
    const resumed = await pollUntil(async () => (await usableWebOrigins(nyc.api)).includes(fra.peerId),
      { timeoutMs: 8000, intervalMs: 50, label: 'nyc takes the restarted fra as an origin of web again' })
    console.log(`  fra at ${after!.unicast}; announcements resumed ${Date.now() - restartedAt} ms after the restart (${resumed} ms of polling); whole test ${Date.now() - started} ms`)
  } finally {
    for (const process of extra) process.kill('SIGKILL')
    up.kill('SIGTERM')
    await up.exited(20_000).catch(() => up.kill('SIGKILL'))
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
