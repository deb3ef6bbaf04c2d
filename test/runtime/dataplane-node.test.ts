// The dataplane in a node agent (startNode) with the memory adapter: the WireGuard key is made in
// dataDir and published in nodes/<id>, the node's overlay lease lands on the interface, and the
// anycast prefix it serves is bound locally; GET /v1/dataplane shows it, matching.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseNodeConfig } from '../../src/runtime/config.ts'
import { startNode } from '../../src/runtime/node-process.ts'
import type { DataplaneView } from '../../src/runtime/dataplane-reconciler.ts'
import { pollUntil } from '../support/processes.ts'

test('node process: memory dataplane binds the overlay address and the served anycast prefix, and publishes the WireGuard key', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'form-anycast-dataplane-'))
  const service = createServer((socket) => { socket.on('error', () => undefined); socket.end('solo\n') })
  await new Promise<void>((resolve) => service.listen(0, '127.0.0.1', resolve))
  const port = (service.address() as { port: number }).port
  const config = parseNodeConfig({
    name: 'solo',
    dataDir: dir,
    logLevel: 'silent',
    services: [{ name: 'web', prefix: '10.42.255.7/32', check: { kind: 'tcp', host: '127.0.0.1', port } }],
    dataplane: { kind: 'memory', reconcileIntervalMs: 200 }
  }, 'solo.json')
  const node = await startNode(config, 'solo.json')
  try {
    assert.ok(existsSync(join(dir, 'wireguard.key')))
    assert.is(statSync(join(dir, 'wireguard.key')).mode & 0o777, 0o600)
    const record = node.host.replicator!.get('nodes', node.host.peerId) as { name: string, wireguard: { publicKey: string } }
    assert.is(record.name, 'solo')
    assert.match(record.wireguard.publicKey, /^[A-Za-z0-9+/]{43}=$/)
    let view: DataplaneView | undefined
    await pollUntil(async () => {
      view = await (await fetch(`${node.api.url}/v1/dataplane`)).json() as DataplaneView
      return view.matches && view.routes.some((route) => route.via === 'local') && view.desired.interfaceAddresses.length === 1
    }, { timeoutMs: 20_000, intervalMs: 200, label: 'the overlay address and the local anycast prefix on the memory dataplane' })
    assert.equal(view!.actual?.localAddresses, ['10.42.255.7/32'])
    assert.match(view!.actual?.interfaceAddresses[0] ?? '', /^10\.42\.\d+\.\d+\/32$/)
    assert.is(view!.kind, 'memory')
  } finally {
    await node.stop()
    service.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
