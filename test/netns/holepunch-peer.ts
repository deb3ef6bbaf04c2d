// One libp2p peer of the hole-punching netns test (holepunch.ts runs one per namespace), built by
// the node's own assembly (libp2p-node.ts, relay client/server + AutoNAT + DCUtR). Prints one line
// per event for the orchestrator; runs until killed.
//   relay    <listen>                      serve as a circuit relay v2
//   listener <listen> <relay> [announce]   reserve a slot on <relay>; print the relayed address
//   dialer   <listen> <target> [announce]  dial <target> (a relayed address), then watch for DCUtR
//                                          to replace the relayed connection with a direct one
import '../../src/runtime/polyfill.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2pNode } from '../../src/runtime/libp2p-node.ts'

const [role, listen, target, announce] = process.argv.slice(2)
if (role === undefined || listen === undefined) throw new Error('usage: holepunch-peer <relay|listener|dialer> <listen> [target] [announce]')
const say = (line: string): void => { process.stdout.write(`${line}\n`) }
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

const node = await createLibp2pNode({
  privateKey: await generateKeyPair('Ed25519'),
  listen: [listen],
  relay: { client: role !== 'relay', server: role === 'relay' },
  // Behind a NAT: advertise its public side too (where a port-preserving NAT maps our listen port).
  ...(announce === undefined || announce === '' ? {} : { appendAnnounce: [announce] })
})
await node.start()
say(`peer ${node.peerId.toString()} ${node.getMultiaddrs().map(String).join(' ')}`)

if (role === 'listener') {
  await node.dial(multiaddr(target!))
  for (let poll = 0; poll < 200; poll++) {
    const circuit = node.getMultiaddrs().map(String).find((address) => address.includes('/p2p-circuit'))
    if (circuit !== undefined) { say(`reserved ${circuit}`); break }
    await sleep(100)
  }
}

if (role === 'dialer') {
  const relayed = await node.dial(multiaddr(target!), { signal: AbortSignal.timeout(10_000) })
  const openedAt = Date.now()
  say(`connected ${relayed.remoteAddr.toString()} limited=${relayed.limits !== undefined}`)
  const remote = relayed.remotePeer
  let reported = false
  for (let poll = 0; poll < 150 && !reported; poll++) {
    const direct = node.getConnections(remote).find((connection) => !connection.remoteAddr.toString().includes('/p2p-circuit') && connection.status === 'open')
    if (direct !== undefined) {
      const directMs = Date.now() - openedAt
      // DCUtR closes the relayed connection once the direct one is up.
      for (let wait = 0; wait < 50 && relayed.status === 'open'; wait++) await sleep(100)
      say(`direct ${direct.remoteAddr.toString()} ${direct.direction} after ${directMs} ms; relayed connection ${relayed.status} after ${Date.now() - openedAt} ms`)
      reported = true
      // Prove the direct connection carries traffic.
      const rttMs = await node.services.ping.ping(remote, { signal: AbortSignal.timeout(5000) })
      say(`ping over ${direct.remoteAddr.toString()} ${rttMs} ms`)
    }
    await sleep(100)
  }
  if (!reported) say(`no-direct after ${Date.now() - openedAt} ms: ${node.getConnections(remote).map((connection) => connection.remoteAddr.toString()).join(', ')}`)
}
