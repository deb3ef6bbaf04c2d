// Hole punching for real, in network namespaces (run by anycast.ts, so by `npm run test:netns`).
// DCUtR ignores addresses libp2p counts as private (loopback, RFC 1918, and the documentation
// ranges too), so the "internet" here is a bridge on 11.11.0.0/24, which libp2p's isPrivateIp calls
// public (checked below). On it: a circuit relay v2 server r, a public host p, and the outside of
// two NAT routers na and nb (iptables MASQUERADE, no inbound forwarding), each with one host behind
// it on its own LAN (a on 10.1.0.0/24, b on 10.2.0.0/24):
//
//     a ── na ──┐                 ┌── nb ── b        b reserves a slot on r; a and p are told b's
//               ├── 11.11.0.0/24 ─┤                  relayed address only, dial it, and watch for
//     r ────────┘                 └──────── p        DCUtR to replace it with a direct connection.
//
// p → b is DCUtR's unilateral upgrade (b dials p's public address through its NAT). a → b needs a
// real hole punch (TCP simultaneous open through both NATs). Every peer runs the node's own libp2p
// assembly (libp2p-node.ts) in holepunch-peer.ts. Everything is named <prefix>h… and torn down in a
// finally.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { isPrivateIp } from '@libp2p/utils/private-ip'

type Check = (name: string, passed: boolean, detail: string) => void

const PEER_SCRIPT = fileURLToPath(new URL('./holepunch-peer.ts', import.meta.url))
const POLYFILL = fileURLToPath(new URL('../../src/runtime/polyfill.ts', import.meta.url))
const PORT = 4001
const PUBLIC = { relay: '11.11.0.10', p: '11.11.0.20', na: '11.11.0.1', nb: '11.11.0.2' }
const LANS = { a: { router: 'na', routerIp: '10.1.0.1', ip: '10.1.0.2' }, b: { router: 'nb', routerIp: '10.2.0.1', ip: '10.2.0.2' } }
/** The dialer's own bound (holepunch-peer.ts: 150 polls of 100 ms; DCUtR's 3 attempts end well within it) plus slack. */
const OUTCOME_TIMEOUT_MS = 30_000

/** x holds the "internet" bridge; r relay, p public host, na/nb NAT routers, a/b the hosts behind them. */
const NAMESPACES = ['x', 'r', 'p', 'na', 'nb', 'a', 'b']

interface Proc { child: ChildProcess, lines: string[], name: string }

const run = (args: string[], timeoutMs = 10_000): string => execFileSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] })

export async function holePunchScenario (prefix: string, check: Check): Promise<{ skipped: number }> {
  const ns = (name: string): string => `${prefix}h${name}`
  const names = NAMESPACES.map(ns)
  const processes: Proc[] = []
  const inNs = (name: string, args: string[]): string => run(['ip', 'netns', 'exec', ns(name), ...args])
  const start = (name: string, args: string[]): Proc => {
    const child = spawn('ip', ['netns', 'exec', ns(name), process.execPath, '--import', 'tsx', '--import', POLYFILL, PEER_SCRIPT, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DEBUG: process.env.HOLEPUNCH_DEBUG ?? 'libp2p:dcutr*' }
    })
    const proc: Proc = { child, lines: [], name }
    const record = (line: string): void => { if (proc.lines.length < 2000) proc.lines.push(line) }
    createInterface({ input: child.stdout! }).on('line', record)
    createInterface({ input: child.stderr! }).on('line', record)
    processes.push(proc)
    return proc
  }
  const line = async (proc: Proc, pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> => {
    const started = Date.now()
    while (Date.now() - started < timeoutMs) {
      for (const text of proc.lines) { const match = pattern.exec(text); if (match !== null) return match }
      if (proc.child.exitCode !== null) break
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    throw new Error(`${proc.name}: no line matching ${pattern} within ${timeoutMs} ms (last: ${proc.lines.slice(-40).join(' | ')})`)
  }
  let skipped = 0
  try {
    const classification = [PUBLIC.relay, PUBLIC.p, PUBLIC.na, PUBLIC.nb].map((ip) => `${ip} ${isPrivateIp(ip) === false ? 'public' : 'private'}`)
      .concat([LANS.a.ip, LANS.b.ip, '192.0.2.1', '198.51.100.1', '203.0.113.1'].map((ip) => `${ip} ${isPrivateIp(ip) === true ? 'private' : 'public'}`))
    check('hole punch: libp2p counts the "internet" bridge public and the LANs (and documentation ranges) private',
      classification.every((entry, index) => entry.endsWith(index < 4 ? 'public' : 'private')), classification.join(', '))
    buildTopology(ns, inNs)

    const relay = start('r', ['relay', `/ip4/${PUBLIC.relay}/tcp/${PORT}`])
    const relayAddress = `/ip4/${PUBLIC.relay}/tcp/${PORT}/p2p/${(await line(relay, /^peer (\S+)/, 30_000))[1]!}`
    const listener = start('b', ['listener', `/ip4/${LANS.b.ip}/tcp/${PORT}`, relayAddress, `/ip4/${PUBLIC.nb}/tcp/${PORT}`])
    const circuit = (await line(listener, /^reserved (\S+)/, 30_000))[1]!
    check('hole punch: b, behind NAT nb, reserved a slot on relay r', circuit.includes('/p2p-circuit'), circuit)

    // Unilateral upgrade: p is public, so b (the relayed connection's inbound side) dials p directly.
    const p = start('p', ['dialer', `/ip4/${PUBLIC.p}/tcp/${PORT}`, circuit])
    const pOutcome = await outcome(p, line)
    check('hole punch: public p reaches b through the relay, then DCUtR replaces it with a direct connection (unilateral)',
      pOutcome.relayed && pOutcome.direct !== undefined && !pOutcome.direct.includes('/p2p-circuit') && pOutcome.direct.includes(`/ip4/${PUBLIC.nb}/`) && /relayed connection closed/.test(pOutcome.summary),
      `${pOutcome.connected}; ${pOutcome.summary}`)

    // Both behind NATs: only a hole punch (TCP simultaneous open) can make a direct connection.
    const a = start('a', ['dialer', `/ip4/${LANS.a.ip}/tcp/${PORT}`, circuit, `/ip4/${PUBLIC.na}/tcp/${PORT}`])
    const aOutcome = await outcome(a, line)
    check('hole punch: a, behind NAT na, reaches b (behind nb) through the relay', aOutcome.relayed, aOutcome.connected)
    if (aOutcome.direct !== undefined && !aOutcome.direct.includes('/p2p-circuit')) {
      check('hole punch: DCUtR upgrades a ↔ b (both behind NAT) to a direct connection', true, aOutcome.summary)
    } else {
      skipped++
      const seen = [...a.lines, ...listener.lines].filter((text) => /dcutr/.test(text) && /(error|fail|attempt|connect)/i.test(text)).map(stripDebug).slice(-3)
      console.log(`SKIP hole punch between two NATed hosts: ${aOutcome.summary}. @libp2p/tcp dials from an ephemeral port (Node 20 has no SO_REUSEPORT), so neither NAT holds a mapping for the other side's SYN to its announced port; DCUtR saw: ${seen.join(' | ') || '(no DCUtR log lines)'}`)
    }
  } finally {
    for (const proc of processes) if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL')
    holePunchTeardown(prefix)
    const left = run(['ip', 'netns', 'list']).split('\n').map((text) => text.split(' ')[0]!).filter((name) => names.includes(name))
    if (left.length > 0) check('hole punch: teardown removed every namespace', false, left.join(', '))
  }
  return { skipped }
}

/** Removes the namespaces of holePunchScenario(prefix), killing what still runs in them (ours) first. */
export function holePunchTeardown (prefix: string): void {
  for (const name of NAMESPACES.map((suffix) => `${prefix}h${suffix}`)) {
    try {
      for (const pid of run(['ip', 'netns', 'pids', name]).split('\n').filter((text) => /^\d+$/.test(text))) {
        try { process.kill(Number(pid), 'SIGKILL') } catch { /* already gone */ }
      }
    } catch { /* never made */ }
    try { run(['ip', 'netns', 'del', name]) } catch { /* never made */ }
  }
}

interface Outcome { relayed: boolean, connected: string, direct: string | undefined, summary: string }

async function outcome (proc: Proc, line: (proc: Proc, pattern: RegExp, timeoutMs: number) => Promise<RegExpExecArray>): Promise<Outcome> {
  const connected = (await line(proc, /^connected (\S+) limited=(\w+)/, 30_000))
  const relayed = connected[1]!.includes('/p2p-circuit') && connected[2] === 'true'
  const result = await line(proc, /^(direct (\S+) .*|no-direct .*)$/, OUTCOME_TIMEOUT_MS)
  let summary = result[1]!
  if (result[2] !== undefined) {
    const pinged = await line(proc, /^ping over .*/, 10_000).catch(() => undefined)
    summary += pinged === undefined ? '; no ping over it' : `; ${pinged[0]}`
  }
  return { relayed, connected: `relayed first: ${connected[1]!} (limited ${connected[2]!})`, direct: result[2], summary }
}

function buildTopology (ns: (name: string) => string, inNs: (name: string, args: string[]) => string): void {
  for (const name of NAMESPACES) {
    run(['ip', 'netns', 'add', ns(name)])
    inNs(name, ['ip', 'link', 'set', 'lo', 'up'])
  }
  inNs('x', ['ip', 'link', 'add', 'br0', 'type', 'bridge'])
  inNs('x', ['ip', 'link', 'set', 'br0', 'up'])
  const wan: Array<[string, string]> = [['r', PUBLIC.relay], ['p', PUBLIC.p], ['na', PUBLIC.na], ['nb', PUBLIC.nb]]
  for (const [name, ip] of wan) {
    run(['ip', '-n', ns('x'), 'link', 'add', `p-${name}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns(name)])
    inNs('x', ['ip', 'link', 'set', `p-${name}`, 'master', 'br0', 'up'])
    inNs(name, ['ip', 'addr', 'add', `${ip}/24`, 'dev', 'eth0'])
    inNs(name, ['ip', 'link', 'set', 'eth0', 'up'])
  }
  for (const [host, lan] of Object.entries(LANS)) {
    const router = lan.router
    run(['ip', '-n', ns(router), 'link', 'add', 'lan0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns(host)])
    inNs(router, ['ip', 'addr', 'add', `${lan.routerIp}/24`, 'dev', 'lan0'])
    inNs(router, ['ip', 'link', 'set', 'lan0', 'up'])
    inNs(host, ['ip', 'addr', 'add', `${lan.ip}/24`, 'dev', 'eth0'])
    inNs(host, ['ip', 'link', 'set', 'eth0', 'up'])
    inNs(host, ['ip', 'route', 'add', 'default', 'via', lan.routerIp])
    inNs(router, ['sysctl', '-qw', 'net.ipv4.ip_forward=1'])
    // A home router: the LAN leaves masqueraded; from outside only replies (conntrack) come in.
    inNs(router, ['iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', 'eth0', '-s', `${lan.ip.replace(/\.\d+$/, '.0')}/24`, '-j', 'MASQUERADE'])
    inNs(router, ['iptables', '-A', 'FORWARD', '-i', 'eth0', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT'])
    inNs(router, ['iptables', '-A', 'FORWARD', '-i', 'eth0', '-j', 'DROP'])
  }
}

/** debug's lines carry colour codes and a timestamp; keep the message. */
function stripDebug (text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\u001b\[[0-9;]*m/g, '').replace(/^\S+Z /, '').trim().slice(0, 200)
}
