// The WireGuard adapter against a real interface (wireguard-go, or the kernel's) inside a network
// namespace of its own. Needs root, `ip netns`, wireguard-tools and wireguard-go; where the machine
// lacks one it says which and passes without running (the netns end-to-end test counts it skipped).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadOrCreateWireguardKey, parseWgDump, uapiReadyWatcher, WireguardDataplane } from '../../src/runtime/dataplane-wireguard.ts'
import { DataplaneError } from '../../src/runtime/dataplane-errors.ts'
import { DataplaneReconciler } from '../../src/runtime/dataplane-reconciler.ts'
import { createRealClock } from '../../src/runtime/clock.ts'
import { createMemoryLogger } from '../../src/runtime/logger.ts'
import { createMemoryMetrics } from '../../src/runtime/metrics.ts'
import { desiredDataplane } from '../../src/protocols/dataplane-table.ts'

function missingCapability (): string | undefined {
  if (process.getuid?.() !== 0) return 'not root'
  for (const tool of ['ip', 'wg', 'wireguard-go']) {
    try { execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }) } catch { return `${tool} is not installed` }
  }
  return undefined
}

const sh = (args: string[]): string => execFileSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: 5000 })

/** Whether this kernel makes WireGuard interfaces (then the adapter never runs wireguard-go). */
function kernelWireguard (): boolean {
  const ns = `fa-${process.pid}-wgk`
  try {
    sh(['ip', 'netns', 'add', ns])
    execFileSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'add', 'dev', 'fawgprobe', 'type', 'wireguard'], { stdio: 'ignore', timeout: 5000 })
    return true
  } catch {
    return false
  } finally {
    try { sh(['ip', 'netns', 'del', ns]) } catch { /* never made */ }
  }
}

test('wireguard adapter: real interface in a netns — table installed, hand changes repaired, stop removes everything', async () => {
  const missing = missingCapability()
  if (missing !== undefined) { console.log(`  SKIPPED wireguard adapter test: ${missing}`); return }
  const ns = `fa-${process.pid}-wgt`
  const ifname = `fa${process.pid % 1_000_000}w`
  const dir = mkdtempSync(join(tmpdir(), 'fa-wg-'))
  const inNs = (args: string[]): string => sh(['ip', 'netns', 'exec', ns, ...args])
  sh(['ip', 'netns', 'add', ns])
  let dataplane: WireguardDataplane | undefined
  try {
    inNs(['ip', 'link', 'set', 'lo', 'up'])
    const self = await loadOrCreateWireguardKey(join(dir))
    assert.is(sh(['sh', '-c', `wg pubkey < ${self.privateKeyFile}`]).trim(), self.publicKey, 'our X25519 derivation agrees with wg pubkey')
    assert.is((await loadOrCreateWireguardKey(dir)).publicKey, self.publicKey, 'the key is kept across restarts')
    const peerB = (await loadOrCreateWireguardKey(mkdtempSync(join(dir, 'b-')))).publicKey
    const peerC = (await loadOrCreateWireguardKey(mkdtempSync(join(dir, 'c-')))).publicKey
    dataplane = new WireguardDataplane({ interface: ifname, listenPort: 51899, privateKeyFile: self.privateKeyFile, overlayCidr: '10.42.0.0/16', anycastCidr: '10.42.255.0/24', logger: createMemoryLogger(), commandPrefix: ['ip', 'netns', 'exec', ns] })
    const world = { origin: 'b' }
    const reconciler = new DataplaneReconciler({ clock: createRealClock(), logger: createMemoryLogger(), metrics: createMemoryMetrics(), dataplane }, {
      intervalMs: 60_000,
      desired: () => desiredDataplane({
        self: 'a',
        anycastCidr: '10.42.255.0/24',
        overlayAddress: '10.42.0.1',
        routes: [
          { prefix: '10.42.255.1/32', service: 'web', origin: world.origin, nextHop: world.origin, costMs: 1, reason: 'cost', candidates: [] },
          { prefix: '10.42.255.2/32', service: 'api', origin: 'a', nextHop: 'a', costMs: 0, reason: 'cost', candidates: [] }
        ],
        peers: [
          { nodeId: 'b', publicKey: peerB, endpoint: '192.0.2.2:51820', overlayAddress: '10.42.0.2' },
          { nodeId: 'c', publicKey: peerC, endpoint: '192.0.2.3:51820', overlayAddress: '10.42.0.3' }
        ]
      })
    })
    await reconciler.start()
    const dump = (): Record<string, string[]> => Object.fromEntries(parseWgDump(inNs(['wg', 'show', ifname, 'dump'])).map((peer) => [peer.publicKey, peer.allowedIps]))
    assert.equal(dump(), { [peerB]: ['10.42.0.2/32', '10.42.255.1/32'], [peerC]: ['10.42.0.3/32'] })
    assert.match(inNs(['ip', '-4', 'addr', 'show', 'dev', 'lo']), '10.42.255.2/32')
    assert.match(inNs(['ip', '-4', 'addr', 'show', 'dev', ifname]), '10.42.0.1/32')
    assert.match(inNs(['ip', 'route', 'show', '10.42.0.0/16']), `dev ${ifname}`)
    assert.ok(reconciler.view().matches)

    // The route moves to c: the anycast address moves with it.
    world.origin = 'c'
    await reconciler.reconcile()
    assert.equal(dump(), { [peerB]: ['10.42.0.2/32'], [peerC]: ['10.42.0.3/32', '10.42.255.1/32'] })

    // Hand changes behind the node's back, then one reconcile.
    inNs(['wg', 'set', ifname, 'peer', peerC, 'remove'])
    inNs(['ip', 'addr', 'del', '10.42.255.2/32', 'dev', 'lo'])
    inNs(['wg', 'set', ifname, 'peer', peerB, 'allowed-ips', '10.42.0.2/32,10.42.7.7/32'])
    assert.not.ok(Object.hasOwn(dump(), peerC))
    await reconciler.reconcile()
    assert.equal(dump(), { [peerB]: ['10.42.0.2/32'], [peerC]: ['10.42.0.3/32', '10.42.255.1/32'] })
    assert.match(inNs(['ip', '-4', 'addr', 'show', 'dev', 'lo']), '10.42.255.2/32')
    assert.ok(reconciler.view().matches)

    await reconciler.stop()
    assert.not.match(inNs(['ip', '-4', 'addr', 'show', 'dev', 'lo']), '10.42.255.')
    assert.throws(() => execFileSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'show', 'dev', ifname], { stdio: 'ignore' }), 'stop() removed the interface')
    dataplane = undefined
  } finally {
    await dataplane?.stop()
    try { sh(['ip', 'netns', 'del', ns]) } catch { /* already gone */ }
    rmSync(dir, { recursive: true, force: true })
  }
})

test('wireguard adapter: readiness is read from wireguard-go\'s log, whole chunks and lines cut between chunks alike', () => {
  const workers = 'DEBUG: (fa1w) Routine: encryption worker 1 - started\n'.repeat(40)
  const buried = uapiReadyWatcher()
  assert.not.ok(buried('DEBUG: (fa1w) Device started\n'))
  assert.ok(buried(`DEBUG: (fa1w) UAPI listener started\n${workers}`), 'the line followed by 2 KB of worker lines in one chunk')
  const cut = uapiReadyWatcher()
  assert.not.ok(cut('DEBUG: (fa1w) UAPI list'))
  assert.ok(cut('ener started\n'), 'the line cut between two chunks')
  const never = uapiReadyWatcher()
  assert.not.ok(never(workers) || never('ERROR: (fa1w) Failed to listen on uapi socket: no such file or directory\n'))
})

test('wireguard adapter: wireguard-go refusing to start is an error that quotes its reason', async () => {
  const missing = missingCapability()
  if (missing !== undefined) { console.log(`  SKIPPED wireguard-go start error test: ${missing}`); return }
  if (kernelWireguard()) { console.log('  SKIPPED wireguard-go start error test: the kernel creates WireGuard interfaces itself, wireguard-go is not run'); return }
  const ns = `fa-${process.pid}-wge`
  const dir = mkdtempSync(join(tmpdir(), 'fa-wg-'))
  sh(['ip', 'netns', 'add', ns])
  try {
    const self = await loadOrCreateWireguardKey(dir)
    // Twenty characters: too long for a Linux interface name (IFNAMSIZ 16), so the TUN device fails.
    const ifname = 'fa0123456789abcdefgh'
    const dataplane = new WireguardDataplane({ interface: ifname, listenPort: 51898, privateKeyFile: self.privateKeyFile, overlayCidr: '10.42.0.0/16', anycastCidr: '10.42.255.0/24', logger: createMemoryLogger(), commandPrefix: ['ip', 'netns', 'exec', ns] })
    const error = await dataplane.start().then(() => undefined, (caught: unknown) => caught as Error)
    assert.instance(error, DataplaneError)
    assert.match(error!.message, `wireguard-go exited with 1 creating ${ifname}`)
    assert.match(error!.message, /Failed to create TUN device: interface name too long/, error!.message)
    await dataplane.stop()
  } finally {
    try { sh(['ip', 'netns', 'del', ns]) } catch { /* already gone */ }
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
