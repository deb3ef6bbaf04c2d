// End to end, real processes: two nodes that listen on no TCP port at all (only /p2p-circuit through
// a circuit relay v2 server) still form a peer session, gossip heartbeats and exchange routes — all
// over the relay's limited connection. The relay cuts relayed connections after 6 s (stricter than
// libp2p's 2 min default, so the test sees cuts): the session comes back through the relay each time.
// The relay is a plain libp2p node in this process, outside the overlay network: it serves no
// overlay protocol, so whatever A hears from C came over the relayed connection.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { getJson, pollUntil, startCli, type CliProcess } from '../support/processes.ts'
import { createLibp2pNode } from '../../src/runtime/libp2p-node.ts'
import type { MemberSummary, PeerSummary } from '../../src/runtime/node.ts'
import type { RouteEntry } from '../../src/protocols/routes.ts'

const PREFIX = '10.42.255.9/32'
const CUT_AFTER_MS = 6000

interface Started { process: CliProcess, api: string, peerId: string }

async function startNode (dir: string, name: string, config: Record<string, unknown>): Promise<Started> {
  const file = join(dir, `${name}.json`)
  writeFileSync(file, JSON.stringify({ name, networkId: 'relayed', dataDir: join(dir, name), logLevel: 'error', statusApi: { host: '127.0.0.1', port: 0 }, listen: [], relay: { client: true, server: false }, ...config }))
  const process = startCli(['node', '--config', file])
  const ready = await process.waitForLine(/^node \S+ ready: status API (\S+) peer (\S+)/, 20_000)
  return { process, api: ready[1]!, peerId: ready[2]! }
}

async function listenTcp (): Promise<{ server: Server, port: number }> {
  const server = createServer((socket) => socket.end())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, port: (server.address() as { port: number }).port }
}

test('e2e relay: nodes reachable only through a circuit relay form a session, gossip and learn routes; sessions survive the relay\'s cuts', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'form-anycast-relay-'))
  const relay = await createLibp2pNode({ privateKey: await generateKeyPair('Ed25519'), relay: { client: false, server: true, durationLimitMs: CUT_AFTER_MS } })
  await relay.start()
  const service = await listenTcp()
  const started: Started[] = []
  try {
    const relayAddress = relay.getMultiaddrs()[0]!.toString()
    const c = await startNode(dir, 'c', {
      bootstrap: [relayAddress],
      services: [{ name: 'svc', prefix: PREFIX, check: { kind: 'tcp', host: '127.0.0.1', port: service.port } }]
    })
    started.push(c)
    const reservations = (relay.services as unknown as { relay: { reservations: { has(peer: unknown): boolean } } }).relay.reservations
    await pollUntil(async () => reservations.has(peerIdFromString(c.peerId)), { timeoutMs: 15_000, label: 'c reserved a slot on the relay' })
    // A is told C's relayed address only; neither has any other way to reach the other.
    const a = await startNode(dir, 'a', { bootstrap: [relayAddress, `${relayAddress}/p2p-circuit/p2p/${c.peerId}`] })
    started.push(a)

    const peersOf = async (api: string): Promise<PeerSummary[]> => (await getJson<{ peers: PeerSummary[] }>(`${api}/v1/peers`)).peers
    const routeToC = async (): Promise<RouteEntry | undefined> =>
      (await getJson<{ routes: RouteEntry[] }>(`${a.api}/v1/routes`)).routes.find((route) => route.prefix === PREFIX && route.origin === c.peerId)
    const sessionMs = await pollUntil(async () => (await peersOf(a.api)).some((peer) => peer.peerId === c.peerId && peer.established),
      { timeoutMs: 20_000, label: 'a has a session with c through the relay' })
    const routeMs = await pollUntil(async () => (await routeToC())?.nextHop === c.peerId, { timeoutMs: 15_000, label: 'a learns c\'s prefix from c' })
    await pollUntil(async () => (await getJson<{ members: MemberSummary[] }>(`${a.api}/v1/members`)).members.some((member) => member.name === 'c'),
      { timeoutMs: 15_000, label: 'c\'s heartbeats reach a over gossipsub on the relayed connection' })
    console.log(`  relay: a–c session after ${sessionMs} ms, route after ${routeMs} ms more`)

    // Watch across at least two cuts: the session must come back each time, the route with it.
    const firstEstablishedAt = (await peersOf(a.api)).find((peer) => peer.peerId === c.peerId)?.establishedAtMs
    const watchUntil = Date.now() + 2 * CUT_AFTER_MS + 3000
    let routeMissingMs = 0
    let longestGapMs = 0
    let gaps = 0
    let gapStartedAt: number | undefined
    for (let poll = 0; poll < 400 && Date.now() < watchUntil; poll++) {
      const at = Date.now()
      const present = (await routeToC()) !== undefined
      if (!present && gapStartedAt === undefined) { gapStartedAt = at; gaps++ }
      if (present && gapStartedAt !== undefined) {
        longestGapMs = Math.max(longestGapMs, at - gapStartedAt)
        gapStartedAt = undefined
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
      if (!present) routeMissingMs += Date.now() - at
    }
    await pollUntil(async () => (await peersOf(a.api)).some((peer) => peer.peerId === c.peerId && peer.established),
      { timeoutMs: 10_000, label: 'the session is back after the relay\'s cuts' })
    const again = (await peersOf(a.api)).find((peer) => peer.peerId === c.peerId)!
    assert.ok(again.establishedAtMs !== firstEstablishedAt, 'the relay cut the connection and the session was re-established over a new circuit')
    await pollUntil(async () => (await routeToC()) !== undefined, { timeoutMs: 10_000, label: 'a has c\'s route again' })
    const metrics = await (await fetch(`${a.api}/metrics`)).text()
    const establishedTotal = /^form_anycast_sessions_established_total (\d+)/m.exec(metrics)?.[1]
    console.log(`  relay: over ${2 * CUT_AFTER_MS + 3000} ms with cuts every ${CUT_AFTER_MS} ms: ${gaps} route gaps at a, ${routeMissingMs} ms without c's route in all (longest ${longestGapMs} ms); sessions established at a: ${establishedTotal}`)
  } finally {
    for (const node of started) node.process.kill('SIGKILL')
    await relay.stop()
    service.server.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
