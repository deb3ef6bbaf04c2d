// startNode's state store: LevelDB under <dataDir>/state, opened before any socket and closed by
// stop(). LevelDB locks a directory within one process too, so reopening it here proves the close.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseNodeConfig, ConfigError } from '../../src/runtime/config.ts'
import { startNode, stateDirectory } from '../../src/runtime/node-process.ts'
import { LevelStore } from '../../src/runtime/level-store.ts'

test('node process: the state store is held while running (a held store is ConfigError naming dataDir) and released by stop()', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'form-anycast-node-process-'))
  const config = parseNodeConfig({ name: 'solo', dataDir: dir, logLevel: 'silent' }, 'solo.json')
  const blocker = new LevelStore({ directory: stateDirectory(dir) })
  try {
    await blocker.open()
    try {
      await startNode(config, 'solo.json')
      assert.unreachable('a held store must refuse start-up')
    } catch (error) {
      assert.instance(error, ConfigError)
      assert.match((error as Error).message, /^solo\.json: dataDir: the state store .*state is locked/)
    }
    await blocker.close()

    const node = await startNode(config, 'solo.json')
    assert.ok(node.host.replicator !== undefined, 'state is on by default')
    await node.host.replicator.write('services', 'shop', { anycast: ['10.42.255.9'] })
    const held = new LevelStore({ directory: stateDirectory(dir) })
    try { await held.open(); assert.unreachable('the running node holds the store') } catch (error) { assert.match((error as Error).message, /LEVEL_LOCKED/) }
    await node.stop()
    const reopened = new LevelStore({ directory: stateDirectory(dir) })
    await reopened.open()
    assert.ok(await reopened.get('op/services/shop') !== undefined, 'stop() closed the store, and what was written is there')
    await reopened.close()
  } finally {
    await blocker.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
