// The node config's `originStandby` (probe tiers): defaults, overrides, bad values named.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { parseNodeConfig } from '../../src/runtime/config.ts'

const minimal = { name: 'a', dataDir: '/tmp/a' }

test('config originStandby: 2 active origins per prefix and 5 s for the rest when absent; each field overridable', () => {
  assert.equal(parseNodeConfig(minimal, 'node.json').originStandby, { activePerPrefix: 2, intervalMs: 5000 })
  assert.equal(parseNodeConfig({ ...minimal, originStandby: { activePerPrefix: 3 } }, 'node.json').originStandby, { activePerPrefix: 3, intervalMs: 5000 })
  assert.equal(parseNodeConfig({ ...minimal, originStandby: { intervalMs: 2000 } }, 'node.json').originStandby, { activePerPrefix: 2, intervalMs: 2000 })
})

test('config originStandby: bad values are rejected naming the field', () => {
  assert.throws(() => parseNodeConfig({ ...minimal, originStandby: { activePerPrefix: 0 } }, 'node.json'), /originStandby\.activePerPrefix/)
  assert.throws(() => parseNodeConfig({ ...minimal, originStandby: { activePerPrefix: 1.5 } }, 'node.json'), /originStandby\.activePerPrefix/)
  assert.throws(() => parseNodeConfig({ ...minimal, originStandby: { intervalMs: 10 } }, 'node.json'), /originStandby\.intervalMs/)
  assert.throws(() => parseNodeConfig({ ...minimal, originStandby: { every: 5 } }, 'node.json'), /originStandby/)
  assert.throws(() => parseNodeConfig({ ...minimal, originStandby: 'slow' }, 'node.json'), /originStandby/)
})

test.run()
