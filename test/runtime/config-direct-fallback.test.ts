// The node config's `directFallback` (Formation's relay rule): defaults, overrides, bad values named.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { parseNodeConfig } from '../../src/runtime/config.ts'

const minimal = { name: 'a', dataDir: '/tmp/a' }

test('config directFallback: Formation\'s defaults when absent; each field overridable', () => {
  assert.equal(parseNodeConfig(minimal, 'node.json').directFallback, { failures: 3, windowMs: 300_000, holdDownMs: 300_000 })
  assert.equal(parseNodeConfig({ ...minimal, directFallback: { failures: 5, holdDownMs: 60_000 } }, 'node.json').directFallback, { failures: 5, windowMs: 300_000, holdDownMs: 60_000 })
})

test('config directFallback: bad values are rejected naming the field', () => {
  assert.throws(() => parseNodeConfig({ ...minimal, directFallback: { failures: 0 } }, 'node.json'), /directFallback\.failures/)
  assert.throws(() => parseNodeConfig({ ...minimal, directFallback: { windowMs: -5 } }, 'node.json'), /directFallback\.windowMs/)
  assert.throws(() => parseNodeConfig({ ...minimal, directFallback: { holdMs: 5 } }, 'node.json'), /directFallback/)
  assert.throws(() => parseNodeConfig({ ...minimal, directFallback: 3 }, 'node.json'), /directFallback/)
})

test.run()
