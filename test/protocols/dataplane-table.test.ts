import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { desiredDataplane, diffDataplane, type DataplanePeerInfo, type DataplaneState } from '../../src/protocols/dataplane-table.ts'
import type { RouteEntry } from '../../src/protocols/routes.ts'

const KEY = { b: 'B'.repeat(43) + '=', c: 'C'.repeat(43) + '=', d: 'D'.repeat(43) + '=' }
const PEERS: DataplanePeerInfo[] = [
  { nodeId: 'node-b', publicKey: KEY.b, endpoint: '10.99.0.2:51820', overlayAddress: '10.42.0.2' },
  { nodeId: 'node-c', publicKey: KEY.c, endpoint: '10.99.0.3:51820', overlayAddress: '10.42.0.3' },
  { nodeId: 'node-d', publicKey: KEY.d }
]

function route (prefix: string, origin: string | undefined, nextHop = origin): RouteEntry {
  return { prefix, service: `svc-${prefix.replace(/[./]/g, '-')}`, origin, nextHop, costMs: origin === undefined ? undefined : 5, reason: origin === undefined ? 'no-usable-origin' : 'cost', candidates: [] }
}

const cases: Array<{ name: string, routes: RouteEntry[], want: { local: string[], allowed: Record<string, string[]>, via: Record<string, string> } }> = [
  {
    name: 'no routes: each peer carries its overlay /32 only',
    routes: [],
    want: { local: [], allowed: { [KEY.b]: ['10.42.0.2/32'], [KEY.c]: ['10.42.0.3/32'], [KEY.d]: [] }, via: {} }
  },
  {
    name: 'best route to a direct origin: the prefix joins that peer',
    routes: [route('10.42.255.1/32', 'node-b')],
    want: { local: [], allowed: { [KEY.b]: ['10.42.0.2/32', '10.42.255.1/32'], [KEY.c]: ['10.42.0.3/32'], [KEY.d]: [] }, via: { '10.42.255.1/32': 'peer' } }
  },
  {
    name: 'best route is this node: bound locally, in no peer',
    routes: [route('10.42.255.1/32', 'self')],
    want: { local: ['10.42.255.1/32'], allowed: { [KEY.b]: ['10.42.0.2/32'], [KEY.c]: ['10.42.0.3/32'], [KEY.d]: [] }, via: { '10.42.255.1/32': 'local' } }
  },
  {
    name: 'relay path: the prefix goes to the next hop, not the origin',
    routes: [route('10.42.255.1/32', 'node-d', 'node-c')],
    want: { local: [], allowed: { [KEY.b]: ['10.42.0.2/32'], [KEY.c]: ['10.42.0.3/32', '10.42.255.1/32'], [KEY.d]: [] }, via: { '10.42.255.1/32': 'peer' } }
  },
  {
    name: 'no usable origin, or a next hop without a key: nowhere',
    routes: [route('10.42.255.1/32', undefined), route('10.42.255.2/32', 'node-x')],
    want: { local: [], allowed: { [KEY.b]: ['10.42.0.2/32'], [KEY.c]: ['10.42.0.3/32'], [KEY.d]: [] }, via: { '10.42.255.1/32': 'none', '10.42.255.2/32': 'none' } }
  },
  {
    name: 'prefixes outside the anycast pool are never installed (a default route, a peer\'s overlay /32)',
    routes: [route('0.0.0.0/0', 'node-b'), route('10.42.0.3/32', 'node-b'), route('10.42.255.4/32', 'node-b')],
    want: { local: [], allowed: { [KEY.b]: ['10.42.0.2/32', '10.42.255.4/32'], [KEY.c]: ['10.42.0.3/32'], [KEY.d]: [] }, via: { '0.0.0.0/0': 'none', '10.42.0.3/32': 'none', '10.42.255.4/32': 'peer' } }
  },
  {
    name: 'two prefixes, two origins, one local',
    routes: [route('10.42.255.2/32', 'node-c'), route('10.42.255.1/32', 'node-b'), route('10.42.255.3/32', 'self')],
    want: { local: ['10.42.255.3/32'], allowed: { [KEY.b]: ['10.42.0.2/32', '10.42.255.1/32'], [KEY.c]: ['10.42.0.3/32', '10.42.255.2/32'], [KEY.d]: [] }, via: { '10.42.255.1/32': 'peer', '10.42.255.2/32': 'peer', '10.42.255.3/32': 'local' } }
  }
]

for (const { name, routes, want } of cases) {
  test(`desired table: ${name}`, () => {
    const desired = desiredDataplane({ anycastCidr: '10.42.255.0/24', self: 'self', overlayAddress: '10.42.0.1', routes, peers: [...PEERS, { nodeId: 'self', publicKey: 'S'.repeat(43) + '=' }] })
    assert.equal(desired.state.interfaceAddresses, ['10.42.0.1/32'])
    assert.equal(desired.state.localAddresses, want.local)
    assert.equal(Object.fromEntries(desired.state.peers.map((peer) => [peer.publicKey, peer.allowedIps])), want.allowed)
    assert.equal(Object.fromEntries(desired.routes.map((entry) => [entry.prefix, entry.via])), want.via)
    assert.ok(desired.state.peers.every((peer) => peer.keepaliveS === 25))
    assert.is(desired.state.peers.find((peer) => peer.publicKey === KEY.b)?.endpoint, '10.99.0.2:51820')
  })
}

test('desired table: without an overlay lease the interface holds no address', () => {
  assert.equal(desiredDataplane({ anycastCidr: '10.42.255.0/24', self: 'self', overlayAddress: undefined, routes: [], peers: [] }).state, { interfaceAddresses: [], localAddresses: [], peers: [] })
})

const peer = (publicKey: string, allowedIps: string[], endpoint?: string): DataplaneState['peers'][number] => ({ publicKey, allowedIps, keepaliveS: 25, ...(endpoint === undefined ? {} : { endpoint }) })
const state = (peers: DataplaneState['peers'], local: string[] = [], iface: string[] = ['10.42.0.1/32']): DataplaneState => ({ interfaceAddresses: iface, localAddresses: local, peers })

const diffs: Array<{ name: string, desired: DataplaneState, actual: DataplaneState, ops: string[] }> = [
  { name: 'equal tables: nothing', desired: state([peer(KEY.b, ['10.42.0.2/32'])]), actual: state([peer(KEY.b, ['10.42.0.2/32'])]), ops: [] },
  { name: 'allowed IPs in another order: nothing', desired: state([peer(KEY.b, ['10.42.0.2/32', '10.42.255.1/32'])]), actual: state([peer(KEY.b, ['10.42.255.1/32', '10.42.0.2/32'])]), ops: [] },
  { name: 'endpoint learnt by roaming, none desired: nothing', desired: state([peer(KEY.b, ['10.42.0.2/32'])]), actual: state([peer(KEY.b, ['10.42.0.2/32'], '198.51.100.9:4000')]), ops: [] },
  { name: 'missing peer: set', desired: state([peer(KEY.b, ['10.42.0.2/32'])]), actual: state([]), ops: [`peer.set ${KEY.b}`] },
  { name: 'stray peer: remove', desired: state([]), actual: state([peer(KEY.c, [])]), ops: [`peer.remove ${KEY.c}`] },
  {
    name: 'prefix moves from b to c: both set',
    desired: state([peer(KEY.b, ['10.42.0.2/32']), peer(KEY.c, ['10.42.0.3/32', '10.42.255.1/32'])]),
    actual: state([peer(KEY.b, ['10.42.0.2/32', '10.42.255.1/32']), peer(KEY.c, ['10.42.0.3/32'])]),
    ops: [`peer.set ${KEY.b}`, `peer.set ${KEY.c}`]
  },
  { name: 'wrong endpoint: set', desired: state([peer(KEY.b, [], '10.99.0.2:51820')]), actual: state([peer(KEY.b, [], '10.99.0.9:51820')]), ops: [`peer.set ${KEY.b}`] },
  {
    name: 'local anycast gained and lost, interface address replaced',
    desired: state([], ['10.42.255.2/32'], ['10.42.0.7/32']),
    actual: state([], ['10.42.255.1/32'], ['10.42.0.1/32']),
    ops: ['address.remove interface 10.42.0.1/32', 'address.add interface 10.42.0.7/32', 'address.remove local 10.42.255.1/32', 'address.add local 10.42.255.2/32']
  }
]

for (const { name, desired, actual, ops } of diffs) {
  test(`diff: ${name}`, () => {
    const got = diffDataplane(desired, actual).map((op) => op.op === 'peer.set' ? `peer.set ${op.peer.publicKey}` : op.op === 'peer.remove' ? `peer.remove ${op.publicKey}` : `${op.op} ${op.scope} ${op.address}`)
    assert.equal(got, ops)
  })
}

test.run()
