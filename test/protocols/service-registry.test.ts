import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { allocateAnycast, IpamExhaustedError, parseIpamConfig } from '../../src/protocols/ipam.ts'
import {
  planServiceRegistration, ServiceExistsError, ServiceRecordError, takenAnycastAddresses
} from '../../src/protocols/service-registry.ts'

const ipam = parseIpamConfig({})
const NOW = 1_000_000
const first = (name: string): string => allocateAnycast(ipam, name, []).address

test('service registry: a new service gets the first address of its probe sequence', () => {
  const record = planServiceRegistration(ipam, 'shop', { services: [], leases: [], nowMs: NOW })
  assert.equal(record, { name: 'shop', anycast: [first('shop')] })
  assert.ok(record.anycast[0]!.startsWith('10.42.255.'), 'inside the anycast pool')
})

test('service registry: addresses of registered services and of live anycast leases are skipped; expired leases are not', () => {
  const own = first('shop')
  const services = [['other', { anycast: [own] }]] as const
  const next = planServiceRegistration(ipam, 'shop', { services, leases: [], nowMs: NOW }).anycast[0]!
  assert.is.not(next, own, 'a registered service holds the first choice')
  assert.is(next, allocateAnycast(ipam, 'shop', [own]).address, 'the next of the same sequence')
  const leased = planServiceRegistration(ipam, 'shop', { services: [], leases: [[`anycast/${own}/n1`, { service: 'api', expiresAtMs: NOW + 1 }]], nowMs: NOW })
  assert.is(leased.anycast[0], next, 'a live lease of a configured service holds it too')
  const expired = planServiceRegistration(ipam, 'shop', { services: [], leases: [[`anycast/${own}/n1`, { service: 'api', expiresAtMs: NOW }]], nowMs: NOW })
  assert.is(expired.anycast[0], own, 'an expired lease frees it')
})

test('service registry: taken addresses ignore unicast leases and records it cannot read', () => {
  const taken = takenAnycastAddresses(
    [['a', { anycast: ['10.42.255.9'] }], ['b', { anycast: 'x' }], ['C!', { anycast: ['10.42.255.10'] }]],
    [['unicast/10.42.1.1', { holder: 'n1', expiresAtMs: NOW + 1 }], ['anycast/10.42.255.3/n2', { service: 'web', expiresAtMs: NOW + 5 }], ['junk', {}]],
    NOW
  )
  assert.equal([...taken].sort(), ['10.42.255.3', '10.42.255.9'])
})

test('service registry: a registered name is ServiceExistsError carrying its record', () => {
  try {
    planServiceRegistration(ipam, 'shop', { services: [['shop', { anycast: ['10.42.255.77'] }]], leases: [], nowMs: NOW })
    assert.unreachable('should have thrown')
  } catch (error) {
    assert.instance(error, ServiceExistsError)
    assert.equal((error as ServiceExistsError).record, { name: 'shop', anycast: ['10.42.255.77'] })
  }
})

const badNames: Array<[string, unknown]> = [['upper case', 'Shop'], ['empty', ''], ['leading dash', '-shop'], ['too long', 'a'.repeat(64)], ['slash', 'a/b'], ['number', 7]]
for (const [label, name] of badNames) {
  test(`service registry: rejects a name: ${label}`, () => {
    assert.throws(() => planServiceRegistration(ipam, name as string, { services: [], leases: [], nowMs: NOW }),
      (error: Error) => error instanceof ServiceRecordError && error.field === 'name' && /^name: must be lowercase letters/.test(error.message))
  })
}

test('service registry: a full pool is IpamExhaustedError naming it', () => {
  const small = parseIpamConfig({ overlayCidr: '10.0.0.0/29', anycastCidr: '10.0.0.4/30' })
  const taken = planServiceRegistration(small, 'a', { services: [], leases: [], nowMs: NOW }).anycast[0]!
  // 10.0.0.4/30 hands out .5 and .6, and .7 is the overlay's broadcast: after two, it is full.
  const second = planServiceRegistration(small, 'b', { services: [['a', { anycast: [taken] }]], leases: [], nowMs: NOW }).anycast[0]!
  assert.is.not(second, taken)
  assert.throws(() => planServiceRegistration(small, 'c', { services: [['a', { anycast: [taken] }], ['b', { anycast: [second] }]], leases: [], nowMs: NOW }),
    (error: Error) => error instanceof IpamExhaustedError && /10\.0\.0\.4\/30 is exhausted/.test(error.message))
})

test.run()
