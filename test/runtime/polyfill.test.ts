import { test } from 'uvu'
import * as assert from 'uvu/assert'
import '../../src/runtime/polyfill.ts'

test('polyfill: Promise.withResolvers resolves and rejects', async () => {
  const ok = (Promise as any).withResolvers()
  ok.resolve(7)
  assert.is(await ok.promise, 7)
  const bad = (Promise as any).withResolvers()
  bad.reject(new Error('no'))
  try { await bad.promise; assert.unreachable('should reject') } catch (err) { assert.is((err as Error).message, 'no') }
})

test.run()
