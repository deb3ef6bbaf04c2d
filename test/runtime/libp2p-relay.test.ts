// Circuit relay v2 in the libp2p assembly (opt-in): a node reserves a slot on a relay and another
// reaches it through the relay only — a limited connection (the relay's default limits), over
// which libp2p ping runs. Without the option no relayed address exists. Real libp2p on 127.0.0.1.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createLibp2pNode, type OverlayLibp2p } from '../../src/runtime/libp2p-node.ts'

async function node (relay?: { client: boolean, server: boolean }): Promise<OverlayLibp2p> {
  const libp2p = await createLibp2pNode({ privateKey: await generateKeyPair('Ed25519'), ...(relay === undefined ? {} : { relay }) })
  await libp2p.start()
  return libp2p
}

test('relay: a client reached only through a relay server gets a limited relayed connection that carries ping', async () => {
  const relay = await node({ client: false, server: true })
  const listener = await node({ client: true, server: false })
  const dialer = await node({ client: true, server: false })
  const plain = await node()
  try {
    await listener.dial(relay.getMultiaddrs()[0]!)
    let circuit: string | undefined
    for (let poll = 0; poll < 100 && circuit === undefined; poll++) {
      circuit = listener.getMultiaddrs().map(String).find((address) => address.includes('/p2p-circuit/'))
      if (circuit === undefined) await new Promise((resolve) => setTimeout(resolve, 100))
    }
    assert.ok(circuit !== undefined, 'the listener reserved a slot and advertises a relayed address within 10 s')
    assert.ok(circuit.startsWith(relay.getMultiaddrs()[0]!.toString()), 'through our relay')
    const { multiaddr } = await import('@multiformats/multiaddr')
    const connection = await dialer.dial(multiaddr(circuit))
    assert.ok(connection.remoteAddr.toString().includes('/p2p-circuit'), 'the connection is relayed')
    assert.ok(connection.limits !== undefined, 'relayed connections carry the relay\'s limits')
    const rttMs = await dialer.services.ping.ping(multiaddr(circuit), { signal: AbortSignal.timeout(5000) })
    assert.ok(rttMs >= 0)
    assert.not.ok(plain.getMultiaddrs().some((address) => address.toString().includes('/p2p-circuit')), 'without the option: no relayed address')
  } finally {
    await Promise.all([relay.stop(), listener.stop(), dialer.stop(), plain.stop()])
  }
})

test.run()
