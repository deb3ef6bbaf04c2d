import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { memberStaleAfterMs, scaledHeartbeatIntervalMs } from '../../src/protocols/membership.ts'
import { MAX_HEARTBEAT_INTERVAL_MS } from '../../src/protocols/heartbeat-codec.ts'

test('heartbeat period: the base while the membership fits the budget, then members / budget seconds', () => {
  assert.is(scaledHeartbeatIntervalMs(1000, 5, 20), 1000)
  assert.is(scaledHeartbeatIntervalMs(1000, 20, 20), 1000)
  assert.is(scaledHeartbeatIntervalMs(1000, 21, 20), 1100, 'rounded up to 100 ms')
  assert.is(scaledHeartbeatIntervalMs(1000, 100, 20), 5000)
  assert.is(scaledHeartbeatIntervalMs(1000, 1000, 20), 50_000)
  assert.is(scaledHeartbeatIntervalMs(1000, 10_000, 20), 500_000)
  assert.is(scaledHeartbeatIntervalMs(1000, 10_000_000, 20), MAX_HEARTBEAT_INTERVAL_MS, 'capped')
  assert.is(scaledHeartbeatIntervalMs(10_000, 100, 20), 10_000, 'a configured base above the scaled period stands')
})

test('heartbeat period: every node receives at most the budget, whatever the size', () => {
  for (const members of [1, 7, 50, 333, 1000, 4096, 10_000, 72_000]) { // 72,000 at 20/s reaches the one-hour cap
    const perSecond = members * 1000 / scaledHeartbeatIntervalMs(1000, members, 20)
    assert.ok(perSecond <= 20, `${members} members: ${perSecond} heartbeats/s`)
  }
})

test('stale after: the configured time at the base period, stretched for a member that beats less often', () => {
  assert.is(memberStaleAfterMs(5000, 1000, undefined), 5000, 'a sender that advertises no period')
  assert.is(memberStaleAfterMs(5000, 1000, 1000), 5000)
  assert.is(memberStaleAfterMs(5000, 1000, 500), 5000, 'never shorter than configured')
  assert.is(memberStaleAfterMs(5000, 1000, 50_000), 250_000)
})

test.run()
