import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { decodeHeartbeat, encodeHeartbeat, HeartbeatError } from '../../src/protocols/heartbeat-codec.ts'

const base = { name: 'fra', seq: 3, incarnation: 7, established: 2 }
const bytes = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value))

test('heartbeat: round trip with location and a DNS address; the address comes back canonical', () => {
  const heartbeat = { ...base, location: { lat: 50.11, lon: 8.68, region: 'eu-central' }, address: '192.0.2.10' }
  assert.equal(decodeHeartbeat(encodeHeartbeat(heartbeat)), heartbeat)
  assert.is(decodeHeartbeat(bytes({ ...base, address: '2001:DB8:0:0::1' })).address, '2001:db8::1')
  assert.is(decodeHeartbeat(bytes(base)).address, undefined, 'an older node sends no address')
})

for (const address of ['', '192.0.2', '192.0.2.300', 'fra.example', '::1::2', 7, '1'.repeat(46)]) {
  test(`heartbeat: rejects the address ${JSON.stringify(address)} naming the field`, () => {
    try {
      decodeHeartbeat(bytes({ ...base, address }))
      assert.unreachable('should have thrown')
    } catch (error) {
      assert.instance(error, HeartbeatError)
      assert.match((error as Error).message, /^heartbeat: address: /)
    }
  })
}

test('heartbeat: the advertised period round-trips and is absent from older senders', () => {
  assert.is(decodeHeartbeat(encodeHeartbeat({ ...base, intervalMs: 50_000 })).intervalMs, 50_000)
  assert.is(decodeHeartbeat(bytes(base)).intervalMs, undefined)
})

for (const intervalMs of [0, 99, 1500.5, 3_600_001, '1000', null]) {
  test(`heartbeat: rejects the period ${JSON.stringify(intervalMs)} naming the field`, () => {
    try {
      decodeHeartbeat(bytes({ ...base, intervalMs }))
      assert.unreachable('should have thrown')
    } catch (error) {
      assert.instance(error, HeartbeatError)
      assert.match((error as Error).message, /^heartbeat: intervalMs: /)
    }
  })
}

test.run()
