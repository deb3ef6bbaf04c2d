// End to end, real processes: the network key is the membership credential. Next to a 2-node
// `form-anycast up` network, a third node with the network's key joins (the control), and a fourth
// with a key of its own never gets a session, a gossip message, or a place in any member list.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getJson, pollUntil, startCli, type CliProcess } from '../support/processes.ts'
import type { MemberSummary, PeerSummary } from '../../src/runtime/node.ts'
import { NETWORK_KEY_FILE } from '../../src/runtime/up.ts'
import { writeNetworkKeyFile } from '../../src/runtime/network-key.ts'

interface Started { api: string, peerId: string }

async function startNode (dir: string, name: string, bootstrap: string, networkKeyFile: string): Promise<{ process: CliProcess, node: Started }> {
  const config = { name, networkId: 'demo', dataDir: join(dir, name), bootstrap: [bootstrap], networkKeyFile, logLevel: 'error', statusApi: { host: '127.0.0.1', port: 0 } }
  writeFileSync(join(dir, `${name}.json`), JSON.stringify(config))
  const process = startCli(['node', '--config', join(dir, `${name}.json`)])
  const ready = await process.waitForLine(/^node \S+ ready: status API (\S+) peer (\S+)/, 20_000)
  return { process, node: { api: ready[1]!, peerId: ready[2]! } }
}

test('e2e membership: a node with the network key joins; one with another key cannot connect at all', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'form-anycast-membership-'))
  const up = startCli(['up', '--nodes', '2', '--data-dir', dir, '--api-port-base', '0', '--dns-port', '0', '--log-level', 'error'])
  const extra: CliProcess[] = []
  try {
    await up.waitForLine(/^all 2 nodes ready/, 30_000)
    const fraApi = /^node fra: status API (\S+) peer (\S+)/.exec(up.lines.find((line) => line.startsWith('node fra: status API'))!)!
    const fraConfig = JSON.parse(readFileSync(join(dir, 'fra', 'node.json'), 'utf8')) as { listen: string[] }
    const bootstrap = `${fraConfig.listen[0]}/p2p/${fraApi[2]}`

    const wrongKey = join(dir, 'other.key')
    await writeNetworkKeyFile(wrongKey)
    const member = await startNode(dir, 'member', bootstrap, join(dir, NETWORK_KEY_FILE))
    const intruder = await startNode(dir, 'intruder', bootstrap, wrongKey)
    extra.push(member.process, intruder.process)

    const peersOf = async (api: string): Promise<PeerSummary[]> => (await getJson<{ peers: PeerSummary[] }>(`${api}/v1/peers`)).peers
    await pollUntil(async () => (await peersOf(fraApi[1]!)).some((peer) => peer.peerId === member.node.peerId && peer.state === 'established'),
      { timeoutMs: 15_000, label: 'the node with the network key has a session with fra' })
    // Give the intruder as long as the member needed, and more: its dials keep failing.
    await new Promise((resolve) => setTimeout(resolve, 3000))
    const fraPeers = await peersOf(fraApi[1]!)
    assert.not.ok(fraPeers.some((peer) => peer.peerId === intruder.node.peerId && peer.state === 'established'), 'fra has no session with the intruder')
    const intruderPeers = await peersOf(intruder.node.api)
    assert.not.ok(intruderPeers.some((peer) => peer.state === 'established'), 'the intruder holds no session')
    const status = await getJson<{ connectedPeers: number }>(`${intruder.node.api}/v1/status`)
    assert.is(status.connectedPeers, 0, 'the intruder has no connection at all')
    const { members } = await getJson<{ members: MemberSummary[] }>(`${fraApi[1]}/v1/members`)
    assert.ok(members.some((m) => m.name === 'member'), 'the member\'s heartbeats reach fra')
    assert.not.ok(members.some((m) => m.name === 'intruder'), 'the intruder\'s never do')
    const intruderMembers = (await getJson<{ members: MemberSummary[] }>(`${intruder.node.api}/v1/members`)).members
    assert.is(intruderMembers.length, 0, 'and it hears no one')
  } finally {
    for (const process of extra) process.kill('SIGKILL')
    up.kill('SIGTERM')
    await up.exited(10_000)
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
