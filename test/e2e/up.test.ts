// End to end: `form-anycast up` starts 3 real node processes on 127.0.0.1. Every peer session
// reaches established, gossip reaches every node, and a SIGKILLed node's sessions leave
// established on the survivors within their hold time.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getJson, pollUntil, startCli } from '../support/processes.ts'
import type { MemberSummary, PeerSummary } from '../../src/runtime/node.ts'
import { defaultPeerSessionConfig } from '../../src/actors/peer-session.ts'

interface ReadyNode { name: string, api: string, peerId: string, pid: number }

test('e2e up: 3 nodes connect, gossip reaches all, SIGKILL is detected within hold time', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'form-anycast-e2e-'))
  const up = startCli(['up', '--nodes', '3', '--data-dir', dataDir, '--api-port-base', '0', '--log-level', 'error'])
  try {
    await up.waitForLine(/^all 3 nodes ready/, 30_000)
    const nodes: ReadyNode[] = up.lines.flatMap((line) => {
      const match = /^node (\S+): status API (\S+) peer (\S+) pid (\d+)$/.exec(line)
      return match === null ? [] : [{ name: match[1]!, api: match[2]!, peerId: match[3]!, pid: Number(match[4]) }]
    })
    assert.is(nodes.length, 3)

    const peersOf = async (node: ReadyNode): Promise<PeerSummary[]> => (await getJson<{ peers: PeerSummary[] }>(`${node.api}/v1/peers`)).peers
    await pollUntil(async () => {
      for (const node of nodes) {
        const peers = await peersOf(node)
        const others = nodes.filter((other) => other !== node).map((other) => other.peerId)
        if (!others.every((id) => peers.some((peer) => peer.peerId === id && peer.state === 'established'))) return false
      }
      return true
    }, { timeoutMs: 20_000, label: 'every session established' })

    // Gossip: every node has received heartbeats from both others on the health topic.
    await pollUntil(async () => {
      for (const node of nodes) {
        const { members } = await getJson<{ members: MemberSummary[] }>(`${node.api}/v1/members`)
        const live = members.filter((member) => !member.stale && member.heartbeats > 0).map((member) => member.name).sort()
        if (JSON.stringify(live) !== JSON.stringify(nodes.filter((other) => other !== node).map((other) => other.name).sort())) return false
      }
      return true
    }, { timeoutMs: 15_000, label: 'heartbeat gossip at every node' })

    const victim = nodes[2]!
    const survivors = nodes.slice(0, 2)
    process.kill(victim.pid, 'SIGKILL')
    const holdMs = defaultPeerSessionConfig.holdTimeMs
    const elapsed = await pollUntil(async () => {
      for (const node of survivors) {
        const session = (await peersOf(node)).find((peer) => peer.peerId === victim.peerId)
        if (session === undefined || session.state === 'established') return false
      }
      return true
    }, { timeoutMs: holdMs + 1000, intervalMs: 50, label: `survivors leave established for ${victim.name}` })
    assert.ok(elapsed <= holdMs + 1000, `detected after ${elapsed} ms`)
    // The survivors keep their session with each other.
    const first = await peersOf(survivors[0]!)
    assert.is(first.find((peer) => peer.peerId === survivors[1]!.peerId)?.state, 'established')
    await up.waitForLine(new RegExp(`^node ${victim.name} exited \\(SIGKILL\\)`), 5000)

    up.kill('SIGTERM')
    assert.is(await up.exited(20_000), 0, 'up exits cleanly after SIGTERM')
  } finally {
    up.kill('SIGKILL')
    rmSync(dataDir, { recursive: true, force: true })
  }
})

test('e2e cli: missing config and a wrong type each exit 2 with a one-line reason naming the field', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'form-anycast-cli-'))
  try {
    const missing = startCli(['node', '--config', join(dataDir, 'missing.json')])
    assert.is(await missing.exited(10_000), 2)
    assert.equal(missing.lines.length, 1, missing.lines.join('\n'))
    assert.match(missing.lines[0]!, /missing\.json: config file not found/)

    const { writeFileSync } = await import('node:fs')
    const bad = join(dataDir, 'bad.json')
    writeFileSync(bad, JSON.stringify({ name: 'x', dataDir, session: { holdTimeMs: 'soon' } }))
    const wrongType = startCli(['node', '--config', bad])
    assert.is(await wrongType.exited(10_000), 2)
    assert.equal(wrongType.lines.length, 1, wrongType.lines.join('\n'))
    assert.match(wrongType.lines[0]!, /bad\.json: session\.holdTimeMs: must be a number, got the string "soon"/)
  } finally {
    rmSync(dataDir, { recursive: true, force: true })
  }
})

test.run()
