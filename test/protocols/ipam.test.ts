import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fc from 'fast-check'
import { parseAddress } from '../../src/protocols/cidr.ts'
import {
  addressKind, addressText, allocateAnycast, allocateUnicast, compareClaims, DEFAULT_MAX_ATTEMPTS, IpamConfigError,
  IpamExhaustedError, isLive, leaseKey, leaseTimes, LeaseFormatError, parseAnycastLease, parseIpamConfig, parseLeaseKey,
  parseUnicastLease, probeAddress, probeSequence, probeValue, unicastSeed, winningClaim, type Claim, type IpamConfigInput
} from '../../src/protocols/ipam.ts'

// --- pools and their validation ---------------------------------------------------------------

const pools: Array<[input: IpamConfigInput, overlay: string, anycast: string, overlayUsable: bigint, anycastUsable: bigint]> = [
  [{}, '10.42.0.0/16', '10.42.255.0/24', 65_534n, 254n],
  [{ overlayCidr: '10.7.0.0/16' }, '10.7.0.0/16', '10.7.255.0/24', 65_534n, 254n],
  [{ overlayCidr: '192.168.0.0/24', anycastCidr: '192.168.0.128/25' }, '192.168.0.0/24', '192.168.0.128/25', 254n, 126n],
  [{ overlayCidr: '100.64.0.0/10' }, '100.64.0.0/10', '100.127.192.0/18', 4_194_302n, 16_382n],
  // IPv6 ULA (RFC 4193): no broadcast, only the Subnet-Router anycast address (offset 0) is skipped.
  [{ overlayCidr: 'fd42::/48' }, 'fd42::/48', 'fd42:0:0:ff00::/56', (1n << 80n) - 1n, (1n << 72n) - 1n],
  [{ overlayCidr: 'FD42:0:0::/48', anycastCidr: 'fd42:0:0:ffff::/64' }, 'fd42::/48', 'fd42:0:0:ffff::/64', (1n << 80n) - 1n, (1n << 64n) - 1n],
  // RFC 3021: a /31 has no network or broadcast address.
  [{ overlayCidr: '10.0.0.0/30', anycastCidr: '10.0.0.2/31' }, '10.0.0.0/30', '10.0.0.2/31', 2n, 2n]
]
for (const [input, overlay, anycast, overlayUsable, anycastUsable] of pools) {
  test(`ipam: pools ${JSON.stringify(input)} → overlay ${overlay}, anycast ${anycast}`, () => {
    const config = parseIpamConfig(input)
    assert.is(config.overlay.prefix, overlay)
    assert.is(config.anycast.prefix, anycast)
    assert.is(config.overlay.usable, overlayUsable)
    assert.is(config.anycast.usable, anycastUsable)
    assert.is(config.maxAttempts, DEFAULT_MAX_ATTEMPTS)
  })
}

const badConfigs: Array<[input: IpamConfigInput, field: string, reason: RegExp]> = [
  [{ overlayCidr: '8.8.0.0/16' }, 'overlayCidr', /not a private range/],
  [{ overlayCidr: '2001:db8::/32' }, 'overlayCidr', /not a private range/],
  [{ overlayCidr: '10.42.0.1/16' }, 'overlayCidr', /host bits are set/],
  [{ overlayCidr: '10.42.0.0' }, 'overlayCidr', /missing "\/length"/],
  [{ overlayCidr: 42 as unknown as string }, 'overlayCidr', /must be a CIDR string/],
  [{ overlayCidr: '10.0.0.1/32' }, 'overlayCidr', /no room for an anycast pool/],
  [{ anycastCidr: '10.43.255.0/24' }, 'anycastCidr', /strictly inside the overlay 10\.42\.0\.0\/16/],
  [{ anycastCidr: '10.42.0.0/16' }, 'anycastCidr', /strictly inside/],
  [{ anycastCidr: '10.0.0.0/8' }, 'anycastCidr', /strictly inside/],
  [{ overlayCidr: 'fd42::/48', anycastCidr: '10.42.255.0/24' }, 'anycastCidr', /IPv4 but the overlay fd42::\/48 is IPv6/],
  [{ anycastCidr: '10.42.255.0/24x' }, 'anycastCidr', /length/],
  // The /32 is the overlay's broadcast address: nothing in it may be handed out.
  [{ overlayCidr: '10.0.0.0/29', anycastCidr: '10.0.0.7/32' }, 'anycastCidr', /no usable anycast address/],
  [{ maxAttempts: 0 }, 'maxAttempts', /integer in \[1, /],
  [{ maxAttempts: 1.5 }, 'maxAttempts', /integer in \[1, /]
]
for (const [input, field, reason] of badConfigs) {
  test(`ipam: config ${JSON.stringify(input)} is refused, naming ${field}`, () => {
    try {
      parseIpamConfig(input)
      assert.unreachable('should have thrown')
    } catch (error) {
      assert.instance(error, IpamConfigError)
      assert.is((error as IpamConfigError).name, 'IpamConfigError')
      assert.is((error as IpamConfigError).field, field)
      assert.match((error as Error).message, reason)
      assert.ok((error as Error).message.startsWith(`ipam: ${field}: `), (error as Error).message)
    }
  })
}

// --- allocation -----------------------------------------------------------------------------

const v4 = (text: string): bigint => text.split('.').reduce((value, part) => value * 256n + BigInt(part), 0n)

test('ipam: a /29 overlay never hands out its network or broadcast address, nor anything in the anycast pool', () => {
  const config = parseIpamConfig({ overlayCidr: '10.0.0.0/29', anycastCidr: '10.0.0.4/30' })
  const seen = new Set<string>()
  for (let node = 0; node < 200; node++) seen.add(allocateUnicast(config, `n${node}`, []).address)
  assert.equal([...seen].sort(), ['10.0.0.1', '10.0.0.2', '10.0.0.3'])
  const anycast = new Set<string>()
  for (let service = 0; service < 200; service++) anycast.add(allocateAnycast(config, `s${service}`, []).address)
  // 10.0.0.4 is the pool's network address, 10.0.0.7 the pool's and the overlay's broadcast.
  assert.equal([...anycast].sort(), ['10.0.0.5', '10.0.0.6'])
})

test('ipam: the default overlay never hands a unicast address out of 10.42.255.0/24 (500 nodes)', () => {
  const config = parseIpamConfig()
  const taken: string[] = []
  for (let node = 0; node < 500; node++) {
    const { address } = allocateUnicast(config, `node-${node}`, taken)
    assert.is(addressKind(config, address), 'unicast', address)
    assert.ok(v4(address) < v4('10.42.255.0') && v4(address) > v4('10.42.0.0'), address)
    taken.push(address)
  }
  assert.is(new Set(taken).size, 500)
})

test('ipam: the anycast broadcast of the default pool (10.42.255.255, also the overlay broadcast) is never handed out', () => {
  const config = parseIpamConfig()
  const taken: string[] = []
  for (let i = 0; i < 254; i++) taken.push(allocateAnycast(config, 'web', taken).address)
  assert.is(new Set(taken).size, 254)
  assert.not.ok(taken.includes('10.42.255.255'))
  assert.not.ok(taken.includes('10.42.255.0'))
  assert.throws(() => allocateAnycast(config, 'web', taken), (error: unknown) => error instanceof IpamExhaustedError)
})

test('ipam: IPv6 ULA overlay gives /128 unicast addresses outside the anycast /56 (fd42:0:0:ff00::/56), canonical text', () => {
  const config = parseIpamConfig({ overlayCidr: 'fd42::/48' })
  for (let node = 0; node < 50; node++) {
    const { address, attempt } = allocateUnicast(config, `n${node}`, [])
    assert.is(addressKind(config, address), 'unicast', address)
    assert.ok(address.startsWith('fd42:'), address)
    assert.not.ok(/[A-F]|:0[0-9a-f]/.test(address), `not RFC 5952 text: ${address}`)
    assert.is(attempt, 0)
  }
  const anycast = allocateAnycast(config, 'api', []).address
  assert.is(addressKind(config, anycast), 'anycast')
  const bytes = parseAddress(anycast).bytes
  assert.equal([...bytes.subarray(0, 7)], [0xfd, 0x42, 0, 0, 0, 0, 0xff], anycast)
})

test('ipam: an anycast IP is deterministic from the service name; more on request are the next of its sequence', () => {
  const config = parseIpamConfig()
  const first = allocateAnycast(config, 'web', [])
  assert.equal(allocateAnycast(config, 'web', []), first)
  assert.is(first.address, probeAddress(config.anycast, 'anycast\0web', 0))
  const second = allocateAnycast(config, 'web', [first.address])
  assert.is.not(second.address, first.address)
  const third = allocateAnycast(config, 'web', [first.address, second.address])
  assert.is(new Set([first.address, second.address, third.address]).size, 3)
  assert.ok(allocateAnycast(config, 'api', []).address !== first.address || allocateAnycast(config, 'dns', []).address !== first.address)
})

test('ipam: a taken address is skipped whatever its spelling; the next probe of the same sequence is used', () => {
  const config = parseIpamConfig({ overlayCidr: 'fd42::/48' })
  const first = allocateUnicast(config, 'n1', [])
  const upper = first.address.toUpperCase().replace('::', ':0:0:').replace(/^FD42:0:0:0:/, 'FD42:0000:0:0:')
  const next = allocateUnicast(config, 'n1', [upper])
  assert.is.not(next.address, first.address)
  assert.is(next.attempt, 1)
  assert.is(next.address, probeAddress(config.overlay, unicastSeed('n1'), 1))
})

test('ipam: a full /30 pool throws IpamExhaustedError naming the pool and how many are taken', () => {
  const config = parseIpamConfig({ overlayCidr: '10.0.0.0/29', anycastCidr: '10.0.0.4/30' })
  try {
    allocateUnicast(config, 'late', ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.9.9.9'])
    assert.unreachable('should have thrown')
  } catch (error) {
    assert.instance(error, IpamExhaustedError)
    const exhausted = error as IpamExhaustedError
    assert.is(exhausted.name, 'IpamExhaustedError')
    assert.is(exhausted.pool, '10.0.0.0/29')
    assert.is(exhausted.taken, 3n)
    assert.is(exhausted.usable, 3n)
    assert.is(exhausted.attempts, 6)
    assert.match(exhausted.message, 'pool 10.0.0.0/29 is exhausted: 3 of 3 usable addresses taken')
  }
  const anycastOnly = parseIpamConfig({ overlayCidr: '10.1.0.0/24', anycastCidr: '10.1.0.4/30' })
  assert.throws(() => allocateAnycast(anycastOnly, 'web', ['10.1.0.5', '10.1.0.6']), /pool 10\.1\.0\.4\/30 is exhausted: 2 of 2 usable/)
  assert.equal(allocateAnycast(anycastOnly, 'web', ['10.1.0.5']).address, '10.1.0.6')
})

test('ipam: the attempt bound caps the search; a pool larger than the bound reports exhaustion after maxAttempts probes', () => {
  const config = parseIpamConfig({ overlayCidr: '10.0.0.0/24', anycastCidr: '10.0.0.252/30', maxAttempts: 4 })
  const sequence = probeSequence(config.overlay, unicastSeed('n'))
  const firstFour = [0, 1, 2, 3].map((attempt) => addressText(4, probeValue(sequence, attempt)))
  assert.throws(() => allocateUnicast(config, 'n', firstFour), (error: unknown) => error instanceof IpamExhaustedError && error.attempts === 4)
})

// --- properties -----------------------------------------------------------------------------

const smallPool = fc.record({ length: fc.integer({ min: 20, max: 29 }), anycastExtra: fc.integer({ min: 1, max: 3 }) })
  .map(({ length, anycastExtra }) => parseIpamConfig({ overlayCidr: `10.8.0.0/${length}`, anycastCidr: `10.8.0.0/${Math.min(30, length + anycastExtra)}` }))

test('ipam: N distinct nodes allocating against a shared taken set never collide, and stay in the unicast range (property)', () => {
  fc.assert(fc.property(smallPool, fc.uniqueArray(fc.string({ minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 40 }), (config, nodes) => {
    const taken: string[] = []
    for (const node of nodes) {
      let address: string
      try { address = allocateUnicast(config, node, taken).address } catch (error) {
        // Only a pool that is really full may say so.
        if (!(error instanceof IpamExhaustedError)) throw error
        assert.is(error.taken, error.usable)
        continue
      }
      assert.not.ok(taken.includes(address), `${node} got ${address}, already taken`)
      assert.is(addressKind(config, address), 'unicast')
      taken.push(address)
    }
  }), { seed: 41, numRuns: 300 })
})

test('ipam: the probe sequence is deterministic and visits every usable address once within the attempt bound (property)', () => {
  const pool = fc.integer({ min: 18, max: 30 }).map((length) => parseIpamConfig({ overlayCidr: `10.0.0.0/${length}`, anycastCidr: `10.0.0.0/${Math.min(31, length + 1)}` }).overlay)
  fc.assert(fc.property(pool, fc.string({ maxLength: 20 }), (overlay, seed) => {
    const size = Number(overlay.usable)
    const sequence = probeSequence(overlay, seed)
    assert.equal(probeSequence(overlay, seed), sequence)
    const seen = new Set<bigint>()
    for (let attempt = 0; attempt < Math.min(size, DEFAULT_MAX_ATTEMPTS); attempt++) {
      const value = probeValue(sequence, attempt)
      assert.ok(value - overlay.base >= 1n && value - overlay.base <= overlay.usable, `attempt ${attempt} is outside the usable range`)
      seen.add(value)
    }
    assert.is(seen.size, size)
  }), { seed: 42, numRuns: 60 })
})

test('ipam: two nodes that collide on one probe part at the next (strides differ), over many node pairs', () => {
  const { overlay } = parseIpamConfig()
  let collisions = 0
  for (let a = 0; a < 400; a++) {
    const left = probeSequence(overlay, unicastSeed(`a${a}`))
    const right = probeSequence(overlay, unicastSeed(`b${a}`))
    if (left.start !== right.start) continue
    collisions++
    assert.is.not(probeValue(left, 1), probeValue(right, 1))
  }
  // Forced collisions: the same start with different strides.
  const forced = [{ ...probeSequence(overlay, 'x'), start: 7n }, { ...probeSequence(overlay, 'y'), start: 7n }]
  assert.is(probeValue(forced[0]!, 0), probeValue(forced[1]!, 0))
  assert.is.not(probeValue(forced[0]!, 1), probeValue(forced[1]!, 1))
  assert.ok(collisions <= 2, `${collisions} of 400 pairs start at the same address in a /16`)
})

// --- leases ---------------------------------------------------------------------------------

test('ipam: lease keys round-trip; non-canonical or malformed keys name the part', () => {
  const keys = [
    { kind: 'unicast', address: '10.42.1.2' },
    { kind: 'unicast', address: 'fd42::1' },
    { kind: 'anycast', address: '10.42.255.7', holder: '12D3KooWAbc' }
  ] as const
  for (const key of keys) assert.equal(parseLeaseKey(leaseKey(key)), key)
  assert.is(leaseKey({ kind: 'anycast', address: '10.42.255.7', holder: 'n1' }), 'anycast/10.42.255.7/n1')
  const bad: Array<[string, string, RegExp]> = [
    ['unicast/010.42.1.2', 'key.address', /leading zeros/],
    ['unicast/FD42::1', 'key.address', /not canonical \(write "fd42::1"\)/],
    ['unicast/fd42:0::1', 'key.address', /not canonical/],
    ['anycast/10.42.255.7/', 'key.holder', /visible ASCII/],
    ['anycast/10.42.255.7/a b', 'key.holder', /visible ASCII/],
    ['anycast/10.42.255.7', 'key', /must be "unicast/],
    ['unicast/10.42.1.2/n1', 'key', /must be "unicast/],
    ['lease/10.42.1.2', 'key', /must be "unicast/],
    [`anycast/10.42.255.7/${'x'.repeat(300)}`, 'key', /at most 256 bytes/]
  ]
  for (const [key, field, reason] of bad) {
    assert.throws(() => parseLeaseKey(key), (error: unknown) => error instanceof LeaseFormatError && error.field === field && reason.test(error.message), key)
  }
})

test('ipam: lease values are validated field by field; unknown fields dropped', () => {
  assert.equal(parseUnicastLease({ holder: 'n1', expiresAtMs: 5000, extra: 1 }), { holder: 'n1', expiresAtMs: 5000 })
  assert.equal(
    parseUnicastLease({ holder: 'n1', expiresAtMs: 5000, claimedAt: { wallMs: 10, counter: 2, node: 'n1' } }),
    { holder: 'n1', expiresAtMs: 5000, claimedAt: { wallMs: 10, counter: 2, node: 'n1' } }
  )
  assert.equal(parseAnycastLease({ service: 'web', expiresAtMs: 1 }), { service: 'web', expiresAtMs: 1 })
  const bad: Array<[() => unknown, string]> = [
    [() => parseUnicastLease(null), 'value'],
    [() => parseUnicastLease([]), 'value'],
    [() => parseUnicastLease({ expiresAtMs: 1 }), 'holder'],
    [() => parseUnicastLease({ holder: 'n/1', expiresAtMs: 1 }), 'holder'],
    [() => parseUnicastLease({ holder: 'n1', expiresAtMs: -1 }), 'expiresAtMs'],
    [() => parseUnicastLease({ holder: 'n1', expiresAtMs: 1.5 }), 'expiresAtMs'],
    [() => parseUnicastLease({ holder: 'n1', expiresAtMs: '1' }), 'expiresAtMs'],
    [() => parseUnicastLease({ holder: 'n1', expiresAtMs: 1, claimedAt: { wallMs: 1, counter: -1, node: 'n1' } }), 'claimedAt.counter'],
    [() => parseUnicastLease({ holder: 'n1', expiresAtMs: 1, claimedAt: 'then' }), 'claimedAt'],
    [() => parseAnycastLease({ service: 'Web', expiresAtMs: 1 }), 'service'],
    [() => parseAnycastLease({ service: 'web', expiresAtMs: Infinity }), 'expiresAtMs']
  ]
  for (const [parse, field] of bad) {
    assert.throws(parse, (error: unknown) => error instanceof LeaseFormatError && error.field === field && error.name === 'LeaseFormatError', field)
  }
})

test('ipam: a lease is live strictly before expiresAtMs; an absent (tombstoned) one never', () => {
  assert.ok(isLive({ expiresAtMs: 1000 }, 999))
  assert.not.ok(isLive({ expiresAtMs: 1000 }, 1000))
  assert.not.ok(isLive({ expiresAtMs: 1000 }, 1001))
  assert.not.ok(isLive(undefined, 0))
})

test('ipam: RFC 2131 lease times: T1 at half, T2 at seven eighths, from the request time', () => {
  assert.equal(leaseTimes(1000, 8000), { renewAtMs: 5000, rebindAtMs: 8000, expiresAtMs: 9000 })
  assert.equal(leaseTimes(0, 10_000), { renewAtMs: 5000, rebindAtMs: 8750, expiresAtMs: 10_000 })
})

test('ipam: addressKind places addresses in their pools', () => {
  const config = parseIpamConfig()
  const table: Array<[string, string | undefined]> = [
    ['10.42.0.1', 'unicast'], ['10.42.254.255', 'unicast'], ['10.42.255.1', 'anycast'], ['10.42.255.254', 'anycast'],
    ['10.42.0.0', undefined], ['10.42.255.255', undefined], ['10.42.255.0', undefined], ['10.43.0.1', undefined], ['fd42::1', undefined]
  ]
  for (const [address, kind] of table) assert.is(addressKind(config, address), kind, address)
})

// --- the conflict rule ----------------------------------------------------------------------

test('ipam: the conflict rule: earlier first claim wins, then counter, then hlc node, then node id', () => {
  const claim = (wallMs: number, counter: number, node: string): Claim => ({ hlc: { wallMs, counter, node }, node })
  assert.ok(compareClaims(claim(1, 0, 'b'), claim(2, 0, 'a')) < 0)
  assert.ok(compareClaims(claim(1, 0, 'b'), claim(1, 1, 'a')) < 0)
  assert.ok(compareClaims(claim(1, 1, 'a'), claim(1, 1, 'b')) < 0)
  assert.ok(compareClaims(claim(1, 1, 'B'), claim(1, 1, 'a')) < 0, 'bytewise: upper case sorts first')
  assert.ok(compareClaims(claim(1, 1, 'a'), claim(1, 1, 'ab')) < 0, 'a prefix sorts first')
  assert.is(compareClaims(claim(1, 1, 'a'), claim(1, 1, 'a')), 0)
  assert.equal(winningClaim([claim(5, 0, 'x'), claim(3, 9, 'y'), claim(3, 9, 'w'), claim(4, 0, 'a')]), claim(3, 9, 'w'))
  assert.is(winningClaim([]), undefined)
})

const claimArb = fc.record({
  hlc: fc.record({ wallMs: fc.integer({ min: 0, max: 3 }), counter: fc.integer({ min: 0, max: 2 }), node: fc.constantFrom('a', 'b', 'é', '\u{1F600}', 'ab') }),
  node: fc.constantFrom('a', 'b', 'z', '\uFFFF', '\u{10000}')
})

test('ipam: the conflict rule is a total order: antisymmetric, transitive, total (property)', () => {
  const sign = (n: number): number => Math.sign(n)
  fc.assert(fc.property(claimArb, claimArb, claimArb, (a, b, c) => {
    assert.is(sign(compareClaims(a, b)), -sign(compareClaims(b, a)))
    if (compareClaims(a, b) === 0) assert.equal([a.hlc.wallMs, a.hlc.counter, a.hlc.node, a.node], [b.hlc.wallMs, b.hlc.counter, b.hlc.node, b.node])
    if (compareClaims(a, b) <= 0 && compareClaims(b, c) <= 0) assert.ok(compareClaims(a, c) <= 0)
  }), { seed: 43, numRuns: 5000 })
})

test('ipam: the winner does not depend on the order claims arrive in (property)', () => {
  fc.assert(fc.property(fc.array(claimArb, { minLength: 1, maxLength: 8 }), fc.integer({ min: 0, max: 1000 }), (claims, rotation) => {
    const rotated = claims.map((_, i) => claims[(i + rotation) % claims.length]!)
    const winner = winningClaim(claims)!
    assert.is(compareClaims(winningClaim(rotated.reverse())!, winner), 0)
    assert.ok(claims.every((claim) => compareClaims(winner, claim) <= 0))
  }), { seed: 44, numRuns: 2000 })
})

test('ipam: node ids compare bytewise as UTF-8 (code point order, not UTF-16 units)', () => {
  const claim = (node: string): Claim => ({ hlc: { wallMs: 0, counter: 0, node }, node })
  // U+FFFF is EF BF BF in UTF-8, U+10000 is F0 90 80 80: the astral one is larger bytewise,
  // though its UTF-16 lead surrogate (D800) is smaller than FFFF.
  assert.ok(compareClaims(claim('\uFFFF'), claim('\u{10000}')) < 0)
  assert.ok(Buffer.compare(Buffer.from('\uFFFF'), Buffer.from('\u{10000}')) < 0)
})

test.run()
